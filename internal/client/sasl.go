package client

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit"
)

// mechanism maps the configured sasl.mechanism to its message logic.
func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism(), nil
	case MechanismOAuthBearer:
		return oauthBearer{s.TokenSource}, nil
	}
	return nil, fmt.Errorf("%w: unsupported sasl.mechanism %q", ErrSASL, s.Mechanism)
}

// oauthBearer is RFC 7628's client as Java's: a refused token gets the
// broker's JSON error challenge, which is acknowledged with \x01 so the
// broker answers SASL_AUTHENTICATION_FAILED with that JSON.
type oauthBearer struct{ tokens kafkit.TokenSource }

func (oauthBearer) Name() string { return MechanismOAuthBearer }

func (o oauthBearer) Authenticate(ctx context.Context, _ string) (sasl.Session, []byte, error) {
	token, err := o.tokens.Token(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OAUTHBEARER token source: %w", err)
	}
	return oauthSession{}, []byte("n,,\x01auth=Bearer " + token + "\x01\x01"), nil
}

type oauthSession struct{}

func (oauthSession) Challenge(resp []byte) (bool, []byte, error) {
	if len(resp) == 0 {
		return true, nil, nil
	}
	return false, []byte{0x01}, nil
}

// authenticate runs SaslHandshake v1 and then SaslAuthenticate exchanges
// until the mechanism is satisfied. A session lifetime announced by the broker
// (KIP-368) makes the connection retire shortly before it ends; a fresh
// connection then re-authenticates.
func (c *conn) authenticate(ctx context.Context, s *SASL, host string) error {
	mech, err := s.mechanism()
	if err != nil {
		return err
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = mech.Name()
	if err := c.setVersion(hs); err != nil {
		return err
	}
	if hs.GetVersion() < 1 {
		return fmt.Errorf("%w: broker %d only supports SaslHandshake v0 (unframed SASL), which kafkit does not speak", ErrSASL, c.brokerID)
	}
	resp, err := c.roundTrip(hs)
	if err != nil {
		return err
	}
	if hr := resp.(*kmsg.SASLHandshakeResponse); hr.ErrorCode != 0 {
		return fmt.Errorf("%w: broker %d: %s: %w (enabled: %v)", ErrSASL, c.brokerID, mech.Name(), kerr.ErrorForCode(hr.ErrorCode), hr.SupportedMechanisms)
	}
	session, msg, err := mech.Authenticate(ctx, host)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSASL, err)
	}
	for {
		ar := kmsg.NewPtrSASLAuthenticateRequest()
		ar.SASLAuthBytes = msg
		if err := c.setVersion(ar); err != nil {
			return err
		}
		start := time.Now()
		resp, err := c.roundTrip(ar)
		if err != nil {
			// Brokers close the connection on bad credentials (some
			// without sending SASL_AUTHENTICATION_FAILED first);
			// retrying would only repeat that.
			return fmt.Errorf("%w: broker %d closed the connection during %s authentication as %q (bad credentials?): %v", ErrSASL, c.brokerID, mech.Name(), s.User, err)
		}
		r := resp.(*kmsg.SASLAuthenticateResponse)
		if r.ErrorCode != 0 {
			detail := ""
			if r.ErrorMessage != nil {
				detail = *r.ErrorMessage
			}
			return fmt.Errorf("%w: broker %d: %s as %q: %w %s", ErrSASL, c.brokerID, mech.Name(), s.User, kerr.ErrorForCode(r.ErrorCode), detail)
		}
		if r.SessionLifetimeMillis > 0 {
			// Retire at 90% of the lifetime, as Java clients re-authenticate
			// between 85% and 95% of it.
			c.expires = start.Add(time.Duration(r.SessionLifetimeMillis) * time.Millisecond * 9 / 10)
		}
		var done bool
		done, msg, err = session.Challenge(r.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrSASL, mech.Name(), err)
		}
		if done {
			return nil
		}
	}
}
