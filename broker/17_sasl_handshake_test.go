package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// TestSASLOnPlaintext: SaslHandshake and SaslAuthenticate get Kafka's
// PLAINTEXT-listener answer at every version, and a client configured for
// SASL fails with ILLEGAL_SASL_STATE rather than a dropped connection.
func TestSASLOnPlaintext(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	for v := saslHandshakeVersions.min; v <= saslHandshakeVersions.max; v++ {
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.SetVersion(v)
		req.Mechanism = "PLAIN"
		resp := c.roundTrip(req).(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != kerr.IllegalSaslState.Code || len(resp.SupportedMechanisms) != 0 {
			t.Errorf("SaslHandshake v%d: %+v", v, resp)
		}
	}
	for v := saslAuthenticateVersions.min; v <= saslAuthenticateVersions.max; v++ {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(v)
		req.SASLAuthBytes = []byte("\x00user\x00pass")
		resp := c.roundTrip(req).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != kerr.IllegalSaslState.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != "SaslAuthenticate request received after successful authentication" {
			t.Errorf("SaslAuthenticate v%d: %+v", v, resp)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.SASL(plain.Auth{User: "u", Pass: "p"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); !errors.Is(err, kerr.IllegalSaslState) {
		t.Fatalf("kgo with SASL against a PLAINTEXT broker: %v, want ILLEGAL_SASL_STATE", err)
	}
}
