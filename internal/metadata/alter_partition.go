package metadata

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// AlterPartition is the change a partition's leader proposes for its ISR
// (AlterPartition, 56), checked as KRaft's controller checks it: only the
// leader, at the current leader epoch (else FENCED_LEADER_EPOCH) and
// partition epoch (else INVALID_UPDATE_VERSION), with itself in the new
// ISR (INVALID_REQUEST), and only replicas that are live may join it
// (INELIGIBLE_REPLICA). epochs, when not nil, are the broker epochs the
// leader saw for the new ISR's members (v3+): a member registered again
// since is ineligible too.
func (img *Image) AlterPartition(leader int32, topicID [16]byte, partition, leaderEpoch, partitionEpoch int32, isr []int32, epochs []int64) (*PartitionChange, error) {
	p := img.Partition(topicID, partition)
	switch {
	case p == nil:
		return nil, kerr.UnknownTopicOrPartition
	case p.Leader != leader:
		return nil, kerr.NotLeaderForPartition
	case leaderEpoch != p.LeaderEpoch:
		return nil, fmt.Errorf("%w: leader epoch %d, the partition's is %d", kerr.FencedLeaderEpoch, leaderEpoch, p.LeaderEpoch)
	case partitionEpoch != p.PartitionEpoch:
		return nil, fmt.Errorf("%w: partition epoch %d, the partition's is %d", kerr.InvalidUpdateVersion, partitionEpoch, p.PartitionEpoch)
	case !slices.Contains(isr, leader):
		return nil, fmt.Errorf("%w: the leader %d is not in the new ISR %v", kerr.InvalidRequest, leader, isr)
	}
	for i, id := range isr {
		if !slices.Contains(p.Replicas, id) {
			return nil, fmt.Errorf("%w: %d is not a replica of the partition", kerr.IneligibleReplica, id)
		}
		if slices.Contains(p.ISR, id) {
			continue
		}
		b := img.Brokers[id]
		if !img.live(id) || (epochs != nil && b.Epoch != epochs[i]) {
			return nil, fmt.Errorf("%w: replica %d is fenced, shutting down or registered again", kerr.IneligibleReplica, id)
		}
	}
	c := (&PartitionChange{TopicID: topicID, Partition: partition, Leader: NoLeaderChange}).SetISR(slices.Clone(isr))
	if target := reassigning(p); target != nil {
		// The new ISR may complete the partition's reassignment.
		img.completeReassignment(c, p, target, isr)
	}
	return c, nil
}
