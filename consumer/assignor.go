package consumer

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/kafkit/kafkit"
)

// member is one group member as the leader sees it in JoinGroup: what it
// subscribes to and (for cooperative assignors) what it owns now.
type member struct {
	id         string
	instanceID string // group.instance.id, "" for dynamic members
	topics     []string
	owned      []kafkit.TopicPartition
	generation int32 // the generation its owned partitions come from; -1 if unknown
}

// sortKey orders members as Java does: static members by instance id, so
// their assignment survives restarts, then dynamic members by member id.
func (m *member) sortKey() string {
	if m.instanceID != "" {
		return "0" + m.instanceID
	}
	return "1" + m.id
}

func (m *member) subscribes(topic string) bool { return slices.Contains(m.topics, topic) }

// assignor computes a group's assignment on the leader.
type assignor interface {
	name() string
	// cooperative assignors never move a partition in one rebalance: the
	// owner revokes it first and a follow-up rebalance assigns it.
	cooperative() bool
	// assign maps member id → partitions, given every member and the
	// partition count of each subscribed topic.
	assign(members []*member, partitions map[string]int32) map[string][]kafkit.TopicPartition
}

func assignorByName(name string) (assignor, error) {
	switch name {
	case AssignorRange:
		return rangeAssignor{}, nil
	case AssignorRoundRobin:
		return roundRobinAssignor{}, nil
	case AssignorCooperativeSticky:
		return stickyAssignor{}, nil
	}
	return nil, fmt.Errorf("unknown assignor %q (want range, roundrobin or cooperative-sticky)", name)
}

func sortedMembers(members []*member) []*member {
	s := slices.Clone(members)
	slices.SortFunc(s, func(a, b *member) int { return cmp.Compare(a.sortKey(), b.sortKey()) })
	return s
}

func sortedTopics(partitions map[string]int32) []string {
	topics := make([]string, 0, len(partitions))
	for t := range partitions {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	return topics
}

// rangeAssignor gives each member a contiguous range of every topic it
// subscribes to; the first members get one extra when it does not divide.
type rangeAssignor struct{}

func (rangeAssignor) name() string      { return AssignorRange }
func (rangeAssignor) cooperative() bool { return false }

func (rangeAssignor) assign(members []*member, partitions map[string]int32) map[string][]kafkit.TopicPartition {
	out := make(map[string][]kafkit.TopicPartition, len(members))
	sorted := sortedMembers(members)
	for _, topic := range sortedTopics(partitions) {
		var subs []*member
		for _, m := range sorted {
			if m.subscribes(topic) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := partitions[topic]
		per, extra := n/int32(len(subs)), n%int32(len(subs))
		next := int32(0)
		for i, m := range subs {
			count := per
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				out[m.id] = append(out[m.id], kafkit.TopicPartition{Topic: topic, Partition: p})
			}
			next += count
		}
	}
	return out
}

// roundRobinAssignor deals all partitions, sorted by topic and partition, to
// the members in turn, skipping members not subscribed to a topic.
type roundRobinAssignor struct{}

func (roundRobinAssignor) name() string      { return AssignorRoundRobin }
func (roundRobinAssignor) cooperative() bool { return false }

func (roundRobinAssignor) assign(members []*member, partitions map[string]int32) map[string][]kafkit.TopicPartition {
	out := make(map[string][]kafkit.TopicPartition, len(members))
	sorted := sortedMembers(members)
	if len(sorted) == 0 {
		return out
	}
	i := 0
	for _, topic := range sortedTopics(partitions) {
		for p := range partitions[topic] {
			for range sorted {
				m := sorted[i%len(sorted)]
				i++
				if m.subscribes(topic) {
					out[m.id] = append(out[m.id], kafkit.TopicPartition{Topic: topic, Partition: p})
					break
				}
			}
		}
	}
	return out
}

// stickyAssignor is cooperative-sticky: a balanced assignment that keeps every
// partition with its current owner where balance allows, and never hands a
// partition owned by one member to another in the same rebalance (KIP-429).
type stickyAssignor struct{}

func (stickyAssignor) name() string      { return AssignorCooperativeSticky }
func (stickyAssignor) cooperative() bool { return true }

func (stickyAssignor) assign(members []*member, partitions map[string]int32) map[string][]kafkit.TopicPartition {
	sorted := sortedMembers(members)
	out := make(map[string][]kafkit.TopicPartition, len(sorted))
	if len(sorted) == 0 {
		return out
	}
	exists := func(tp kafkit.TopicPartition) bool {
		n, ok := partitions[tp.Topic]
		return ok && tp.Partition >= 0 && tp.Partition < n
	}

	// Current owners; when two members claim a partition, the claim from
	// the newer generation wins. A member keeps only what it still
	// subscribes to, but every claim is withheld from the others below:
	// the owner has not revoked it yet.
	owner := make(map[kafkit.TopicPartition]*member)
	for _, m := range sorted {
		for _, tp := range m.owned {
			if prev, ok := owner[tp]; !ok || m.generation > prev.generation {
				owner[tp] = m
			}
		}
	}
	keeps := func(m *member, tp kafkit.TopicPartition) bool {
		return owner[tp] == m && exists(tp) && m.subscribes(tp.Topic)
	}

	var total int
	for _, n := range partitions {
		total += int(n)
	}
	floor := total / len(sorted)
	ceilSlots := total % len(sorted) // members that may hold floor+1

	// Keep owned partitions up to each member's quota, biggest owners first
	// so that they are the ones allowed the extra partition.
	byOwned := slices.Clone(sorted)
	ownedOf := func(m *member) []kafkit.TopicPartition {
		var tps []kafkit.TopicPartition
		for _, tp := range m.owned {
			if keeps(m, tp) {
				tps = append(tps, tp)
			}
		}
		slices.SortFunc(tps, compareTP)
		return slices.Compact(tps)
	}
	slices.SortStableFunc(byOwned, func(a, b *member) int { return cmp.Compare(len(ownedOf(b)), len(ownedOf(a))) })
	assigned := make(map[kafkit.TopicPartition]bool)
	for _, m := range byOwned {
		quota := floor
		if ceilSlots > 0 && len(ownedOf(m)) > floor {
			quota++
			ceilSlots--
		}
		for _, tp := range ownedOf(m) {
			if len(out[m.id]) < quota {
				out[m.id] = append(out[m.id], tp)
				assigned[tp] = true
			}
		}
	}

	// Hand out the rest to the least loaded subscribed member.
	for _, topic := range sortedTopics(partitions) {
		for p := range partitions[topic] {
			tp := kafkit.TopicPartition{Topic: topic, Partition: p}
			if assigned[tp] {
				continue
			}
			var best *member
			for _, m := range sorted {
				if m.subscribes(topic) && (best == nil || len(out[m.id]) < len(out[best.id])) {
					best = m
				}
			}
			if best != nil {
				out[best.id] = append(out[best.id], tp)
				assigned[tp] = true
			}
		}
	}

	// A partition moving away from its owner is withheld from its new
	// member for now: the owner revokes it and rejoins, and the next
	// rebalance assigns it while nobody owns it.
	for _, m := range sorted {
		out[m.id] = slices.DeleteFunc(out[m.id], func(tp kafkit.TopicPartition) bool {
			o, ok := owner[tp]
			return ok && o != m
		})
	}
	return out
}

// validateCooperative checks what a cooperative assignor must guarantee, as
// Java's leader does before SyncGroup: no partition that some member owns is
// given to another member in the same rebalance.
func validateCooperative(members []*member, out map[string][]kafkit.TopicPartition) error {
	owners := make(map[kafkit.TopicPartition][]string)
	for _, m := range members {
		for _, tp := range m.owned {
			owners[tp] = append(owners[tp], m.id)
		}
	}
	for _, m := range members {
		for _, tp := range out[m.id] {
			for _, o := range owners[tp] {
				if o != m.id && !slices.Contains(m.owned, tp) {
					return fmt.Errorf("cooperative assignment gives %s[%d], still owned by %s, to %s", tp.Topic, tp.Partition, o, m.id)
				}
			}
		}
	}
	return nil
}

func compareTP(a, b kafkit.TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}
