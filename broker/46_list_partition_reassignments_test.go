package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListPartitionReassignmentsAfterReassigning(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "lr", 2)
	alter := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	alter.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "lr", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{b.nodeID}}}}}
	if resp := sendVersioned(t, b, alter).(*kmsg.AlterPartitionAssignmentsResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("reassigning to the current replicas: %+v", resp)
	}
	// The reassignment completed at once: nothing is listed, whether asked
	// for every reassignment, for the topic or for an unknown one.
	for _, topics := range [][]kmsg.ListPartitionReassignmentsRequestTopic{
		nil,
		{{Topic: "lr", Partitions: []int32{0, 1}}},
		{{Topic: "missing", Partitions: []int32{0}}},
	} {
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		req.Topics = topics
		resp := sendVersioned(t, b, req).(*kmsg.ListPartitionReassignmentsResponse)
		if resp.ErrorCode != 0 || resp.ErrorMessage != nil || len(resp.Topics) != 0 {
			t.Errorf("topics %v: %+v", topics, resp)
		}
	}
}
