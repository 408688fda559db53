package metadata

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A reassignment of [1 2] to [2 3]: replicas [2 3 1] adding 3 removing 1
// until the leader's AlterPartition puts 3 in the ISR, which completes it:
// replicas [2 3], 1 out of the ISR and of the leadership, a new leader
// epoch. A cancel goes back to the original replicas; a target of another
// size needs AllowReplicationFactorChange; the current replicas move
// nothing.
func TestReassign(t *testing.T) {
	img := cluster(t, 3)
	id := [16]byte{9}
	recs, err := img.CreateTopic("r", id, 1, 2, [][]int32{{1, 2}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	if _, err := img.Reassign("r", 0, nil, true); !errors.Is(err, kerr.NoReassignmentInProgress) {
		t.Errorf("cancel without a reassignment: %v", err)
	}
	if _, err := img.Reassign("r", 0, []int32{1, 2, 3}, false); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("another size without AllowReplicationFactorChange: %v", err)
	}
	if _, err := img.Reassign("r", 0, []int32{2, 4}, true); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Errorf("an unregistered broker: %v", err)
	}
	if _, err := img.Reassign("r", 1, []int32{2, 3}, true); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("an unknown partition: %v", err)
	}
	if c, err := img.Reassign("r", 0, []int32{1, 2}, true); c != nil || err != nil {
		t.Errorf("the current replicas: %+v %v", c, err)
	}

	// Start, then cancel.
	start := func() {
		t.Helper()
		c, err := img.Reassign("r", 0, []int32{2, 3}, true)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, img, []Record{c})
		p := partition(img, "r", 0)
		if !slices.Equal(p.Replicas, []int32{2, 3, 1}) || !slices.Equal(p.Adding, []int32{3}) || !slices.Equal(p.Removing, []int32{1}) || p.Leader != 1 {
			t.Fatalf("started: %+v", p)
		}
	}
	start()
	c, err := img.Reassign("r", 0, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, []Record{c})
	// Kafka's revert keeps the replicas' order, minus those being added.
	if p := partition(img, "r", 0); !slices.Equal(p.Replicas, []int32{2, 1}) || len(p.Adding) != 0 || len(p.Removing) != 0 || p.Leader != 1 {
		t.Fatalf("cancelled: %+v", p)
	}

	// Start, then 3 catches up.
	start()
	p := partition(img, "r", 0)
	epoch := p.LeaderEpoch
	c, err = img.AlterPartition(1, id, 0, p.LeaderEpoch, p.PartitionEpoch, []int32{1, 2, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, []Record{c})
	p = partition(img, "r", 0)
	if !slices.Equal(p.Replicas, []int32{2, 3}) || !slices.Equal(p.ISR, []int32{2, 3}) || len(p.Adding) != 0 || len(p.Removing) != 0 {
		t.Fatalf("completed: %+v", p)
	}
	if p.Leader != 2 || p.LeaderEpoch != epoch+1 {
		t.Errorf("completed: leader %d epoch %d, want 2 (the removed 1 led) at epoch %d", p.Leader, p.LeaderEpoch, epoch+1)
	}
}
