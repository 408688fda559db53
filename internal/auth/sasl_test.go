package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// exchange drives a franz-go client mechanism against server the way a
// connection does, and returns the server's result.
func exchange(t *testing.T, client sasl.Mechanism, server Server) (Principal, error) {
	t.Helper()
	session, token, err := client.Authenticate(context.Background(), "127.0.0.1:9092")
	if err != nil {
		t.Fatalf("client start: %v", err)
	}
	for range 10 {
		challenge, done, p, err := server.Step(token)
		if err != nil {
			return Principal{}, err
		}
		clientDone, next, cerr := session.Challenge(challenge)
		if cerr != nil {
			t.Fatalf("client rejected the server's challenge %q: %v", challenge, cerr)
		}
		if done {
			if !clientDone {
				t.Fatal("server done but client not")
			}
			return p, nil
		}
		token = next
	}
	t.Fatal("exchange did not end")
	return Principal{}, nil
}

// wantFailure checks err is SASL_AUTHENTICATION_FAILED with message.
func wantFailure(t *testing.T, err error, message string) {
	t.Helper()
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("err = %v, want an AuthError", err)
	}
	if ae.Message != message {
		t.Fatalf("message = %q, want %q", ae.Message, message)
	}
}

func TestPlainServer(t *testing.T) {
	users := ParsePlainJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required
		username="admin" password="admin-secret" user_admin="admin-secret" user_alice="a\"pw";`)
	if len(users) != 2 || users["alice"] != `a"pw` || users["admin"] != "admin-secret" {
		t.Fatalf("users = %v", users)
	}
	const bad = "Authentication failed: Invalid username or password"
	for _, tc := range []struct {
		name, zid, user, pass string
		fail                  string // "" for success
	}{
		{"ok", "", "alice", `a"pw`, ""},
		{"authzid equal to user", "alice", "alice", `a"pw`, ""},
		{"wrong password", "", "alice", "nope", bad},
		{"unknown user says the same", "", "mallory", "nope", bad},
		{"authzid of another user", "admin", "alice", `a"pw`,
			"Authentication failed: Client requested an authorization id that is different from username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := exchange(t, plain.Auth{Zid: tc.zid, User: tc.user, Pass: tc.pass}.AsMechanism(), NewPlainServer(users))
			if tc.fail != "" {
				wantFailure(t, err, tc.fail)
				return
			}
			if err != nil || p != User(tc.user) {
				t.Fatalf("got %v, %v", p, err)
			}
		})
	}
	for _, token := range []string{"", "alice", "\x00alice", "a\x00b\x00c\x00d", "\x00\x00pw", "\x00alice\x00"} {
		_, _, _, err := NewPlainServer(users).Step([]byte(token))
		wantFailure(t, err, "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN")
	}
	s := NewPlainServer(users)
	s.Step([]byte("\x00alice\x00a\"pw"))
	if _, _, _, err := s.Step(nil); !errors.Is(err, kerr.IllegalSaslState) {
		t.Fatalf("second step: %v", err)
	}
}

// scramUsers is a CredentialLookup over a map keyed by mechanism/user.
func scramUsers(t testing.TB, iterations int32, users map[string]string) CredentialLookup {
	t.Helper()
	creds := map[string]SCRAMCredential{}
	for _, mech := range []string{MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		for u, pw := range users {
			c, err := NewSCRAMCredential(mech, pw, []byte("salt-"+u), iterations)
			if err != nil {
				t.Fatal(err)
			}
			creds[mech+"/"+u] = c
		}
	}
	return func(user, mech string) (SCRAMCredential, bool) {
		c, ok := creds[mech+"/"+user]
		return c, ok
	}
}

func TestSCRAMServerAgainstFranzGo(t *testing.T) {
	lookup := scramUsers(t, 4096, map[string]string{"alice": "pw", "a,b=c": "odd name"})
	generic := func(mech string) string {
		return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
	}
	for _, mech := range []string{MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		client := func(a scram.Auth) sasl.Mechanism {
			if mech == MechanismSCRAMSHA256 {
				return a.AsSha256Mechanism()
			}
			return a.AsSha512Mechanism()
		}
		for _, tc := range []struct {
			name string
			auth scram.Auth
			fail string
		}{
			{"ok", scram.Auth{User: "alice", Pass: "pw"}, ""},
			{"escaped name", scram.Auth{User: "a,b=c", Pass: "odd name"}, ""},
			{"authzid equal to user", scram.Auth{Zid: "alice", User: "alice", Pass: "pw"}, ""},
			{"wrong password", scram.Auth{User: "alice", Pass: "nope"}, generic(mech)},
			{"unknown user says the same", scram.Auth{User: "mallory", Pass: "pw"}, generic(mech)},
			{"authzid of another user", scram.Auth{Zid: "bob", User: "alice", Pass: "pw"},
				"Authentication failed: Client requested an authorization id that is different from username"},
		} {
			t.Run(mech+"/"+tc.name, func(t *testing.T) {
				s, err := NewSCRAMServer(mech, lookup, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				p, err := exchange(t, client(tc.auth), s)
				if tc.fail != "" {
					wantFailure(t, err, tc.fail)
					return
				}
				if err != nil || p != User(tc.auth.User) {
					t.Fatalf("got %v, %v", p, err)
				}
				if _, _, _, err := s.Step(nil); !errors.Is(err, kerr.IllegalSaslState) {
					t.Fatalf("step after success: %v", err)
				}
			})
		}
	}
}

func TestSCRAMServerRejects(t *testing.T) {
	lookup := scramUsers(t, 4096, map[string]string{"alice": "pw"})
	weak := scramUsers(t, 1000, map[string]string{"alice": "pw"})
	nonce := bytes.NewReader(bytes.Repeat([]byte{7}, 24))
	s, _ := NewSCRAMServer(MechanismSCRAMSHA256, lookup, nonce)
	first, _, _, err := s.Step([]byte("n,,n=alice,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	serverNonce := strings.TrimPrefix(strings.Split(string(first), ",")[0], "r=")
	if !strings.HasPrefix(serverNonce, "abc") || !strings.Contains(string(first), ",i=4096") {
		t.Fatalf("server-first = %q", first)
	}
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name   string
		lookup CredentialLookup
		msgs   []string
	}{
		{"channel binding", lookup, []string{"y,,n=alice,r=abc"}},
		{"no nonce", lookup, []string{"n,,n=alice"}},
		{"bad escape", lookup, []string{"n,,n=al=2Xice,r=abc"}},
		{"unprintable nonce", lookup, []string{"n,,n=alice,r=a\x7f"}},
		{"too few iterations", weak, []string{"n,,n=alice,r=abc"}},
		{"wrong nonce", lookup, []string{"n,,n=alice,r=abc", "c=biws,r=abcX,p=" + proof}},
		{"wrong cbind", lookup, []string{"n,,n=alice,r=abc", "c=eSws,r=" + serverNonce + ",p=" + proof}},
		{"zero proof", lookup, []string{"n,,n=alice,r=abc", "c=biws,r=" + serverNonce + ",p=" + proof}},
		{"short proof", lookup, []string{"n,,n=alice,r=abc", "c=biws,r=" + serverNonce + ",p=AAAA"}},
		{"no proof", lookup, []string{"n,,n=alice,r=abc", "c=biws,r=" + serverNonce}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := NewSCRAMServer(MechanismSCRAMSHA256, tc.lookup, bytes.NewReader(bytes.Repeat([]byte{7}, 24)))
			var err error
			if tc.name == "too few iterations" {
				_, _, _, err = s.Step([]byte(tc.msgs[0]))
			} else {
				for _, m := range tc.msgs {
					if _, _, _, err = s.Step([]byte(m)); err != nil {
						break
					}
				}
			}
			wantFailure(t, err, "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
			if _, _, _, err := s.Step(nil); !errors.Is(err, kerr.IllegalSaslState) {
				t.Fatalf("step after failure: %v", err)
			}
		})
	}
	if _, err := NewSCRAMServer("SCRAM-SHA-1", lookup, rand.Reader); err == nil {
		t.Fatal("SCRAM-SHA-1 accepted")
	}
}

func jws(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "."
}

func TestOAuthBearerServer(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	none := `{"alg":"none"}`
	for _, tc := range []struct {
		name      string
		opts      OAuthBearerOptions
		zid       string
		token     string
		challenge string // the JSON error challenge; "" for success
	}{
		{"ok", OAuthBearerOptions{}, "", jws(none, `{"sub":"alice","exp":1700000060}`), ""},
		{"ok with iat and scope list", OAuthBearerOptions{RequiredScope: []string{"a", "b"}}, "alice",
			jws(none, `{"sub":"alice","iat":1699999990,"exp":1700000060.5,"scope":["b","a","c"]}`), ""},
		{"custom principal claim", OAuthBearerOptions{PrincipalClaimName: "uid"}, "",
			jws(none, `{"uid":"alice","exp":1700000060}`), ""},
		{"expired", OAuthBearerOptions{}, "", jws(none, `{"sub":"alice","exp":1700000000}`), `{"status":"invalid_token"}`},
		{"expired within skew", OAuthBearerOptions{AllowableClockSkew: 2 * time.Second}, "",
			jws(none, `{"sub":"alice","exp":1699999999}`), ""},
		{"no exp", OAuthBearerOptions{}, "", jws(none, `{"sub":"alice"}`), `{"status":"invalid_token"}`},
		{"no sub", OAuthBearerOptions{}, "", jws(none, `{"exp":1700000060}`), `{"status":"invalid_token"}`},
		{"sub not a string", OAuthBearerOptions{}, "", jws(none, `{"sub":7,"exp":1700000060}`), `{"status":"invalid_token"}`},
		{"signed", OAuthBearerOptions{}, "", jws(`{"alg":"HS256"}`, `{"sub":"alice","exp":1700000060}`), `{"status":"invalid_token"}`},
		{"signature present", OAuthBearerOptions{}, "", jws(none, `{"sub":"alice","exp":1700000060}`) + "c2ln", `{"status":"invalid_token"}`},
		{"issued in the future", OAuthBearerOptions{}, "", jws(none, `{"sub":"alice","iat":1700000010,"exp":1700000060}`), `{"status":"invalid_token"}`},
		{"exp before iat", OAuthBearerOptions{AllowableClockSkew: time.Hour}, "", jws(none, `{"sub":"alice","iat":1700000010,"exp":1700000005}`), `{"status":"invalid_token"}`},
		{"not json", OAuthBearerOptions{}, "", "e30.bm90IGpzb24.", `{"status":"invalid_token"}`},
		{"missing scope", OAuthBearerOptions{RequiredScope: []string{"write", "read"}}, "",
			jws(none, `{"sub":"alice","exp":1700000060,"scope":"read"}`), `{"status":"insufficient_scope", "scope":"write read"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewOAuthBearerServer(tc.opts, clock)
			client := oauth.Auth{Zid: tc.zid, Token: tc.token, Extensions: map[string]string{"traceId": "x1"}}.AsMechanism()
			_, first, err := client.Authenticate(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			challenge, done, p, err := s.Step(first)
			if tc.challenge == "" {
				if err != nil || !done || len(challenge) != 0 || p != User("alice") {
					t.Fatalf("got %q %v %v %v", challenge, done, p, err)
				}
				return
			}
			if err != nil || done || string(challenge) != tc.challenge {
				t.Fatalf("got %q %v %v, want challenge %s", challenge, done, err, tc.challenge)
			}
			_, _, _, err = s.Step([]byte{1})
			wantFailure(t, err, tc.challenge)
		})
	}
	if exp := (&oauthServer{expiry: now}).Expiry(); !exp.Equal(now) {
		t.Fatal(exp)
	}
	for _, first := range []string{"", "\x01", "n,,\x01auth=Basic abc\x01\x01", "n,,\x01auth=Bearer a+b\x01\x01", "n,,auth=Bearer abc\x01\x01"} {
		_, _, _, err := NewOAuthBearerServer(OAuthBearerOptions{}, clock).Step([]byte(first))
		wantFailure(t, err, "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER")
	}
	s := NewOAuthBearerServer(OAuthBearerOptions{}, clock)
	tok := "n,a=bob,\x01auth=Bearer " + jws(none, `{"sub":"alice","exp":1700000060}`) + "\x01\x01"
	if _, _, _, err := s.Step([]byte(tok)); err == nil || !strings.Contains(err.Error(), "authorization id") {
		t.Fatalf("authzid mismatch: %v", err)
	}
}

func TestParseOAuthBearerJAAS(t *testing.T) {
	o, err := ParseOAuthBearerJAAS(`org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required
		unsecuredLoginStringClaim_sub="admin" unsecuredValidatorRequiredScope=" a  b " unsecuredValidatorAllowableClockSkewMs="1500"
		unsecuredValidatorPrincipalClaimName="uid" unsecuredValidatorScopeClaimName="scp";`)
	if err != nil || o.PrincipalClaimName != "uid" || o.ScopeClaimName != "scp" ||
		len(o.RequiredScope) != 2 || o.AllowableClockSkew != 1500*time.Millisecond {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := ParseOAuthBearerJAAS(`x required unsecuredValidatorAllowableClockSkewMs="-1";`); err == nil {
		t.Fatal("negative skew accepted")
	}
}

func TestSASLConfigNewServer(t *testing.T) {
	store := NewSCRAMStore()
	cred, _ := NewSCRAMCredential(MechanismSCRAMSHA512, "pw", []byte("salt"), 4096)
	store.Set("alice", MechanismSCRAMSHA512, cred)
	now := time.Unix(1_700_000_000, 0)
	c := &SASLConfig{
		Enabled: []string{MechanismPlain, MechanismSCRAMSHA512, MechanismOAuthBearer, "GSSAPI"}, // GSSAPI: enabled but not implemented
		Plain:   PlainUsers{"alice": "pw"},
		SCRAM:   store,
		Now:     func() time.Time { return now },
		Rand:    rand.Reader,
	}
	for _, tc := range []struct {
		mech   string
		client sasl.Mechanism
	}{
		{MechanismPlain, plain.Auth{User: "alice", Pass: "pw"}.AsMechanism()},
		{MechanismSCRAMSHA512, scram.Auth{User: "alice", Pass: "pw"}.AsSha512Mechanism()},
		{MechanismOAuthBearer, oauth.Auth{Token: jws(`{"alg":"none"}`, `{"sub":"alice","exp":1700000060}`)}.AsMechanism()},
	} {
		s, err := c.NewServer(tc.mech)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := exchange(t, tc.client, s); err != nil || p != User("alice") {
			t.Fatalf("%s: %v %v", tc.mech, p, err)
		}
	}
	for _, mech := range []string{MechanismSCRAMSHA256, "GSSAPI", "plain"} {
		if _, err := c.NewServer(mech); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
			t.Fatalf("%s: %v", mech, err)
		}
	}
}
