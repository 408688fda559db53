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

// listOffsetAt is ListOffsets v4 of one timestamp from a client
// (replicaID -1) or a follower: its error code and offset.
func listOffsetAt(p *pipe, topic string, ts int64, replicaID int32) (int16, int64) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(4)
	req.ReplicaID = replicaID
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	sp := p.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	return sp.ErrorCode, sp.Offset
}

// KIP-207: a leader elected while its high watermark is below the offset
// its epoch starts at answers a client's latest, and a timestamp lookup
// that finds nothing below the high watermark, OFFSET_NOT_AVAILABLE (as
// Kafka's fetchOffsetForTimestamp does), not an offset that could go
// backwards; earliest, a lookup found below the high watermark and a
// follower's latest are answered; once the high watermark reaches the
// epoch's start, latest is answered again.
func TestClusterListOffsetsNotAvailableAfterElection(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "na", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("na", 1)
	oldID := c.Leader("na", 0)
	old := c.Broker(oldID)
	eventually(t, "leadership on the leader", func() bool { return old.topics.partition("na", 0).leads() })
	op := dialPipe(t, old)
	if code, _ := produceCode(op.roundTrip(oneRecordProduce(t, "na", 0, -1, 5*time.Second, "a"))); code != 0 {
		t.Fatalf("acks=all: %v", kerr.ErrorForCode(code))
	}
	var next, lagging int32 = -1, -1
	for id := int32(1); id <= 3; id++ {
		switch {
		case id == oldID:
		case next < 0:
			next = id
		default:
			lagging = id
		}
	}
	nextLog := c.Broker(next).topics.partition("na", 0).log
	eventually(t, "the high watermark on the next leader", func() bool { return nextLog.HighWatermark() == 1 })
	// One follower stops: two acks=1 records reach the next leader only,
	// and the high watermark stays at 1.
	paused[lagging].Store(true)
	time.Sleep(5 * time.Millisecond)
	afterA := time.Now().UnixMilli()
	for _, v := range []string{"b", "c"} {
		if code, _ := produceCode(op.roundTrip(oneRecordProduce(t, "na", 0, 1, 5*time.Second, v))); code != 0 {
			t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
		}
	}
	eventually(t, "the acks=1 records on the next leader", func() bool { return nextLog.EndOffset() == 3 })
	moveLeader(t, c, "na", 0, next)
	nb := c.Broker(next)
	eventually(t, "leadership on the next leader", func() bool { return nb.topics.partition("na", 0).leads() })
	np := dialPipe(t, nb)
	if hw := nextLog.HighWatermark(); hw != 1 {
		t.Fatalf("new leader's high watermark %d, want 1 (below its epoch's start, 3)", hw)
	}
	for _, q := range []struct {
		what     string
		ts       int64
		replica  int32
		code     int16
		wantOff  int64
		checkOff bool
	}{
		{"latest", tsLatest, -1, kerr.OffsetNotAvailable.Code, 0, false},
		{"a lookup past the high watermark", afterA, -1, kerr.OffsetNotAvailable.Code, 0, false},
		{"max timestamp (past the high watermark)", tsMaxTimestamp, -1, kerr.OffsetNotAvailable.Code, 0, false},
		{"earliest", tsEarliest, -1, 0, 0, true},
		{"a lookup below the high watermark", 0, -1, 0, 0, true},
		{"a follower's latest", tsLatest, oldID, 0, 3, true},
	} {
		code, off := listOffsetAt(np, "na", q.ts, q.replica)
		if code != q.code || q.checkOff && off != q.wantOff {
			t.Errorf("%s: %v at %d, want %v at %d", q.what, kerr.ErrorForCode(code), off, kerr.ErrorForCode(q.code), q.wantOff)
		}
	}
	paused[lagging].Store(false)
	eventually(t, "latest answered once the high watermark reached the epoch's start", func() bool {
		code, off := listOffsetAt(np, "na", tsLatest, -1)
		return code == 0 && off == 3
	})
}
