package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// checkStep checks the contract every Server keeps on arbitrary input: an
// error is an AuthError or ILLEGAL_SASL_STATE, success names a user, and a
// finished server refuses more tokens.
func checkStep(t *testing.T, s Server, tokens ...[]byte) {
	for _, tok := range tokens {
		_, done, p, err := s.Step(tok)
		var ae *AuthError
		switch {
		case err != nil && !errors.As(err, &ae) && !errors.Is(err, kerr.IllegalSaslState):
			t.Fatalf("error of an unknown kind: %v", err)
		case err != nil && done:
			t.Fatal("done with an error")
		case done && p.Name == "":
			t.Fatal("done without a principal")
		}
		if err != nil || done {
			if _, _, _, err := s.Step(nil); !errors.Is(err, kerr.IllegalSaslState) {
				t.Fatalf("step after the end: %v", err)
			}
			return
		}
	}
}

func FuzzPlainServer(f *testing.F) {
	f.Add([]byte("\x00alice\x00pw"))
	f.Add([]byte("alice\x00alice\x00pw"))
	f.Add([]byte("\x00\x00"))
	users := PlainUsers{"alice": "pw"}
	f.Fuzz(func(t *testing.T, token []byte) {
		checkStep(t, NewPlainServer(users), token)
	})
}

func FuzzSCRAMServer(f *testing.F) {
	lookup := scramUsers(f, 4096, map[string]string{"alice": "pw", "a,b": "pw"})
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	nonce := base64.RawStdEncoding.EncodeToString(make([]byte, 24))
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc"+nonce+",p="+proof))
	f.Add([]byte("n,a=alice,n=a=2Cb,r=x,ext=1"), []byte("c=bixhPWFsaWNlLA==,r=x"+nonce+",p="+proof))
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=,p="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		s, _ := NewSCRAMServer(MechanismSCRAMSHA256, lookup, bytes.NewReader(make([]byte, 24)))
		checkStep(t, s, first, final)
	})
}

func FuzzOAuthBearerServer(f *testing.F) {
	good := jws(`{"alg":"none"}`, `{"sub":"alice","exp":1700000060,"scope":["a"]}`)
	f.Add([]byte("n,,\x01auth=Bearer "+good+"\x01\x01"), []byte{1})
	f.Add([]byte("n,a=alice,\x01auth=Bearer "+good+"\x01k=v\x01\x01"), []byte{1})
	f.Add([]byte("n,,\x01auth=Bearer e30.e30.\x01\x01"), []byte{1})
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, first, second []byte) {
		s := NewOAuthBearerServer(OAuthBearerOptions{RequiredScope: []string{"a"}}, func() time.Time { return now })
		checkStep(t, s, first, second)
	})
}

func FuzzParseJAAS(f *testing.F) {
	f.Add(`org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="p\"w" user_="x";`)
	f.Add(`x required unsecuredValidatorAllowableClockSkewMs="12" unsecuredValidatorRequiredScope="a b";`)
	f.Fuzz(func(t *testing.T, s string) {
		for name, pw := range ParsePlainJAAS(s) {
			if !bytes.Contains([]byte(s), []byte("user_"+name)) {
				t.Fatalf("user %q (%q) not in the input", name, pw)
			}
		}
		if o, err := ParseOAuthBearerJAAS(s); err == nil && o.AllowableClockSkew < 0 {
			t.Fatal("negative skew")
		}
	})
}
