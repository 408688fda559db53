package auth

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Kafka's SASL mechanism names, as sent in SaslHandshake and listed in
// sasl.enabled.mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// Principal is a Kafka principal: a type and a name, written "User:alice".
type Principal struct {
	Type, Name string
}

// Anonymous is the principal of a PLAINTEXT connection and of a TLS one
// without a client certificate.
var Anonymous = User("ANONYMOUS")

// User returns the User principal named name.
func User(name string) Principal { return Principal{"User", name} }

func (p Principal) String() string { return p.Type + ":" + p.Name }

// Server is the server side of one SASL exchange on one connection. The
// connection calls Step with each token the client sends (SaslAuthenticate's
// SASLAuthBytes, or a raw v0 token) and answers with challenge. Once done
// is true the exchange succeeded and principal is the authenticated user;
// a non-nil error ends the exchange (see AuthError). A Server is used by
// one goroutine, the connection's.
type Server interface {
	Step(token []byte) (challenge []byte, done bool, principal Principal, err error)
}

// AuthError is a failed authentication. Message is what Kafka sends the
// client with SASL_AUTHENTICATION_FAILED: it never says whether the user
// exists. Detail is for the broker's log only.
type AuthError struct {
	Message string
	Detail  string
}

func (e *AuthError) Error() string { return e.Message + " (" + e.Detail + ")" }

// Unwrap lets errors.Is(err, kerr.SaslAuthenticationFailed) find it, so the
// broker maps every failure to error code 58 in one place.
func (e *AuthError) Unwrap() error { return kerr.SaslAuthenticationFailed }

// failed is the error of a failure whose cause must not reach the client:
// SaslServerAuthenticator replaces every SaslException with this message.
func failed(mechanism, format string, args ...any) error {
	return &AuthError{
		Message: "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism,
		Detail:  fmt.Sprintf(format, args...),
	}
}

// errStepAfterDone is returned by a Server stepped after it finished or
// failed; Kafka answers it with ILLEGAL_SASL_STATE.
var errStepAfterDone = fmt.Errorf("%w: SASL token after the exchange ended", kerr.IllegalSaslState)

// SASLConfig is one listener's SASL set-up.
type SASLConfig struct {
	Enabled []string           // sasl.enabled.mechanisms
	Plain   PlainUsers         // PLAIN's users, from the listener's JAAS config
	SCRAM   *SCRAMStore        // SCRAM credentials
	OAuth   OAuthBearerOptions // the unsecured validator's options
	Now     func() time.Time   // OAUTHBEARER's clock
	Rand    io.Reader          // SCRAM's server nonces
}

// NewServer starts the exchange for the mechanism a SaslHandshake names.
// A mechanism that is not enabled is an error that errors.Is
// kerr.UnsupportedSaslMechanism; Kafka answers it with the enabled list.
func (c *SASLConfig) NewServer(mechanism string) (Server, error) {
	if !slices.Contains(c.Enabled, mechanism) {
		return nil, fmt.Errorf("%w: %s is not among %v", kerr.UnsupportedSaslMechanism, mechanism, c.Enabled)
	}
	switch mechanism {
	case MechanismPlain:
		return NewPlainServer(c.Plain), nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		return NewSCRAMServer(mechanism, c.SCRAM.Lookup, c.Rand)
	case MechanismOAuthBearer:
		return NewOAuthBearerServer(c.OAuth, c.Now), nil
	}
	return nil, fmt.Errorf("%w: %s", kerr.UnsupportedSaslMechanism, mechanism)
}
