package coordinator

import (
	"fmt"
	"testing"
)

func loads(out map[string]tpSet) (lo, hi int) {
	lo = 1 << 30
	for _, s := range out {
		lo, hi = min(lo, len(s)), max(hi, len(s))
	}
	return lo, hi
}

// TestUniformAssignorBalancedAndSticky: counts differ by at most one, every
// partition has one owner, and a member joining moves only the partitions
// it takes.
func TestUniformAssignorBalancedAndSticky(t *testing.T) {
	meta := map[string]topicMeta{"a": {partitions: 7}, "b": {partitions: 5}}
	spec := assignSpec{meta: meta, topics: map[string][]string{}}
	for i := range 3 {
		id := fmt.Sprint("m", i)
		spec.members = append(spec.members, id)
		spec.topics[id] = []string{"a", "b"}
	}
	first := uniformAssign(spec)
	if lo, hi := loads(first); hi-lo > 1 || lo != 4 {
		t.Fatalf("unbalanced: %d..%d", lo, hi)
	}
	seen := map[topicPartition]bool{}
	for _, s := range first {
		for tp := range s {
			if seen[tp] {
				t.Fatalf("%v assigned twice", tp)
			}
			seen[tp] = true
		}
	}
	if len(seen) != 12 {
		t.Fatalf("%d of 12 partitions assigned", len(seen))
	}
	spec.members = append(spec.members, "m3")
	spec.topics["m3"] = []string{"a", "b"}
	spec.prev = first
	second := uniformAssign(spec)
	moved := 0
	for id, s := range first {
		for tp := range s {
			if !second[id].has(tp) {
				moved++
			}
		}
	}
	if lo, hi := loads(second); hi-lo > 1 || moved != len(second["m3"]) {
		t.Errorf("after a join: loads %d..%d, %d partitions moved for the joiner's %d", lo, hi, moved, len(second["m3"]))
	}
}

// TestUniformAssignorHeterogeneous: a member only gets topics it subscribes
// to, and balance holds among the members that can share a topic.
func TestUniformAssignorHeterogeneous(t *testing.T) {
	spec := assignSpec{
		members: []string{"x", "y"},
		topics:  map[string][]string{"x": {"a"}, "y": {"a", "b"}},
		meta:    map[string]topicMeta{"a": {partitions: 4}, "b": {partitions: 2}},
	}
	out := uniformAssign(spec)
	for tp := range out["x"] {
		if tp.topic != "a" {
			t.Errorf("x got %v of a topic it does not subscribe to", tp)
		}
	}
	if len(out["x"]) != 3 || len(out["y"]) != 3 {
		t.Errorf("x %d, y %d partitions; want 3 each", len(out["x"]), len(out["y"]))
	}
}

// TestRangeAssignor: consecutive ranges per topic, the first members taking
// the remainder, the same partition numbers across co-partitioned topics.
func TestRangeAssignor(t *testing.T) {
	spec := assignSpec{
		members: []string{"m0", "m1"},
		topics:  map[string][]string{"m0": {"a", "b"}, "m1": {"a", "b"}},
		meta:    map[string]topicMeta{"a": {partitions: 3}, "b": {partitions: 3}},
	}
	out := rangeAssign(spec)
	want := map[string][]topicPartition{
		"m0": {{"a", 0}, {"a", 1}, {"b", 0}, {"b", 1}},
		"m1": {{"a", 2}, {"b", 2}},
	}
	for id, tps := range want {
		if got := out[id].sorted(); fmt.Sprint(got) != fmt.Sprint(tps) {
			t.Errorf("%s: got %v, want %v", id, got, tps)
		}
	}
}
