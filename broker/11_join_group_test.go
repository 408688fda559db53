package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinV builds a JoinGroup at version v with one "range" protocol.
func joinV(v int16, group, member string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = v
	req.Group, req.MemberID, req.ProtocolType = group, member, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 10_000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("meta")}}
	return req
}

func TestJoinGroupVersions(t *testing.T) {
	b := NewTest(t)
	tests := []struct {
		version int16
		first   *kerr.Error // the answer to a first join without member id
	}{
		{0, nil}, // v0-3: the member id is handed out with the join
		{3, nil},
		{4, kerr.MemberIDRequired}, // KIP-394
		{9, kerr.MemberIDRequired},
	}
	for _, tt := range tests {
		group := "join-v" + string(rune('0'+tt.version))
		resp := sendVersioned(t, b, joinV(tt.version, group, "")).(*kmsg.JoinGroupResponse)
		if tt.first != nil {
			if resp.ErrorCode != tt.first.Code || resp.MemberID == "" {
				t.Fatalf("v%d first join: %v member %q", tt.version, kerr.ErrorForCode(resp.ErrorCode), resp.MemberID)
			}
			resp = sendVersioned(t, b, joinV(tt.version, group, resp.MemberID)).(*kmsg.JoinGroupResponse)
		}
		if resp.ErrorCode != 0 || resp.Generation != 1 || resp.LeaderID != resp.MemberID || resp.Protocol == nil || *resp.Protocol != "range" || len(resp.Members) != 1 {
			t.Fatalf("v%d join: %+v", tt.version, resp)
		}
		if string(resp.Members[0].ProtocolMetadata) != "meta" {
			t.Errorf("v%d leader sees metadata %q", tt.version, resp.Members[0].ProtocolMetadata)
		}
	}

	bad := joinV(5, "join-bad", "")
	bad.SessionTimeoutMillis = 1000 // below group.min.session.timeout.ms
	if resp := sendVersioned(t, b, bad).(*kmsg.JoinGroupResponse); resp.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Errorf("short session timeout: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestGroupLifecycleV0 runs a one-member group through the oldest versions
// of every membership API.
func TestGroupLifecycleV0(t *testing.T) {
	b := NewTest(t)
	jr := sendVersioned(t, b, joinV(0, "old", "")).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(jr.ErrorCode))
	}
	if code := syncV(t, b, 0, "old", jr.MemberID, jr.Generation, []byte("assigned")); code != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(code))
	}
	if code := heartbeatV(t, b, 0, "old", jr.MemberID, jr.Generation); code != 0 {
		t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
	}
	if code := heartbeatV(t, b, 0, "old", jr.MemberID, jr.Generation+1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat of another generation: %v", kerr.ErrorForCode(code))
	}
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "old", jr.MemberID
	if resp := sendVersioned(t, b, lv).(*kmsg.LeaveGroupResponse); resp.ErrorCode != 0 {
		t.Fatalf("leave v0: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := sendVersioned(t, b, lv).(*kmsg.LeaveGroupResponse); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leaving twice v0: %v, want the member's error at top level", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestJoinGroupNoMinimumSession(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.GroupMinSessionTimeoutMs = 0 }))
	req := joinV(3, "short", "")
	req.SessionTimeoutMillis = 1
	if resp := sendVersioned(t, b, req).(*kmsg.JoinGroupResponse); resp.ErrorCode != 0 {
		t.Fatalf("1ms session with group.min.session.timeout.ms=0: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}
