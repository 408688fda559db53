package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// With an authorizer, the SCRAM credential APIs need DESCRIBE (ALTER) on
// the cluster, as Kafka's: without the check anyone could set a super
// user's password and log in as it.
func TestSCRAMAPIsNeedClusterACLs(t *testing.T) {
	b := NewTest(t, WithAuthorizer("User:admin"), WithTestPrincipal(func(id string) string { return "User:" + id }))
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "admin", 1, 4096, []byte("salt"), []byte("salted")
	alter.Upsertions = append(alter.Upsertions, up, up) // twice: one result per user
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "carol", 1
	alter.Deletions = append(alter.Deletions, del)

	as := func(user string, req kmsg.Request) kmsg.Response {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ClientID(user))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		resp, err := cl.Request(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ar := as("alice", alter).(*kmsg.AlterUserSCRAMCredentialsResponse)
	if len(ar.Results) != 2 || ar.Results[0].User != "carol" || ar.Results[1].User != "admin" {
		t.Fatalf("alice's alter: %+v", ar.Results)
	}
	for _, r := range ar.Results {
		if r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Errorf("alice altering %s: %v", r.User, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if _, ok := b.scram.Lookup("admin", "SCRAM-SHA-256"); ok {
		t.Fatal("alice set admin's credential")
	}
	if dr := as("alice", kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse); dr.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(dr.Results) != 0 {
		t.Errorf("alice's describe: %+v", dr)
	}

	alter.Upsertions = alter.Upsertions[:1]
	alter.Deletions = nil
	if ar := as("admin", alter).(*kmsg.AlterUserSCRAMCredentialsResponse); len(ar.Results) != 1 || ar.Results[0].ErrorCode != 0 {
		t.Fatalf("admin's alter: %+v", ar.Results)
	}
	if dr := as("admin", kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse); dr.ErrorCode != 0 || len(dr.Results) != 1 {
		t.Errorf("admin's describe: %+v", dr)
	}
}
