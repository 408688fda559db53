package coordinator

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// The server-side assignors of KIP-848, by the names clients ask for them
// with (ServerAssignor) and group.consumer.assignors lists them.
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

// assignSpec is what a server-side assignor assigns from.
type assignSpec struct {
	members []string            // member ids, sorted
	topics  map[string][]string // member id → subscribed topics that exist, sorted
	meta    map[string]topicMeta
	prev    map[string]tpSet // the previous target assignment
}

// assignFunc computes a target assignment: member id → partitions.
type assignFunc func(assignSpec) map[string]tpSet

// assignorByName returns a server-side assignor by its name or by the class
// name Kafka's group.consumer.assignors also accepts; nil when unknown.
func assignorByName(name string) assignFunc {
	switch strings.TrimPrefix(name, "org.apache.kafka.coordinator.group.assignor.") {
	case assignorUniform, "UniformAssignor":
		return uniformAssign
	case assignorRange, "RangeAssignor":
		return rangeAssign
	}
	return nil
}

// shortAssignorName is the name an assignor is described with.
func shortAssignorName(name string) string {
	switch strings.TrimPrefix(name, "org.apache.kafka.coordinator.group.assignor.") {
	case "UniformAssignor":
		return assignorUniform
	case "RangeAssignor":
		return assignorRange
	}
	return name
}

// topicMembers inverts the subscriptions: topic → subscribing members,
// sorted by id.
func (s assignSpec) topicMembers() map[string][]string {
	out := make(map[string][]string)
	for _, id := range s.members {
		for _, t := range s.topics[id] {
			out[t] = append(out[t], id)
		}
	}
	return out
}

func emptyAssignment(members []string) map[string]tpSet {
	out := make(map[string]tpSet, len(members))
	for _, id := range members {
		out[id] = tpSet{}
	}
	return out
}

// uniformAssign is the uniform assignor: as balanced as the subscriptions
// allow (among members that can take a partition, counts differ by at most
// one) and sticky, moving only what balance requires. Kafka's
// UniformAssignor has the same goals; its placement of the moved
// partitions differs.
func uniformAssign(s assignSpec) map[string]tpSet {
	out := emptyAssignment(s.members)
	eligible := s.topicMembers()
	total := 0
	for topic := range eligible {
		total += int(s.meta[topic].partitions)
	}
	owner := make(map[topicPartition]string, total) // sized: growing it was a third of the work
	for _, id := range s.members {
		for tp := range s.prev[id] {
			// (A member's own few topics, not the topic's many members.)
			if m, ok := s.meta[tp.topic]; ok && tp.partition < m.partitions && slices.Contains(s.topics[id], tp.topic) {
				out[id][tp] = struct{}{}
				owner[tp] = id
			}
		}
	}
	leastLoaded := func(topic string) string {
		best := ""
		for _, id := range eligible[topic] {
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		return best
	}
	var all []topicPartition // every partition, in order
	for _, topic := range slices.Sorted(maps.Keys(eligible)) {
		for p := range s.meta[topic].partitions {
			tp := topicPartition{topic, p}
			all = append(all, tp)
			if _, ok := owner[tp]; !ok {
				id := leastLoaded(topic)
				out[id][tp] = struct{}{}
				owner[tp] = id
			}
		}
	}
	// Then the most loaded member gives a partition to the least loaded
	// one that can take it, one at a time, so only the surplus moves.
	// Every move lowers the sum of squared loads, so this ends.
	byLoad := slices.Clone(s.members)
	for moved := true; moved; {
		moved = false
		slices.SortStableFunc(byLoad, func(a, b string) int { return cmp.Compare(len(out[b]), len(out[a])) })
		least := len(out[byLoad[len(byLoad)-1]])
		for _, from := range byLoad {
			if len(out[from]) <= least+1 {
				break // neither it nor anyone after it can give
			}
			for _, tp := range all {
				if owner[tp] != from {
					continue
				}
				if to := leastLoaded(tp.topic); len(out[from]) > len(out[to])+1 {
					delete(out[from], tp)
					out[to][tp] = struct{}{}
					owner[tp] = to
					moved = true
					break
				}
			}
			if moved {
				break
			}
		}
	}
	return out
}

// rangeAssign is the range assignor: each topic's partitions are split into
// consecutive ranges over its subscribers in member-id order, the first
// ones taking one more when they do not divide evenly, so members
// subscribed to co-partitioned topics get the same partition numbers.
func rangeAssign(s assignSpec) map[string]tpSet {
	out := emptyAssignment(s.members)
	for topic, ids := range s.topicMembers() {
		n := s.meta[topic].partitions
		quota, extra := n/int32(len(ids)), n%int32(len(ids))
		next := int32(0)
		for i, id := range ids {
			count := quota
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				out[id][topicPartition{topic, p}] = struct{}{}
			}
			next += count
		}
	}
	return out
}
