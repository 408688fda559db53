package client

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	// ErrClosed is returned by every call made after (or interrupted by)
	// Client.Close.
	ErrClosed = errors.New("kafkit client: closed")
	// ErrUnknownBroker means a broker id is not in the cluster metadata.
	ErrUnknownBroker = errors.New("kafkit client: unknown broker")
	// ErrDial means a TCP/TLS connection to a broker could not be opened
	// or its handshake (ApiVersions) failed at the network level.
	ErrDial = errors.New("kafkit client: cannot connect to broker")
	// ErrNoBrokers means no seed or known broker could be reached.
	ErrNoBrokers = errors.New("kafkit client: no broker reachable")
	// ErrRequestTimeout means a broker did not answer within
	// request.timeout.ms; the connection is closed because later responses
	// on it can no longer be matched.
	ErrRequestTimeout = errors.New("kafkit client: request timed out (request.timeout.ms)")
	// ErrConnectionClosed means the connection carrying a request failed
	// before its response arrived; the request may or may not have been
	// applied by the broker.
	ErrConnectionClosed = errors.New("kafkit client: connection closed")
	// ErrCorrelationMismatch means a broker answered out of order, which
	// breaks the protocol; the connection is closed.
	ErrCorrelationMismatch = errors.New("kafkit client: response correlation id mismatch")
	// ErrResponseTooLarge means a response frame claimed an implausible
	// size, typically from talking plaintext to a TLS listener.
	ErrResponseTooLarge = errors.New("kafkit client: response frame too large")
	// ErrUnsupportedAPI means the broker does not implement the request's
	// API key at all.
	ErrUnsupportedAPI = errors.New("kafkit client: API not supported by broker")
	// ErrSASL wraps a SASL authentication failure.
	ErrSASL = errors.New("kafkit client: SASL authentication failed")
)

// IsRetriable reports whether err is a transient failure worth retrying after
// a backoff: Kafka errors marked retriable, request timeouts, and network
// failures. Cancellation, a closed client, and authentication or protocol
// errors are not retriable. Every layer above this package uses this one
// function.
func IsRetriable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, ErrClosed),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrSASL),
		errors.Is(err, ErrUnsupportedAPI):
		return false
	case kerr.IsRetriable(err),
		errors.Is(err, ErrRequestTimeout),
		errors.Is(err, ErrDial),
		errors.Is(err, ErrConnectionClosed),
		errors.Is(err, ErrCorrelationMismatch),
		errors.Is(err, ErrNoBrokers),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true // dial failures, timeouts, resets: the broker may come back
	}
	return false
}
