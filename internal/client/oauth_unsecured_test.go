package client

import (
	"context"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/auth"
)

// TestUnsecuredTokenSource: the token of Kafka's unsecured login passes the
// broker's unsecured validator as its subject, and lives as long as
// unsecuredLoginLifetimeSeconds says.
func TestUnsecuredTokenSource(t *testing.T) {
	src, err := UnsecuredTokenSource(`org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="alice" unsecuredLoginLifetimeSeconds="60";`)
	if err != nil {
		t.Fatal(err)
	}
	token, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tt := range []struct {
		at time.Time
		ok bool
	}{{now, true}, {now.Add(2 * time.Minute), false}} {
		s := auth.NewOAuthBearerServer(auth.OAuthBearerOptions{}, func() time.Time { return tt.at })
		_, done, p, err := s.Step([]byte("n,,\x01auth=Bearer " + token + "\x01\x01"))
		if done != tt.ok || err != nil || tt.ok && p != auth.User("alice") {
			t.Errorf("at %v: done %v principal %v err %v, want done %v", tt.at.Sub(now), done, p, err, tt.ok)
		}
	}
	if _, err := UnsecuredTokenSource(`OAuthBearerLoginModule required;`); err == nil {
		t.Error("a login without a subject was accepted")
	}
}
