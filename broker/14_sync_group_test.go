package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// syncV sends a leader's SyncGroup assigning itself assignment, naming
// joinV's protocol type and name from v5, where they are mandatory.
func syncV(t *testing.T, b *Broker, v int16, group, member string, gen int32, assignment []byte) int16 {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = v
	req.Group, req.MemberID, req.Generation = group, member, gen
	if v >= 5 {
		req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	}
	req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: assignment}}
	resp := sendVersioned(t, b, req).(*kmsg.SyncGroupResponse)
	if resp.ErrorCode == 0 && string(resp.MemberAssignment) != string(assignment) {
		t.Errorf("sync v%d: assignment %q, want %q", v, resp.MemberAssignment, assignment)
	}
	return resp.ErrorCode
}

func TestSyncGroupChecksProtocol(t *testing.T) {
	b := NewTest(t)
	jr := sendVersioned(t, b, joinV(3, "sync", "")).(*kmsg.JoinGroupResponse)
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = "sync", jr.MemberID, jr.Generation
	// Kafka: from v5 both are mandatory, checked before anything else.
	for _, tc := range []struct {
		typ, name *string
	}{
		{nil, nil},
		{kmsg.StringPtr("consumer"), nil},
		{nil, kmsg.StringPtr("range")},
		{kmsg.StringPtr("consumer"), kmsg.StringPtr("roundrobin")},
	} {
		req.ProtocolType, req.Protocol = tc.typ, tc.name
		if resp := sendVersioned(t, b, req).(*kmsg.SyncGroupResponse); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Errorf("v5 sync with protocol type %v name %v: %v", tc.typ, tc.name, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	if code := syncV(t, b, 5, "sync", "ghost", jr.Generation, nil); code != kerr.UnknownMemberID.Code {
		t.Errorf("sync of an unknown member: %v", kerr.ErrorForCode(code))
	}
	if code := syncV(t, b, 5, "sync", jr.MemberID, jr.Generation, []byte("x")); code != 0 {
		t.Errorf("sync: %v", kerr.ErrorForCode(code))
	}
}
