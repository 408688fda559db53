package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func upsert(name string, mech int8, iterations int32, password string) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
	u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	u.Name, u.Mechanism, u.Iterations, u.Salt = name, mech, iterations, []byte("salt")
	// What kafka-configs.sh and franz-go's admin send: the salted password.
	u.SaltedPassword, _ = pbkdf2.Key(sha256.New, password, u.Salt, int(iterations), sha256.Size)
	return u
}

func deletion(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
	d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	d.Name, d.Mechanism = name, mech
	return d
}

type result struct {
	user string
	code int16
}

func alterResults(resp *kmsg.AlterUserSCRAMCredentialsResponse) []result {
	var out []result
	for _, r := range resp.Results {
		out = append(out, result{r.User, r.ErrorCode})
	}
	return out
}

func TestSCRAMStoreAlter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		deletions []kmsg.AlterUserSCRAMCredentialsRequestDeletion
		upserts   []kmsg.AlterUserSCRAMCredentialsRequestUpsertion
		want      []result
		wantIters map[string]int32 // users' SCRAM-SHA-256 iterations afterwards; 0 = none
	}{
		{"create", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("bob", 1, 8192, "pw")},
			[]result{{"bob", 0}}, map[string]int32{"bob": 8192, "alice": 4096}},
		{"delete", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{deletion("alice", 1)}, nil,
			[]result{{"alice", 0}}, map[string]int32{"alice": 0}},
		{"delete missing", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{deletion("alice", 2), deletion("bob", 1)}, nil,
			[]result{{"alice", kerr.ResourceNotFound.Code}, {"bob", kerr.ResourceNotFound.Code}}, map[string]int32{"alice": 4096}},
		{"duplicate drops both", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{deletion("alice", 1)},
			[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("alice", 2, 4096, "x"), upsert("bob", 1, 4096, "pw")},
			[]result{{"bob", 0}, {"alice", kerr.DuplicateResource.Code}}, map[string]int32{"alice": 4096, "bob": 4096}},
		{"iterations", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("low", 1, 4095, "pw"), upsert("high", 1, 16385, "pw"), upsert("max", 1, 16384, "pw")},
			[]result{{"max", 0}, {"low", kerr.UnacceptableCredential.Code}, {"high", kerr.UnacceptableCredential.Code}},
			map[string]int32{"low": 0, "high": 0, "max": 16384}},
		{"empty name and bad mechanism", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{deletion("alice", 3)},
			[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{upsert("", 1, 4096, "pw")},
			[]result{{"alice", kerr.UnsupportedSaslMechanism.Code}, {"", kerr.UnacceptableCredential.Code}}, map[string]int32{"alice": 4096}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSCRAMStore()
			alice, _ := NewSCRAMCredential(MechanismSCRAMSHA256, "pw", []byte("s"), 4096)
			s.Set("alice", MechanismSCRAMSHA256, alice)
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			req.Deletions, req.Upsertions = tc.deletions, tc.upserts
			got := alterResults(s.Alter(req))
			if len(got) != len(tc.want) {
				t.Fatalf("results %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("results %v, want %v", got, tc.want)
				}
			}
			for user, iters := range tc.wantIters {
				c, ok := s.Lookup(user, MechanismSCRAMSHA256)
				if ok != (iters != 0) || c.Iterations != iters {
					t.Fatalf("%s: %v %v, want %d iterations", user, c.Iterations, ok, iters)
				}
			}
		})
	}
}

func TestSCRAMStoreLoginAfterAlter(t *testing.T) {
	s := NewSCRAMStore()
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = append(req.Upsertions, upsert("carol", 1, 4096, "secret"))
	if r := s.Alter(req).Results; len(r) != 1 || r[0].ErrorCode != 0 {
		t.Fatalf("%+v", r)
	}
	for _, tc := range []struct {
		pass string
		ok   bool
	}{{"secret", true}, {"wrong", false}} {
		srv, _ := NewSCRAMServer(MechanismSCRAMSHA256, s.Lookup, rand.Reader)
		p, err := exchange(t, scram.Auth{User: "carol", Pass: tc.pass}.AsSha256Mechanism(), srv)
		if (err == nil) != tc.ok || tc.ok && p != User("carol") {
			t.Fatalf("password %q: %v %v", tc.pass, p, err)
		}
	}
	if _, ok := s.Lookup("carol", MechanismSCRAMSHA512); ok {
		t.Fatal("SHA-512 credential appeared")
	}
	if err := s.Set("carol", "SCRAM-SHA-1", SCRAMCredential{}); err == nil {
		t.Fatal("SCRAM-SHA-1 stored")
	}
}

func TestSCRAMStoreDescribe(t *testing.T) {
	s := NewSCRAMStore()
	for _, u := range []struct {
		user, mech string
		iters      int32
	}{{"bob", MechanismSCRAMSHA512, 8192}, {"alice", MechanismSCRAMSHA256, 4096}, {"alice", MechanismSCRAMSHA512, 5000}} {
		c, _ := NewSCRAMCredential(u.mech, "pw", []byte("s"), u.iters)
		s.Set(u.user, u.mech, c)
	}
	describe := func(users ...string) *kmsg.DescribeUserSCRAMCredentialsResponse {
		req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		for _, u := range users {
			r := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			r.Name = u
			req.Users = append(req.Users, r)
		}
		return s.Describe(req)
	}
	all := describe()
	if len(all.Results) != 2 || all.Results[0].User != "alice" || len(all.Results[0].CredentialInfos) != 2 ||
		all.Results[0].CredentialInfos[1].Iterations != 5000 || all.Results[1].CredentialInfos[0].Mechanism != 2 {
		t.Fatalf("all: %+v", all.Results)
	}
	some := describe("bob", "nobody", "alice", "alice")
	want := []result{{"bob", 0}, {"nobody", kerr.ResourceNotFound.Code}, {"alice", kerr.DuplicateResource.Code}}
	if len(some.Results) != len(want) {
		t.Fatalf("%+v", some.Results)
	}
	for i, r := range some.Results {
		if (result{r.User, r.ErrorCode}) != want[i] || r.ErrorCode != 0 && len(r.CredentialInfos) != 0 {
			t.Fatalf("%d: %+v, want %v", i, r, want[i])
		}
	}
}
