package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets on a cluster answers, as Kafka's fetchOffsetForTimestamp:
// latest at the current leader epoch, up to the high watermark for
// clients and up to the log end offset for a follower (ReplicaID ≥ 0);
// the earliest offset with the epoch the cache gives it; a found record
// with its batch's leader epoch.
func TestClusterListOffsetsEpochsAndReplicaEnd(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "lo", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("lo", 1)
	oldID := c.Leader("lo", 0)
	old := c.Broker(oldID)
	eventually(t, "leadership on the leader", func() bool { return old.topics.partition("lo", 0).leads() })
	firstEpoch := partitionState(c, "lo", 0).LeaderEpoch
	produce := func(p *pipe, acks int16, what string) {
		t.Helper()
		if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "lo", 0, acks, 5*time.Second, what))); code != 0 {
			t.Fatalf("produce %s: %v", what, kerr.ErrorForCode(code))
		}
	}
	op := dialPipe(t, old)
	for i := range 2 {
		produce(op, -1, fmt.Sprint("first epoch ", i))
	}
	// A controlled shutdown moves the leadership: a new leader epoch.
	c.Stop(oldID)
	var newID int32
	var st = partitionState(c, "lo", 0)
	eventually(t, "a new leader", func() bool {
		st = partitionState(c, "lo", 0)
		newID = st.Leader
		return st.Leader >= 0 && st.Leader != oldID && st.LeaderEpoch > firstEpoch
	})
	nb := c.Broker(newID)
	eventually(t, "leadership on the new leader", func() bool { return nb.topics.partition("lo", 0).leads() })
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	np := dialPipe(t, nb)
	for i := range 2 {
		produce(np, -1, fmt.Sprint("second epoch ", i))
	}
	// One more record the followers do not get: the log end is above the
	// high watermark.
	var follower int32 = -1
	for id, f := range paused {
		if id != newID {
			f.Store(true)
			if id != oldID {
				follower = id
			}
		}
	}
	produce(np, 1, "uncommitted")
	if l := nb.topics.partition("lo", 0).log; l.HighWatermark() != 4 || l.EndOffset() != 5 {
		t.Fatalf("new leader's high watermark %d and end %d, want 4 and 5", l.HighWatermark(), l.EndOffset())
	}

	for _, tc := range []struct {
		name      string
		replica   int32
		ts        int64
		wantOff   int64
		wantEpoch int32
	}{
		{"latest", -1, -1, 4, st.LeaderEpoch},
		{"latest for a follower", follower, -1, 5, st.LeaderEpoch},
		{"earliest", -1, -2, 0, firstEpoch},
		{"by timestamp, first epoch", -1, 0, 0, firstEpoch},
		{"by timestamp, second epoch", -1, since, 2, st.LeaderEpoch},
	} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(7)
		req.ReplicaID = tc.replica
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, tc.ts, st.LeaderEpoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		sp := np.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || sp.Offset != tc.wantOff || sp.LeaderEpoch != tc.wantEpoch {
			t.Errorf("%s: offset %d epoch %d (%v), want offset %d epoch %d", tc.name, sp.Offset, sp.LeaderEpoch,
				kerr.ErrorForCode(sp.ErrorCode), tc.wantOff, tc.wantEpoch)
		}
	}
	for _, f := range paused {
		f.Store(false)
	}
}
