package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestLeaveGroupBatch(t *testing.T) {
	b := NewTest(t)
	jr := sendVersioned(t, b, joinV(3, "leave", "")).(*kmsg.JoinGroupResponse)
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3
	req.Group = "leave"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: jr.MemberID}, {MemberID: "ghost"}}
	resp := sendVersioned(t, b, req).(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode != 0 || len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("v3 batched leave: %+v", resp)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"leave"}
	if g := sendVersioned(t, b, d).(*kmsg.DescribeGroupsResponse).Groups[0]; g.State != "Empty" || len(g.Members) != 0 {
		t.Fatalf("after leave: %+v", g)
	}
}
