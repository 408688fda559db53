package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetDelete(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "od", 2)
	commitV(t, b, 2, "od-g", "od", 5, 0, 1)
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "od-g"
	req.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "od", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}},
		{Topic: "missing", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	resp := sendVersioned(t, b, req).(*kmsg.OffsetDeleteResponse)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("offset delete: %+v", resp)
	}
	if fetchOne(t, b, 5, "od-g", "od", 1).Offset != -1 || fetchOne(t, b, 5, "od-g", "od", 0).Offset != 5 {
		t.Fatal("wrong offsets deleted")
	}
	req.Group = "od-none"
	if resp := sendVersioned(t, b, req).(*kmsg.OffsetDeleteResponse); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("unknown group: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}
