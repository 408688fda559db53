package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeGroups(t *testing.T) {
	b := NewTest(t)
	jr := sendVersioned(t, b, joinV(5, "desc", "")).(*kmsg.JoinGroupResponse)
	jr = sendVersioned(t, b, joinV(5, "desc", jr.MemberID)).(*kmsg.JoinGroupResponse)
	syncV(t, b, 5, "desc", jr.MemberID, jr.Generation, []byte("assignment"))
	for v := describeGroupsVersions.min; v <= describeGroupsVersions.max; v++ {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = v
		req.Groups = []string{"desc", "unknown"}
		resp := sendVersioned(t, b, req).(*kmsg.DescribeGroupsResponse)
		g := resp.Groups[0]
		if g.ErrorCode != 0 || g.State != "Stable" || g.Protocol != "range" || g.ProtocolType != "consumer" || len(g.Members) != 1 {
			t.Fatalf("v%d: %+v", v, g)
		}
		m := g.Members[0]
		if m.MemberID != jr.MemberID || m.ClientID != "group-test" || m.ClientHost != "/127.0.0.1" || string(m.ProtocolMetadata) != "meta" || string(m.MemberAssignment) != "assignment" {
			t.Errorf("v%d member: %+v", v, m)
		}
		u := resp.Groups[1]
		wantCode := int16(0)
		if v >= 6 {
			wantCode = kerr.GroupIDNotFound.Code
		}
		if u.State != "Dead" || u.ErrorCode != wantCode {
			t.Errorf("v%d unknown group: state %q error %v", v, u.State, kerr.ErrorForCode(u.ErrorCode))
		}
	}
}
