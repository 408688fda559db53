package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
)

// saslState is where a connection is in Kafka's SaslServerAuthenticator.
type saslState int8

const (
	saslHandshakeOrVersions saslState = iota // ApiVersions (once) or SaslHandshake
	saslHandshake                            // after ApiVersions: SaslHandshake only
	saslAuthenticate                         // SaslAuthenticate rounds, or raw tokens after handshake v0
	saslComplete                             // authenticated: requests go to the handlers
)

// saslConn is one SASL connection's authenticator, owned by its read loop.
type saslConn struct {
	l         *saslListener
	state     saslState
	raw       bool // SaslHandshake v0: tokens travel without Kafka framing
	mechanism string
	server    auth.Server
	// supportsReauth: the client sent SaslAuthenticate v1+, so a later
	// SaslHandshake re-authenticates (KIP-368).
	supportsReauth bool
	// reauthOf is the principal a re-authentication must keep ("" when
	// authenticating for the first time).
	reauthOf string
	// badMechanism fails the next token of a re-authentication that asked
	// for another mechanism (Kafka's REAUTH_BAD_MECHANISM).
	badMechanism string
	expires      time.Time // end of the session; zero for none
}

// errAuthFailed closes a connection that failed to authenticate.
var errAuthFailed = errors.New("authentication failed")

// serve routes a request frame: through the SASL authenticator until the
// connection is authenticated (and for a re-authentication), else to the
// handlers. A non-nil frame with an error is sent before the close.
func (c *conn) serve(buf []byte) (out *frame, err error) {
	s := c.sasl
	if s == nil {
		return c.handle(buf)
	}
	defer c.recoverRequest(&out, &err)
	if s.state == saslComplete {
		key := int16(binary.BigEndian.Uint16(buf))
		if key == int16(kmsg.SASLHandshake) && s.supportsReauth {
			s.reauthOf, s.state = c.principal, saslHandshake
			return c.saslHandshake(buf)
		}
		if !s.expires.IsZero() && time.Now().After(s.expires) {
			return nil, fmt.Errorf("%w: the SASL session expired (connections.max.reauth.ms or the credential's lifetime) without re-authentication", errCloseConn)
		}
		return c.handle(buf)
	}
	if s.state == saslAuthenticate {
		if s.badMechanism != "" {
			return c.authFailed(nil, errors.New(s.badMechanism))
		}
		if s.raw {
			return c.saslRawToken(buf)
		}
		return c.saslAuthenticate(buf)
	}
	return c.saslHandshake(buf)
}

// saslHandshake serves the requests allowed before a mechanism is chosen:
// one ApiVersions, then SaslHandshake. Anything else closes the
// connection, as Kafka's IllegalSaslStateException does.
func (c *conn) saslHandshake(buf []byte) (*frame, error) {
	s := c.sasl
	d, out, err := c.decode(buf)
	if d == nil {
		return out, err
	}
	switch {
	case d.key == int16(kmsg.ApiVersions) && s.state == saslHandshakeOrVersions:
		out, err := c.handle(buf)
		s.state = saslHandshake
		return out, err
	case d.key == int16(kmsg.ApiVersions):
		// Kafka's IllegalStateException, not an authentication failure:
		// closed at once, without an answer.
		return nil, fmt.Errorf("%w: a second ApiVersions request during the SASL handshake", errCloseConn)
	case d.key != int16(kmsg.SASLHandshake):
		// Kafka refuses it before parsing it (handleKafkaRequest): no
		// answer, then the close of a failed authentication.
		return c.authFailed(nil, fmt.Errorf("%w: unexpected %s request during SASL handshake", kerr.IllegalSaslState, kmsg.NameForKey(d.key)))
	}
	req := d.req.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = s.l.cfg.Enabled
	server, err := s.l.cfg.NewServer(req.Mechanism)
	if err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return c.authFailed(c.respond(d, resp), fmt.Errorf("unsupported SASL mechanism %q", req.Mechanism))
	}
	if s.reauthOf != "" && req.Mechanism != s.mechanism {
		// Kafka answers the handshake, then fails the next token without
		// an answer (REAUTH_BAD_MECHANISM).
		s.badMechanism = fmt.Sprintf("SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'", req.Mechanism, s.mechanism)
	} else {
		s.server, s.mechanism = server, req.Mechanism
	}
	s.raw = d.version == 0
	s.state = saslAuthenticate
	return c.respond(d, resp), nil
}

// saslAuthenticate serves one SaslAuthenticate round.
func (c *conn) saslAuthenticate(buf []byte) (*frame, error) {
	s := c.sasl
	d, out, err := c.decode(buf)
	if d == nil {
		return out, err
	}
	if d.key != int16(kmsg.SASLAuthenticate) {
		// Kafka's handleSaslToken answers it with the request's error
		// response (ILLEGAL_SASL_STATE), then fails the authentication.
		msg := fmt.Sprintf("Unexpected Kafka request of type %s during SASL authentication.", kmsg.NameForKey(d.key))
		return c.authFailed(c.respond(d, errorResponse(d.req, kerr.IllegalSaslState, msg)), fmt.Errorf("%w: %s", kerr.IllegalSaslState, msg))
	}
	if d.version > 0 {
		s.supportsReauth = true
	}
	req := d.req.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	challenge, lifetime, err := c.saslStep(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(c.saslFailureMessage(err))
		return c.authFailed(c.respond(d, resp), err)
	}
	resp.SASLAuthBytes = challenge
	if resp.SASLAuthBytes == nil {
		resp.SASLAuthBytes = []byte{}
	}
	resp.SessionLifetimeMillis = lifetime.Milliseconds()
	return c.respond(d, resp), nil
}

// saslRawToken serves one token of the unframed flow that SaslHandshake v0
// selects: the answer is the bare challenge, and a failure closes the
// connection without one.
func (c *conn) saslRawToken(token []byte) (*frame, error) {
	challenge, _, err := c.saslStep(token)
	if err != nil {
		return c.authFailed(nil, err)
	}
	out := (*respBufs.Get().(*[]byte))[:4]
	binary.BigEndian.PutUint32(out, uint32(len(challenge)))
	return bytesFrame(append(out, challenge...)), nil
}

// saslStep feeds a token to the mechanism. When the exchange completes it
// sets the connection's principal and the session's end (KIP-368), and
// returns the lifetime to announce.
func (c *conn) saslStep(token []byte) ([]byte, time.Duration, error) {
	s := c.sasl
	challenge, done, principal, err := s.server.Step(token)
	if err != nil || !done {
		return challenge, 0, err
	}
	if s.reauthOf != "" && principal.String() != s.reauthOf {
		return nil, 0, &auth.AuthError{
			Message: fmt.Sprintf("Cannot change principals during re-authentication from %s: %s", principalDots(s.reauthOf), principalDots(principal.String())),
			Detail:  "re-authentication as another principal",
		}
	}
	// SessionLifetimeMs as Kafka's calcCompletionTimesAndReturnSessionLifetimeMs:
	// the shorter of connections.max.reauth.ms and the credential's
	// remaining life (OAUTHBEARER's exp), when either is known.
	now := time.Now()
	lifetime := s.l.reauth[s.mechanism]
	bounded := lifetime > 0
	if exp, ok := s.server.(interface{ Expiry() time.Time }); ok && !exp.Expiry().IsZero() {
		left := max(exp.Expiry().Sub(now), 0)
		if !bounded || left < lifetime {
			lifetime = left
		}
		bounded = true
	}
	s.expires = time.Time{}
	if bounded {
		s.expires = now.Add(lifetime)
	}
	c.principal, s.state, s.reauthOf = principal.String(), saslComplete, ""
	c.principalSet()
	return challenge, lifetime, nil
}

// principalDots writes "User:alice" as Kafka's re-authentication message
// does: "User.alice".
func principalDots(p string) string {
	if i := slices.Index([]byte(p), ':'); i >= 0 {
		return p[:i] + "." + p[i+1:]
	}
	return p
}

// saslFailureMessage is what the client is told: the mechanism's own
// AuthError message, else Kafka's generic text, which never says why.
func (c *conn) saslFailureMessage(err error) string {
	var ae *auth.AuthError
	if errors.As(err, &ae) {
		return ae.Message
	}
	what := "authentication"
	if c.sasl.reauthOf != "" {
		what = "re-authentication"
	}
	return "Authentication failed during " + what + " due to invalid credentials with SASL mechanism " + c.sasl.mechanism
}

// authFailed waits connection.failed.authentication.delay.ms (so a client
// cannot guess passwords at full speed), then has the read loop send resp
// (if any) and close the connection.
func (c *conn) authFailed(resp *frame, cause error) (*frame, error) {
	if d := time.Duration(c.b.cfg.FailedAuthenticationDelayMs) * time.Millisecond; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	c.log.Info("SASL authentication failed", "listener", c.listener, "mechanism", c.sasl.mechanism, "reason", cause)
	return resp, fmt.Errorf("%w: %w: %v", errCloseConn, errAuthFailed, cause)
}

// respond encodes a response to a request the authenticator answers.
func (c *conn) respond(d *request, resp kmsg.Response) *frame {
	resp.SetVersion(d.version)
	return bytesFrame(c.encode(d.corr, resp, resp.IsFlexible()))
}
