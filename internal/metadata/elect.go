package metadata

import (
	"maps"
	"slices"
)

// Elections asked for by ElectLeaders, as KRaft's ReplicationControlManager
// decides them.

// ElectPreferred is the changes that move leadership back to each
// partition's preferred replica (its first) where that replica is in the
// ISR and live, for the partitions named (all when nil), and the named
// partitions whose election is not needed or cannot be done, by topic.
func (img *Image) ElectPreferred(partitions map[string][]int32) (out []Record, notNeeded, failed map[string][]int32) {
	return img.electEach(partitions, func(t *TopicImage, i int32, p *PartitionState) (Record, bool) {
		if p.Leader == p.Replicas[0] {
			return nil, true
		}
		if slices.Contains(p.ISR, p.Replicas[0]) && img.live(p.Replicas[0]) {
			return &PartitionChange{TopicID: t.ID, Partition: i, Leader: p.Replicas[0]}, false
		}
		return nil, false
	})
}

// ElectUnclean is ElectLeaders UNCLEAN: a leader for each partition that
// has none, from its ISR if a member is live, else (whatever the topic's
// unclean.leader.election.enable: the operator asked for it) the first
// live replica, which becomes the whole ISR. A partition with a leader
// needs no election; one without a live replica fails.
func (img *Image) ElectUnclean(partitions map[string][]int32) (out []Record, notNeeded, failed map[string][]int32) {
	return img.electEach(partitions, func(t *TopicImage, i int32, p *PartitionState) (Record, bool) {
		if p.Leader != NoLeader {
			return nil, true
		}
		leader, wasUnclean, ok := img.electLeader(p, NoLeader, true)
		if !ok {
			return nil, false
		}
		c := &PartitionChange{TopicID: t.ID, Partition: i, Leader: leader}
		if wasUnclean {
			c.SetISR([]int32{leader})
		}
		return c, false
	})
}

// electEach runs one election per partition named (every partition of
// every topic when partitions is nil): a change, no change needed, or
// (neither) failed, which unknown partitions are too.
func (img *Image) electEach(partitions map[string][]int32, one func(t *TopicImage, i int32, p *PartitionState) (change Record, notNeeded bool)) (out []Record, notNeeded, failed map[string][]int32) {
	notNeeded, failed = map[string][]int32{}, map[string][]int32{}
	names := slices.Sorted(maps.Keys(partitions))
	if partitions == nil {
		names = slices.Sorted(maps.Keys(img.Topics))
	}
	for _, name := range names {
		t := img.Topics[name]
		if t == nil {
			failed[name] = partitions[name]
			continue
		}
		ps := partitions[name]
		if partitions == nil {
			for i := range t.Partitions {
				ps = append(ps, int32(i))
			}
		}
		for _, i := range ps {
			p := img.Partition(t.ID, i)
			if p == nil {
				failed[name] = append(failed[name], i)
				continue
			}
			switch c, skip := one(t, i, p); {
			case c != nil:
				out = append(out, c)
			case skip:
				notNeeded[name] = append(notNeeded[name], i)
			default:
				failed[name] = append(failed[name], i)
			}
		}
	}
	return out, notNeeded, failed
}
