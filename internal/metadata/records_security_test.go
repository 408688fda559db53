package metadata

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func securitySample() []Record {
	return []Record{
		&UserSCRAMCredential{Name: "alice", Mechanism: 1, Salt: []byte("salt"), StoredKey: []byte("stored"), ServerKey: []byte("server"), Iterations: 4096},
		&UserSCRAMCredential{Name: "alice", Mechanism: 2, Salt: []byte("s2"), StoredKey: []byte("k2"), ServerKey: []byte("v2"), Iterations: 8192},
		&AccessControlEntry{ID: [16]byte{7}, ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 4, Permission: 3},
		&AccessControlEntry{ID: [16]byte{8}, ResourceType: 3, ResourceName: "g", PatternType: 4, Principal: "User:*", Host: "10.0.0.1", Operation: 3, Permission: 2},
		&ClientQuota{Entity: []QuotaEntityPart{{Type: "user", Name: str("alice")}, {Type: "client-id"}}, Key: "producer_byte_rate", Value: 1 << 20},
		&ClientQuota{Entity: []QuotaEntityPart{{Type: "ip"}}, Key: "connection_creation_rate", Value: 10},
	}
}

func TestSecurityRecordsRoundTrip(t *testing.T) {
	in := append(securitySample(),
		&RemoveUserSCRAMCredential{Name: "alice", Mechanism: 2},
		&RemoveAccessControlEntry{ID: [16]byte{8}},
		&ClientQuota{Entity: []QuotaEntityPart{{Type: "ip"}}, Key: "connection_creation_rate", Remove: true})
	out, err := DecodeBatch(EncodeBatch(in...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
	nan := EncodeBatch(&ClientQuota{Entity: []QuotaEntityPart{{Type: "user"}}, Key: "k", Value: math.NaN()})
	if _, err := DecodeBatch(nan); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NaN quota: %v, want ErrCorrupt", err)
	}
}

func TestSecurityImage(t *testing.T) {
	img := NewImage()
	if err := img.Apply(5, securitySample()); err != nil {
		t.Fatal(err)
	}
	if img.Security.Offset != 5 || len(img.Security.SCRAM) != 2 || len(img.Security.ACLs) != 2 || len(img.Security.Quotas) != 2 {
		t.Fatalf("after the sample: %+v", img.Security)
	}
	// The same entity named in another order is the same entity.
	err := img.Apply(6, []Record{
		&ClientQuota{Entity: []QuotaEntityPart{{Type: "client-id"}, {Type: "user", Name: str("alice")}}, Key: "consumer_byte_rate", Value: 2},
		&RemoveUserSCRAMCredential{Name: "alice", Mechanism: 2},
		&RemoveAccessControlEntry{ID: [16]byte{8}},
		&ClientQuota{Entity: []QuotaEntityPart{{Type: "ip"}}, Key: "connection_creation_rate", Remove: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := img.Security
	if len(s.SCRAM) != 1 || len(s.ACLs) != 1 || len(s.Quotas) != 1 || s.Offset != 6 {
		t.Fatalf("after removals: %+v", s)
	}
	if q := s.Quotas[QuotaEntityKey([]QuotaEntityPart{{Type: "user", Name: str("alice")}, {Type: "client-id"}})]; q == nil || len(q.Values) != 2 {
		t.Fatalf("user+default client quota: %+v", q)
	}
	// A batch without security records leaves the offset alone.
	if err := img.Apply(7, []Record{&Topic{Name: "t", ID: [16]byte{1}}}); err != nil || img.Security.Offset != 6 {
		t.Fatalf("unrelated batch: %v, offset %d", err, img.Security.Offset)
	}
	// Records rebuild the same security image, a clone is deep.
	again := NewImage()
	if err := again.Apply(img.Offset, img.Records()); err != nil {
		t.Fatal(err)
	}
	again.Security.Offset = s.Offset
	if !reflect.DeepEqual(again.Security, img.Security) {
		t.Errorf("snapshot:\n got %+v\nwant %+v", again.Security, img.Security)
	}
	c := img.Clone()
	for _, q := range c.Security.Quotas {
		q.Values["x"] = 1
	}
	for k, cred := range c.Security.SCRAM {
		cred.Salt[0] = 'X'
		c.Security.SCRAM[k] = cred
	}
	if !reflect.DeepEqual(again.Security, img.Security) {
		t.Error("changing a clone changed the image")
	}
	// Removing what is not there stops the batch: the controller never
	// writes it, so a log that has it is not this image's.
	for _, r := range []Record{&RemoveUserSCRAMCredential{Name: "bob", Mechanism: 1}, &RemoveAccessControlEntry{ID: [16]byte{9}},
		&AccessControlEntry{ID: [16]byte{7}}, &ClientQuota{Key: "k", Value: 1}} {
		if err := img.Apply(8, []Record{r}); err == nil {
			t.Errorf("%T %+v applied", r, r)
		}
	}
}
