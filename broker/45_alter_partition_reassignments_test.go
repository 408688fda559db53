package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAlterPartitionReassignments(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "re", 2)
	id := b.nodeID
	tests := []struct {
		name      string
		topic     string
		partition int32
		replicas  []int32
		code      int16
		msg       string // "" for a null message
	}{
		{"current replicas", "re", 1, []int32{id}, 0, ""},
		{"other broker", "re", 0, []int32{id + 1}, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", id+1)},
		{"one more broker", "re", 0, []int32{id, id + 5, id + 2}, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", id+2)},
		{"twice", "re", 0, []int32{id, id}, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", id)},
		{"empty", "re", 0, []int32{}, kerr.InvalidReplicaAssignment.Code, "The manual partition assignment includes an empty replica list."},
		{"cancel", "re", 0, nil, kerr.NoReassignmentInProgress.Code, ""},
		{"unknown partition", "re", 2, []int32{id}, kerr.UnknownTopicOrPartition.Code, "Unable to find partition re:2."},
		{"unknown topic", "gone", 0, []int32{id}, kerr.UnknownTopicOrPartition.Code, "Unable to find a topic named gone."},
	}
	for v := alterPartitionReassignmentsVersions.min; v <= alterPartitionReassignmentsVersions.max; v++ {
		for _, tt := range tests {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			req.SetVersion(v)
			req.AllowReplicationFactorChange = false
			req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: tt.topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: tt.partition, Replicas: tt.replicas}}}}
			resp := sendVersioned(t, b, req).(*kmsg.AlterPartitionAssignmentsResponse)
			if resp.ErrorCode != 0 || resp.ErrorMessage != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("v%d %s: %+v", v, tt.name, resp)
			}
			if v >= 1 && resp.AllowReplicationFactorChange {
				t.Errorf("v%d %s: AllowReplicationFactorChange not echoed", v, tt.name)
			}
			p := resp.Topics[0].Partitions[0]
			var msg string
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			if p.Partition != tt.partition || p.ErrorCode != tt.code || msg != tt.msg || (tt.msg == "" && p.ErrorMessage != nil) {
				t.Errorf("v%d %s: partition %d %v %q, want %v %q", v, tt.name, p.Partition, kerr.ErrorForCode(p.ErrorCode), msg, kerr.ErrorForCode(tt.code), tt.msg)
			}
		}
	}

	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.SetVersion(1)
	req.AllowReplicationFactorChange = false
	if resp := sendVersioned(t, b, req).(*kmsg.AlterPartitionAssignmentsResponse); resp.ErrorMessage == nil || *resp.ErrorMessage != "" || !resp.AllowReplicationFactorChange || len(resp.Topics) != 0 {
		t.Errorf("no topics: %+v", resp)
	}
}
