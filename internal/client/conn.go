package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/wirecheck"
)

const (
	// maxResponseSize rejects frames no broker sends (fetch.max.bytes is
	// 50 MiB by default); a plaintext client reading a TLS alert sees a
	// "size" of ~350 MiB.
	maxResponseSize = 256 << 20
	// maxInFlight bounds the requests written to one connection and not yet
	// answered; the writer blocks beyond it, which pushes back on callers.
	maxInFlight = 1024
	// maxWriteBatch bounds how many bytes the writer coalesces into one
	// write when several requests are waiting.
	maxWriteBatch = 1 << 20
)

// errConnDead is returned by conn.send when the connection died before the
// request was handed to its writer: nothing was sent, so the caller may
// safely retry on a new connection.
var errConnDead = errors.New("connection dead before write")

// promise is one request travelling through a connection.
type promise struct {
	req      kmsg.Request
	fn       func(kmsg.Response, error)
	deadline time.Time // set when written: request.timeout.ms plus the time the broker may legitimately hold the request
	corr     int32     // assigned by the writer
}

// apiRange is a broker's supported version range for one API key.
type apiRange struct{ min, max int16 }

// conn is one TCP (or TLS) connection to a broker. After the handshake
// (ApiVersions, SASL) it runs a writer goroutine, which owns corr and the
// socket's write side, and a reader goroutine, which owns the read side.
// Requests flow caller → reqs → writer → inflight → reader, so responses are
// matched strictly in the order requests were written.
type conn struct {
	brokerID int32
	addr     string
	versions map[int16]apiRange // immutable after the handshake
	expires  time.Time          // SASL session end (KIP-368); zero = never
	fmt      *kmsg.RequestFormatter
	idLen    int           // of the client id in every request header
	timeout  time.Duration // request.timeout.ms

	nc       net.Conn
	sizeBuf  [4]byte       // a response's size; owned by the handshake, then by the reader
	corr     int32         // next correlation id; owned by the handshake, then by the writer
	reqs     chan *promise // unbuffered: a send succeeds only while the writer runs
	inflight chan *promise // written and awaiting a response, in write order

	lastUsed      atomic.Int64 // unix nanos of the last send; for connections.max.idle.ms
	throttleUntil atomic.Int64 // unix nanos: the broker asked for no requests before this (KIP-219)

	dieOnce    sync.Once
	dead       chan struct{} // closed by die
	err        error         // why the connection died; set before dead is closed
	diedAt     time.Time     // set before dead is closed
	writerDone chan struct{}
}

func newConn(nc net.Conn, brokerID int32, addr string, cfg *Config) *conn {
	c := &conn{
		brokerID:   brokerID,
		addr:       addr,
		fmt:        kmsg.NewRequestFormatter(kmsg.FormatterClientID(cfg.ClientID)),
		idLen:      len(cfg.ClientID),
		timeout:    cfg.RequestTimeout,
		nc:         nc,
		reqs:       make(chan *promise),
		inflight:   make(chan *promise, maxInFlight),
		dead:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.lastUsed.Store(time.Now().UnixNano())
	return c
}

// die closes the connection once; err is what in-flight requests fail with.
func (c *conn) die(err error) {
	c.dieOnce.Do(func() {
		c.err = err
		c.diedAt = time.Now()
		close(c.dead)
		c.nc.Close()
	})
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// retire reports why a live connection should no longer take new requests:
// idle beyond connections.max.idle.ms (the broker is about to close it) or its
// SASL session lifetime is over (the broker would reject the next request).
func (c *conn) retire(now time.Time, maxIdle time.Duration) error {
	if now.Sub(time.Unix(0, c.lastUsed.Load())) >= maxIdle {
		return fmt.Errorf("%w: idle longer than connections.max.idle.ms", ErrConnectionClosed)
	}
	if !c.expires.IsZero() && now.After(c.expires) {
		return fmt.Errorf("%w: SASL session lifetime over", ErrConnectionClosed)
	}
	return nil
}

// oldestVersions are the versions below which this client sends nothing
// although kmsg knows them: Produce v3 is the first carrying record batch
// v2, the only format the producer writes (Kafka 4.0's clients start there
// too, KIP-896). Kafka 4.0 brokers list Produce from v0 anyway
// (KAFKA-18659), so the broker's minimum does not rule v0-2 out.
var oldestVersions = map[int16]int16{int16(kmsg.Produce): 3}

// setVersion picks min(req.MaxVersion(), the broker's max) for req.
func (c *conn) setVersion(req kmsg.Request) error {
	r, ok := c.versions[req.Key()]
	v := min(req.MaxVersion(), r.max)
	if !ok || v < r.min || v < oldestVersions[req.Key()] {
		return fmt.Errorf("%w: broker %d (%s) does not serve API key %d at any version this client knows",
			ErrUnsupportedAPI, c.brokerID, c.addr, req.Key())
	}
	req.SetVersion(v)
	return nil
}

// expectsResponse is false only for acks=0 Produce requests, which Kafka
// never answers.
func expectsResponse(req kmsg.Request) bool {
	p, ok := req.(*kmsg.ProduceRequest)
	return !ok || p.Acks != 0
}

// brokerWait is how long the broker may hold req before answering by design
// (fetch.max.wait.ms, a JoinGroup's rebalance timeout, a request's own
// timeout); it is added to request.timeout.ms so such requests do not time
// out on the client first.
func brokerWait(req kmsg.Request) time.Duration {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		return time.Duration(r.MaxWaitMillis) * time.Millisecond
	case *kmsg.ShareFetchRequest:
		return time.Duration(r.MaxWaitMillis) * time.Millisecond
	case *kmsg.JoinGroupRequest:
		return time.Duration(max(r.RebalanceTimeoutMillis, r.SessionTimeoutMillis)) * time.Millisecond
	case kmsg.TimeoutRequest:
		return time.Duration(r.Timeout()) * time.Millisecond
	}
	return 0
}

// send hands req to the writer. It returns once the writer has taken the
// request; fn is then called exactly once, with the response or the failure.
// If send returns an error, fn is never called.
func (c *conn) send(ctx context.Context, req kmsg.Request, fn func(kmsg.Response, error)) error {
	if err := c.setVersion(req); err != nil {
		return err
	}
	p := promises.Get().(*promise)
	p.req, p.fn = req, fn
	select {
	case c.reqs <- p:
		c.lastUsed.Store(time.Now().UnixNano())
		return nil
	case <-c.dead:
		return errConnDead
	case <-ctx.Done():
		return ctx.Err()
	}
}

// promises recycles the promises the reader has completed: a producer with
// linger.ms 0 and a consumer reading as records arrive send a request per
// record or two.
var promises = sync.Pool{New: func() any { return new(promise) }}

// writeLoop is the writer goroutine. It coalesces the requests already
// waiting into one write, registering each with the reader before its bytes
// go out so that a fast response always finds its promise.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var (
		buf    []byte
		noResp []*promise // acks=0 requests in this write, completed once written
	)
	for {
		var p *promise
		select {
		case p = <-c.reqs:
		case <-c.dead:
			return
		}
		if !c.waitThrottle() {
			p.fn(nil, c.err)
			return
		}
		buf, noResp = buf[:0], noResp[:0]
	batch:
		for {
			c.corr++
			p.corr = c.corr
			p.deadline = time.Now().Add(c.timeout + brokerWait(p.req))
			buf = c.appendFrame(buf, p)
			if expectsResponse(p.req) {
				select {
				case c.inflight <- p:
				case <-c.dead:
					p.fn(nil, c.err)
					break batch
				}
			} else {
				noResp = append(noResp, p)
			}
			if len(buf) >= maxWriteBatch {
				break
			}
			select {
			case p = <-c.reqs:
			default:
				break batch
			}
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
		_, err := c.nc.Write(buf)
		if err != nil {
			c.die(fmt.Errorf("%w: broker %d (%s): write: %v", ErrConnectionClosed, c.brokerID, c.addr, err))
			err = c.err
		}
		for _, p := range noResp {
			p.fn(nil, err)
		}
		if err != nil {
			return
		}
	}
}

// appendFrame encodes p's request after the frames already in buf,
// copying the encoded bytes (record batches included) only once.
// AppendRequest writes the frame size at dst[0], so it is handed an empty
// slice starting where the frame goes: the frame lands in buf's spare
// capacity in place, or, when that is too small, in a new array that
// becomes buf if buf was empty and is appended to buf otherwise.
//
// A produce request's size is known to within its names and lengths, so
// the buffer is grown to hold it before encoding: encoding it into a buffer
// too small grew it by append's steps (1.25× at these sizes), allocating and
// copying a multi-MiB request several times over the first time a
// connection wrote one that large.
func (c *conn) appendFrame(buf []byte, p *promise) []byte {
	if hint := frameSizeHint(p.req, c.idLen); hint > cap(buf)-len(buf) {
		buf = slices.Grow(buf, hint)
	}
	start := len(buf)
	frame := c.fmt.AppendRequest(buf[start:start], p.req, p.corr)
	switch {
	case len(frame) <= cap(buf)-start:
		return buf[:start+len(frame)]
	case start == 0:
		return frame
	default:
		return append(buf, frame...)
	}
}

// frameSizeHint bounds from above the frame of a produce request, whose
// record batches are nearly all of it; 0 for other requests, which are small.
func frameSizeHint(req kmsg.Request, idLen int) int {
	r, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return 0
	}
	// The frame's header (size, key, version, correlation id, client id),
	// the request's fixed fields and transactional id, then per topic its
	// name and per partition its index and the batches' length, each with
	// room for lengths, array counts and tag sections.
	n := 256 + idLen
	if r.TransactionID != nil {
		n += len(*r.TransactionID)
	}
	for _, t := range r.Topics {
		n += 32 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 32 + len(p.Records)
		}
	}
	return n
}

// waitThrottle holds the writer while the broker throttles this client
// (Kafka 2.0+ answers at once and expects the client to wait ThrottleMillis
// before its next request on the connection). It reports false if the
// connection died meanwhile.
func (c *conn) waitThrottle() bool {
	d := time.Until(time.Unix(0, c.throttleUntil.Load()))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.dead:
		return false
	}
}

// noteThrottle records a throttle the broker applies after its response.
func (c *conn) noteThrottle(resp kmsg.Response) {
	if tr, ok := resp.(kmsg.ThrottleResponse); ok {
		if ms, after := tr.Throttle(); ms > 0 && after {
			c.throttleUntil.Store(time.Now().Add(time.Duration(ms) * time.Millisecond).UnixNano())
		}
	}
}

// readLoop is the reader goroutine: it reads responses in order and completes
// their promises. Once the connection dies it waits for the writer to stop and
// fails everything still registered.
func (c *conn) readLoop() {
	defer func() {
		<-c.writerDone
		for {
			select {
			case p := <-c.inflight:
				p.fn(nil, c.err)
			default:
				return
			}
		}
	}()
	for {
		var p *promise
		select {
		case p = <-c.inflight:
		case <-c.dead:
			return
		}
		c.nc.SetReadDeadline(p.deadline)
		resp, err := c.readResponse(p.req, p.corr)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w: broker %d (%s): no response to %s v%d within %v",
					ErrRequestTimeout, c.brokerID, c.addr, kmsg.NameForKey(p.req.Key()), p.req.GetVersion(), c.timeout+brokerWait(p.req))
			} else if !errors.Is(err, ErrCorrelationMismatch) && !errors.Is(err, ErrResponseTooLarge) {
				err = fmt.Errorf("%w: broker %d (%s): read: %v", ErrConnectionClosed, c.brokerID, c.addr, err)
			}
			c.die(err)
			p.fn(nil, c.err)
			return
		}
		c.noteThrottle(resp)
		p.fn(resp, nil)
		*p = promise{} // completed: neither the writer nor the caller refers to it
		promises.Put(p)
	}
}

// readResponse reads one response frame and decodes it as req's response.
func (c *conn) readResponse(req kmsg.Request, corr int32) (kmsg.Response, error) {
	size := c.sizeBuf[:] // a local array would escape to the heap per response (io.ReadFull)
	if _, err := io.ReadFull(c.nc, size); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size))
	if n < 4 || n > maxResponseSize {
		return nil, fmt.Errorf("%w: broker %d (%s) sent a %d byte frame (TLS listener without TLS?)", ErrResponseTooLarge, c.brokerID, c.addr, n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		return nil, err
	}
	return decodeResponse(req, corr, frame)
}

// decodeResponse parses a response frame (without its size prefix): the
// header (v1 with tagged fields for flexible versions, except ApiVersions,
// which is always answered with header v0) and then the body.
func decodeResponse(req kmsg.Request, corr int32, frame []byte) (kmsg.Response, error) {
	b := kbin.Reader{Src: frame}
	if got := b.Int32(); got != corr {
		return nil, fmt.Errorf("%w: got %d, want %d", ErrCorrelationMismatch, got, corr)
	}
	if req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		wirecheck.SkipTags(&b)
	}
	if err := b.Complete(); err != nil {
		return nil, fmt.Errorf("%w: truncated %s response header", ErrConnectionClosed, kmsg.NameForKey(req.Key()))
	}
	// kmsg trusts the counts it reads; a forged tag count would cost it
	// tens of seconds of CPU.
	if err := wirecheck.Response(req.Key(), req.GetVersion(), b.Src); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnectionClosed, err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(b.Src); err != nil {
		return nil, fmt.Errorf("%w: decoding %s v%d response: %v", ErrConnectionClosed, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// roundTrip writes req and reads its response synchronously. It is used only
// during the handshake, before the writer and reader goroutines start.
func (c *conn) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	c.corr++
	if _, err := c.nc.Write(c.fmt.AppendRequest(nil, req, c.corr)); err != nil {
		return nil, err
	}
	return c.readResponse(req, c.corr)
}

// negotiate runs ApiVersions at our highest version and, when the broker
// answers UNSUPPORTED_VERSION (always in a v0 body, listing the ApiVersions
// range it does serve), retries at the version it offers, down to v0.
func (c *conn) negotiate(softwareName, softwareVersion string) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName = softwareName
	req.ClientSoftwareVersion = softwareVersion
	v := req.MaxVersion()
	for {
		req.SetVersion(v)
		c.corr++
		if _, err := c.nc.Write(c.fmt.AppendRequest(nil, req, c.corr)); err != nil {
			return err
		}
		var size [4]byte
		if _, err := io.ReadFull(c.nc, size[:]); err != nil {
			return err
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 6 || n > maxResponseSize {
			return fmt.Errorf("%w: broker %d (%s) sent a %d byte frame (TLS listener without TLS?)", ErrResponseTooLarge, c.brokerID, c.addr, n)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c.nc, frame); err != nil {
			return err
		}
		// The error code leads every ApiVersions body; an unsupported
		// version is answered in v0 whatever version we sent.
		if code := int16(binary.BigEndian.Uint16(frame[4:])); code == kerr.UnsupportedVersion.Code && v > 0 {
			v0 := kmsg.NewPtrApiVersionsRequest()
			v0.SetVersion(0)
			resp, err := decodeResponse(v0, c.corr, frame)
			if err != nil {
				return err
			}
			next := int16(0)
			for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
				if k.ApiKey == int16(kmsg.ApiVersions) {
					next = k.MaxVersion
				}
			}
			v = min(next, v-1)
			continue
		}
		resp, err := decodeResponse(req, c.corr, frame)
		if err != nil {
			return err
		}
		r := resp.(*kmsg.ApiVersionsResponse)
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("ApiVersions v%d to broker %d (%s): %w", v, c.brokerID, c.addr, err)
		}
		c.versions = make(map[int16]apiRange, len(r.ApiKeys))
		for _, k := range r.ApiKeys {
			c.versions[k.ApiKey] = apiRange{k.MinVersion, k.MaxVersion}
		}
		return nil
	}
}
