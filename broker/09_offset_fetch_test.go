package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchOne fetches one partition's committed offset at version v (< 8).
func fetchOne(t *testing.T, b *Broker, v int16, group, topic string, p int32) kmsg.OffsetFetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = v
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{p}}}
	resp := sendVersioned(t, b, req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("offset fetch v%d: %+v", v, resp)
	}
	return resp.Topics[0].Partitions[0]
}

func TestOffsetFetchVersions(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "of", 3)
	commitV(t, b, 2, "of-a", "of", 11, 0, 2)
	commitV(t, b, 2, "of-b", "of", 22, 1)

	for v := int16(0); v < 8; v++ {
		if got := fetchOne(t, b, v, "of-a", "of", 2); got.Offset != 11 {
			t.Errorf("v%d: committed %d, want 11", v, got.Offset)
		}
		if got := fetchOne(t, b, v, "of-a", "of", 1); got.Offset != -1 || got.ErrorCode != 0 {
			t.Errorf("v%d uncommitted partition: %+v", v, got)
		}
	}
	// v2+: null topics means every committed partition of the group.
	all := kmsg.NewPtrOffsetFetchRequest()
	all.Version = 7
	all.Group = "of-a"
	resp := sendVersioned(t, b, all).(*kmsg.OffsetFetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 || resp.Topics[0].Partitions[1].Partition != 2 {
		t.Fatalf("all offsets: %+v", resp.Topics)
	}
	// v8+: several groups at once.
	multi := kmsg.NewPtrOffsetFetchRequest()
	multi.Version = 9
	multi.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "of-a"}, {Group: "of-b", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "of", Partitions: []int32{1}}}}, {Group: "none"}}
	mresp := sendVersioned(t, b, multi).(*kmsg.OffsetFetchResponse)
	if len(mresp.Groups) != 3 || len(mresp.Groups[0].Topics[0].Partitions) != 2 || mresp.Groups[1].Topics[0].Partitions[0].Offset != 22 || len(mresp.Groups[2].Topics) != 0 {
		t.Fatalf("multi-group fetch: %+v", mresp.Groups)
	}
}
