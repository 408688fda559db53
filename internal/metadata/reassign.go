package metadata

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignments, as KRaft's ReplicationControlManager and
// PartitionReassignmentReplicas carry them out: a reassignment to target
// replicas makes the replicas target followed by those being removed,
// with Adding and Removing set; once every target replica is in the ISR
// (the leader's AlterPartition adds the new ones when they caught up) it
// completes: replicas become target, the removed ones leave the ISR, and
// the leadership moves if its holder was removed (the leader epoch grows
// either way, so the removed replicas stop following). The data catch-up
// is replication's; this is the controller's part.

// Reassign is the change that reassigns a partition to target, or with a
// nil target cancels its reassignment (back to the replicas it had), in
// the order Kafka's controller checks; nil for a target that moves
// nothing. allowRFChange false (v1's
// AllowReplicationFactorChange) refuses a target of another size.
func (img *Image) Reassign(topic string, partition int32, target []int32, allowRFChange bool) (*PartitionChange, error) {
	t := img.Topics[topic]
	if t == nil {
		return nil, fmt.Errorf("%w: Unable to find a topic named %s.", kerr.UnknownTopicOrPartition, topic)
	}
	p := img.Partition(t.ID, partition)
	if p == nil {
		return nil, fmt.Errorf("%w: Unable to find partition %s:%d.", kerr.UnknownTopicOrPartition, topic, partition)
	}
	original := slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return slices.Contains(p.Adding, id) })
	if target == nil {
		if len(p.Adding) == 0 && len(p.Removing) == 0 {
			return nil, kerr.NoReassignmentInProgress
		}
		target = original
	} else {
		if err := img.CheckAssignment(target); err != nil {
			return nil, err
		}
		if !allowRFChange && len(target) != len(original) {
			return nil, fmt.Errorf("%w: The replication factor is changed from %d to %d but allowReplicationFactorChange is false", kerr.InvalidReplicationFactor, len(original), len(target))
		}
	}
	if reassigning(p) == nil && slices.Equal(target, p.Replicas) {
		return nil, nil // nothing to move
	}
	c := &PartitionChange{TopicID: t.ID, Partition: partition, Leader: NoLeaderChange}
	if img.completeReassignment(c, p, target, p.ISR) {
		return c, nil
	}
	adding := slices.DeleteFunc(slices.Clone(target), func(id int32) bool { return slices.Contains(original, id) })
	removing := slices.DeleteFunc(slices.Clone(original), func(id int32) bool { return slices.Contains(target, id) })
	c.SetReplicas(append(slices.Clone(target), removing...)).SetAdding(adding).SetRemoving(removing)
	return c, nil
}

// completeReassignment sets on c the completion of a reassignment of p to
// target if every target replica is in isr (p's ISR after c): replicas
// target, the others out of the ISR, and a new leader epoch when replicas
// were removed, with a new leader if the leader was (the first target
// replica in the ISR that is live).
func (img *Image) completeReassignment(c *PartitionChange, p *PartitionState, target, isr []int32) bool {
	for _, id := range target {
		if !slices.Contains(isr, id) {
			return false
		}
	}
	c.SetReplicas(slices.Clone(target)).SetAdding(nil).SetRemoving(nil)
	c.SetISR(slices.DeleteFunc(slices.Clone(isr), func(id int32) bool { return !slices.Contains(target, id) }))
	switch {
	case !slices.Contains(target, p.Leader):
		c.Leader = NoLeader
		for _, id := range target {
			if slices.Contains(c.ISR, id) && img.live(id) {
				c.Leader = id
				break
			}
		}
	case slices.ContainsFunc(p.Replicas, func(id int32) bool { return !slices.Contains(target, id) }):
		c.Leader = p.Leader // same leader, new epoch: the removed replicas stop following
	}
	return true
}

// reassigning is the target replicas of p's reassignment, nil when none
// is in progress.
func reassigning(p *PartitionState) []int32 {
	if len(p.Adding) == 0 && len(p.Removing) == 0 {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return slices.Contains(p.Removing, id) })
}
