package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments: v0-1 (v1, KIP-860, adds
// AllowReplicationFactorChange, echoed in the response). Every partition
// lives on this broker alone, so the only valid target is [broker.id]: it
// equals the current replica set and completes at once with no error, as
// Kafka's controller does for a target that moves nothing (so the
// replication-factor check of v1 can never fail here either). Anything else
// fails Kafka's manual-assignment validation with INVALID_REPLICA_ASSIGNMENT
// and its message; null replicas (cancel) get NO_REASSIGNMENT_IN_PROGRESS
// (no message: it is the code's default), and unknown topics or partitions
// UNKNOWN_TOPIC_OR_PARTITION with Kafka's message.
var alterPartitionReassignmentsVersions = versions{0, 1}

func (b *Broker) handleAlterPartitionReassignments(rc *reqCtx, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if len(req.Topics) == 0 {
		// Kafka's controller short-cuts an empty request with a bare
		// response object: an empty (not null) message and the field's
		// default of true.
		empty := ""
		resp.ErrorMessage = &empty
		return resp, nil
	}
	if b.cluster != nil {
		return b.cluster.alterReassignments(rc, req)
	}
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode, sp.ErrorMessage = b.reassignmentError(t, rt.Topic, rp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// reassignmentError is Kafka's verdict on reassigning one partition of topic
// t (nil when unknown), in the order its controller checks.
func (b *Broker) reassignmentError(t *topic, name string, rp kmsg.AlterPartitionAssignmentsRequestTopicPartition) (int16, *string) {
	fail := func(err *kerr.Error, format string, args ...any) (int16, *string) {
		msg := fmt.Sprintf(format, args...)
		return err.Code, &msg
	}
	switch {
	case t == nil:
		return fail(kerr.UnknownTopicOrPartition, "Unable to find a topic named %s.", name)
	case rp.Partition < 0 || int(rp.Partition) >= len(t.partitions):
		return fail(kerr.UnknownTopicOrPartition, "Unable to find partition %s:%d.", name, rp.Partition)
	case rp.Replicas == nil:
		return kerr.NoReassignmentInProgress.Code, nil
	}
	if err := checkReplicas(b.nodeID, rp.Replicas); err != nil {
		return err.err.Code, &err.msg
	}
	return 0, nil
}
