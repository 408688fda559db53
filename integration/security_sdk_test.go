package integration

import (
	"context"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/producer"
)

// Issue 13: the SDK's producer authenticates with every mechanism the
// broker serves, OAUTHBEARER through a token source function.

// unsecuredJWT is an unsigned token as Kafka's unsecured login makes them.
func unsecuredJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(fmt.Appendf(nil, `{"sub":%q,"iat":%d,"exp":%d}`, sub, time.Now().Unix(), exp.Unix())) + "."
}

func TestSDKAuthenticates(t *testing.T) {
	b, ca := secureBroker(t)
	tokens := func(exp time.Duration) kafkit.TokenSource {
		return kafkit.TokenSourceFunc(func(context.Context) (string, error) { return unsecuredJWT("svc", time.Now().Add(exp)), nil })
	}
	for _, tt := range []struct {
		name string
		sasl kafkit.SASL
		fail string
	}{
		{"PLAIN", kafkit.SASL{Mechanism: kafkit.SASLPlain, User: "alice", Password: "alice-secret"}, ""},
		{"SCRAM-SHA-256", kafkit.SASL{Mechanism: kafkit.SASLScramSHA256, User: "bob", Password: "bob-secret-256"}, ""},
		{"SCRAM-SHA-512", kafkit.SASL{Mechanism: kafkit.SASLScramSHA512, User: "bob", Password: "bob-secret-512"}, ""},
		{"OAUTHBEARER", kafkit.SASL{Mechanism: kafkit.SASLOAuthBearer, TokenSource: tokens(time.Hour)}, ""},
		{"OAUTHBEARER expired", kafkit.SASL{Mechanism: kafkit.SASLOAuthBearer, TokenSource: tokens(-time.Hour)}, "SASL_AUTHENTICATION_FAILED"},
		{"SCRAM wrong password", kafkit.SASL{Mechanism: kafkit.SASLScramSHA256, User: "bob", Password: "nope"}, "SASL_AUTHENTICATION_FAILED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sasl := tt.sasl
			p, err := producer.New(producer.Config{BootstrapServers: []string{b.ListenerAddr(broker.ProtocolSASLSSL)},
				TLS: ca.ClientTLS(t, pkix.Name{}), SASL: &sasl, RequestTimeout: 4 * time.Second, DeliveryTimeout: 5 * time.Second})
			if err == nil {
				defer p.Close(context.Background())
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err = p.SendSync(ctx, &kafkit.Record{Topic: "sdk-auth", Value: []byte("v")})
			}
			if tt.fail == "" && err != nil || tt.fail != "" && (err == nil || !strings.Contains(err.Error(), tt.fail)) {
				t.Errorf("send: %v (want failure %q)", err, tt.fail)
			}
		})
	}
}
