package metadata

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestAlterPartitionChecks(t *testing.T) {
	img := cluster(t, 3)
	id := [16]byte{7}
	recs, err := img.CreateTopic("t", id, 1, 3, [][]int32{{1, 2, 3}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	p := partition(img, "t", 0)
	for _, tc := range []struct {
		name         string
		leader       int32
		lEpoch, pEpo int32
		isr          []int32
		epochs       []int64
		want         *kerr.Error
	}{
		{"not the leader", 2, p.LeaderEpoch, p.PartitionEpoch, []int32{1, 2}, nil, kerr.NotLeaderForPartition},
		{"stale leader epoch", 1, p.LeaderEpoch - 1, p.PartitionEpoch, []int32{1, 2}, nil, kerr.FencedLeaderEpoch},
		{"stale partition epoch", 1, p.LeaderEpoch, p.PartitionEpoch + 1, []int32{1, 2}, nil, kerr.InvalidUpdateVersion},
		{"leader outside the ISR", 1, p.LeaderEpoch, p.PartitionEpoch, []int32{2, 3}, nil, kerr.InvalidRequest},
		{"not a replica", 1, p.LeaderEpoch, p.PartitionEpoch, []int32{1, 4}, nil, kerr.IneligibleReplica},
	} {
		if _, err := img.AlterPartition(tc.leader, id, 0, tc.lEpoch, tc.pEpo, tc.isr, tc.epochs); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// Shrink to {1, 2}: the partition epoch rises, the leader epoch stays.
	change, err := img.AlterPartition(1, id, 0, p.LeaderEpoch, p.PartitionEpoch, []int32{1, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, []Record{change})
	q := partition(img, "t", 0)
	if !slices.Equal(q.ISR, []int32{1, 2}) || q.PartitionEpoch != p.PartitionEpoch+1 || q.LeaderEpoch != p.LeaderEpoch {
		t.Fatalf("after the shrink %+v", q)
	}
	// 3 may join back while live, not once fenced, nor with an old epoch.
	if _, err := img.AlterPartition(1, id, 0, q.LeaderEpoch, q.PartitionEpoch, []int32{1, 2, 3}, []int64{1, 2, 99}); !errors.Is(err, kerr.IneligibleReplica) {
		t.Errorf("expansion with a stale broker epoch: %v", err)
	}
	if _, err := img.AlterPartition(1, id, 0, q.LeaderEpoch, q.PartitionEpoch, []int32{1, 2, 3}, []int64{1, 2, 3}); err != nil {
		t.Errorf("expansion with a live replica: %v", err)
	}
	fence, err := img.FenceBroker(3, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, fence)
	q = partition(img, "t", 0)
	if _, err := img.AlterPartition(1, id, 0, q.LeaderEpoch, q.PartitionEpoch, []int32{1, 2, 3}, nil); !errors.Is(err, kerr.IneligibleReplica) {
		t.Errorf("expansion with a fenced replica: %v", err)
	}
}
