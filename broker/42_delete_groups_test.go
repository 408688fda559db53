package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteGroups(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "dg", 1)
	sendVersioned(t, b, joinV(3, "dg-live", ""))
	commitV(t, b, 2, "dg-idle", "dg", 5, 0)
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = []string{"dg-live", "dg-idle", "dg-none"}
	resp := sendVersioned(t, b, req).(*kmsg.DeleteGroupsResponse)
	want := []int16{kerr.NonEmptyGroup.Code, 0, kerr.GroupIDNotFound.Code}
	for i, g := range resp.Groups {
		if g.Group != req.Groups[i] || g.ErrorCode != want[i] {
			t.Errorf("%s: %v, want %v", g.Group, kerr.ErrorForCode(g.ErrorCode), kerr.ErrorForCode(want[i]))
		}
	}
	if got := fetchOne(t, b, 5, "dg-idle", "dg", 0); got.Offset != -1 {
		t.Errorf("offset of a deleted group: %d", got.Offset)
	}
}

func TestDeleteTopicForgetsOffsets(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "dt", 1)
	commitV(t, b, 2, "dt-g", "dt", 9, 0)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 4
	del.TopicNames = []string{"dt"}
	if resp := sendVersioned(t, b, del).(*kmsg.DeleteTopicsResponse); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete topic: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	createTestTopic(t, b, "dt", 1)
	if got := fetchOne(t, b, 5, "dt-g", "dt", 0); got.Offset != -1 {
		t.Errorf("offset %d survived the topic's deletion", got.Offset)
	}
}
