package consumer

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kafkit/kafkit"
)

func tps(topic string, parts ...int32) []kafkit.TopicPartition {
	out := make([]kafkit.TopicPartition, 0, len(parts))
	for _, p := range parts {
		out = append(out, kafkit.TopicPartition{Topic: topic, Partition: p})
	}
	return out
}

func TestRangeAndRoundRobin(t *testing.T) {
	ab := []string{"a", "b"}
	for _, tc := range []struct {
		name     string
		a        assignor
		members  []*member
		parts    map[string]int32
		expected map[string][]kafkit.TopicPartition
	}{
		{
			name:    "range uneven",
			a:       rangeAssignor{},
			members: []*member{{id: "m2", topics: ab}, {id: "m1", topics: ab}},
			parts:   map[string]int32{"a": 3, "b": 1},
			expected: map[string][]kafkit.TopicPartition{
				"m1": append(tps("a", 0, 1), tps("b", 0)...),
				"m2": tps("a", 2),
			},
		},
		{
			name:    "range only subscribers",
			a:       rangeAssignor{},
			members: []*member{{id: "m1", topics: []string{"a"}}, {id: "m2", topics: ab}},
			parts:   map[string]int32{"a": 2, "b": 2},
			expected: map[string][]kafkit.TopicPartition{
				"m1": tps("a", 0),
				"m2": append(tps("a", 1), tps("b", 0, 1)...),
			},
		},
		{
			name:    "range static members ordered by instance id",
			a:       rangeAssignor{},
			members: []*member{{id: "zzz", instanceID: "i1", topics: ab}, {id: "aaa", instanceID: "i2", topics: ab}},
			parts:   map[string]int32{"a": 2},
			expected: map[string][]kafkit.TopicPartition{
				"zzz": tps("a", 0),
				"aaa": tps("a", 1),
			},
		},
		{
			name:    "roundrobin",
			a:       roundRobinAssignor{},
			members: []*member{{id: "m1", topics: ab}, {id: "m2", topics: ab}},
			parts:   map[string]int32{"a": 3, "b": 2},
			expected: map[string][]kafkit.TopicPartition{
				"m1": append(tps("a", 0, 2), tps("b", 1)...),
				"m2": append(tps("a", 1), tps("b", 0)...),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.a.assign(tc.members, tc.parts)
			for id, want := range tc.expected {
				if !slices.Equal(got[id], want) {
					t.Errorf("%s got %v, want %v", id, got[id], want)
				}
			}
		})
	}
}

// checkComplete fails unless every partition is assigned exactly once.
func checkComplete(t *testing.T, out map[string][]kafkit.TopicPartition, parts map[string]int32) {
	t.Helper()
	seen := make(map[kafkit.TopicPartition]string)
	for id, a := range out {
		for _, tp := range a {
			if prev, dup := seen[tp]; dup {
				t.Fatalf("%v assigned to %s and %s", tp, prev, id)
			}
			seen[tp] = id
		}
	}
	var total int
	for _, n := range parts {
		total += int(n)
	}
	if len(seen) != total {
		t.Fatalf("%d of %d partitions assigned", len(seen), total)
	}
}

func TestStickyBalancedAndSticky(t *testing.T) {
	parts := map[string]int32{"t": 12}
	members := []*member{{id: "a", topics: []string{"t"}}, {id: "b", topics: []string{"t"}}, {id: "c", topics: []string{"t"}}}
	first := stickyAssignor{}.assign(members, parts)
	checkComplete(t, first, parts)
	for id, a := range first {
		if len(a) != 4 {
			t.Fatalf("%s got %d partitions, want 4", id, len(a))
		}
	}

	// A fourth member joins: owners keep 3 of their 4, and the partitions
	// that move are withheld until their owners revoke them.
	for _, m := range members {
		m.owned, m.generation = first[m.id], 1
	}
	members = append(members, &member{id: "d", topics: []string{"t"}, generation: -1})
	second := stickyAssignor{}.assign(members, parts)
	for _, m := range members[:3] {
		if len(second[m.id]) != 3 {
			t.Fatalf("%s keeps %d partitions, want 3", m.id, len(second[m.id]))
		}
		for _, tp := range second[m.id] {
			if !slices.Contains(m.owned, tp) {
				t.Fatalf("%s was given %v, which it did not own", m.id, tp)
			}
		}
	}
	if len(second["d"]) != 0 {
		t.Fatalf("new member got %v while their owners still hold them", second["d"])
	}

	// Follow-up rebalance: the freed partitions go to the new member.
	for _, m := range members {
		m.owned, m.generation = second[m.id], 2
	}
	third := stickyAssignor{}.assign(members, parts)
	checkComplete(t, third, parts)
	for _, m := range members {
		if len(third[m.id]) != 3 {
			t.Fatalf("%s has %d partitions, want 3", m.id, len(third[m.id]))
		}
		for _, tp := range m.owned {
			if !slices.Contains(third[m.id], tp) {
				t.Fatalf("%s lost %v in the follow-up rebalance", m.id, tp)
			}
		}
	}
}

func TestStickyStaleClaims(t *testing.T) {
	parts := map[string]int32{"t": 2}
	// Both claim t[0]; the newer generation wins. t[5] no longer exists.
	members := []*member{
		{id: "a", topics: []string{"t"}, owned: append(tps("t", 0), tps("t", 5)...), generation: 3},
		{id: "b", topics: []string{"t"}, owned: tps("t", 0), generation: 2},
	}
	out := stickyAssignor{}.assign(members, parts)
	checkComplete(t, out, parts)
	if !slices.Equal(out["a"], tps("t", 0)) || !slices.Equal(out["b"], tps("t", 1)) {
		t.Fatalf("got %v", out)
	}
}

func TestAssignorsManyMembers(t *testing.T) {
	for _, a := range []assignor{rangeAssignor{}, roundRobinAssignor{}, stickyAssignor{}} {
		for _, n := range []int{1, 5, 13} {
			t.Run(fmt.Sprintf("%s/%d", a.name(), n), func(t *testing.T) {
				parts := map[string]int32{"x": 7, "y": 30}
				var members []*member
				for i := range n {
					members = append(members, &member{id: fmt.Sprintf("m%02d", i), topics: []string{"x", "y"}})
				}
				out := a.assign(members, parts)
				checkComplete(t, out, parts)
				if a.name() == AssignorRange {
					return // range balances per topic, not overall
				}
				lo, hi := 1<<30, 0
				for _, m := range members {
					lo, hi = min(lo, len(out[m.id])), max(hi, len(out[m.id]))
				}
				if hi-lo > 1 {
					t.Fatalf("unbalanced: %d..%d", lo, hi)
				}
			})
		}
	}
}
