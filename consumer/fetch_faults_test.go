package consumer

// Fault-injection tests for the fetcher's failure paths (issue 22, cases 5
// and 9), against kfake.

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// A partition whose ListOffsets keeps failing (NOT_LEADER_OR_FOLLOWER) does
// not stop the others from being fetched: positions are resolved per
// partition in the background, and the failing one retries with a back-off
// that grows, then gets its records once the fault is gone.
func TestPositionLookupFailureIsolated(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	produce(t, c, spread("t", 2, 0, 10)...)
	var lookups atomic.Int64
	fault := c.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "t", Partitions: []int32{1},
		Err: kerr.NotLeaderForPartition, Count: -1,
		When: func(kmsg.Request) bool { lookups.Add(1); return true },
	})
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.AutoOffsetReset = OffsetResetEarliest
		cfg.RetryBackoff, cfg.RetryBackoffMax = 20*time.Millisecond, 160*time.Millisecond
	})
	p0, p1 := kafkit.TopicPartition{Topic: "t", Partition: 0}, kafkit.TopicPartition{Topic: "t", Partition: 1}
	if err := cons.Assign(p0, p1); err != nil {
		t.Fatal(err)
	}
	for _, r := range pollN(t, testCtx(t, 10*time.Second), cons, 5) {
		if r.Partition != 0 {
			t.Fatalf("record of p%d while its position cannot be resolved", r.Partition)
		}
	}
	// The retries back off: 20, 40, 80, 160, 160... ms, not a busy loop,
	// and they keep running.
	before := lookups.Load()
	time.Sleep(time.Second)
	if n := lookups.Load() - before; n < 2 || n > 20 {
		t.Fatalf("%d ListOffsets for the failing partition in 1 s; want a back-off between 20 and 160 ms", n)
	}
	fault.Remove()
	for _, r := range pollN(t, testCtx(t, 10*time.Second), cons, 5) {
		if r.Partition != 1 {
			t.Fatalf("unexpected record of p%d at %d", r.Partition, r.Offset)
		}
	}
}

// epochCluster is a two-broker kfake cluster with topic "t" of one
// partition, 10 records at leader epoch 0, and a consumer (configured by
// mod) that has read them all, so its position (10) carries epoch 0.
func epochCluster(t *testing.T, mod func(*Config)) (*kfake.Cluster, *Consumer) {
	t.Helper()
	c := newCluster(t, kfake.NumBrokers(2), kfake.SeedTopics(1, "t"))
	produce(t, c, spread("t", 1, 0, 10)...)
	cons := newConsumer(t, c, mod)
	tp := kafkit.TopicPartition{Topic: "t", Partition: 0}
	if err := cons.Assign(tp); err != nil {
		t.Fatal(err)
	}
	if err := cons.Seek(testCtx(t, 10*time.Second), tp, 0); err != nil {
		t.Fatal(err)
	}
	if recs := pollN(t, testCtx(t, 10*time.Second), cons, 10); recs[9].Offset != 9 {
		t.Fatalf("last offset %d, want 9", recs[9].Offset)
	}
	return c, cons
}

// moveLeader elects the partition's other replica leader, bumping its epoch.
func moveLeader(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	leader := c.LeaderFor("t", 0)
	for _, node := range []int32{0, 1} {
		if node != leader {
			if err := c.MoveTopicPartition("t", 0, node); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

// truncateAt answers the OffsetForLeaderEpoch sent after a leader change as
// a new leader whose log lost everything of epoch 0 from offset 4 (an
// unclean election), and records the request.
func truncateAt(c *kfake.Cluster, end int64, asked chan<- kmsg.OffsetForLeaderEpochRequestTopicPartition) {
	c.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.OffsetForLeaderEpochRequest)
		resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetForLeaderEpochResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				select {
				case asked <- rp:
				default:
				}
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, rp.LeaderEpoch, end
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// KIP-320: after a leader change the consumer validates its position with
// OffsetForLeaderEpoch (current leader epoch 1, the epoch of its last record
// 0); when the new leader's log ends that epoch before the position, the
// consumer moves back to where it diverges and reads on from there, as
// Java's consumer does with an auto.offset.reset policy.
func TestLeaderChangeTruncationResets(t *testing.T) {
	c, cons := epochCluster(t, nil)
	asked := make(chan kmsg.OffsetForLeaderEpochRequestTopicPartition, 1)
	truncateAt(c, 4, asked)
	moveLeader(t, c)
	produce(t, c, spread("t", 1, 10, 2)...)

	var recs []*kafkit.Record
	ctx := testCtx(t, 10*time.Second)
	for len(recs) < 8 {
		got, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", len(recs), err)
		}
		recs = append(recs, got...)
	}
	select {
	case rp := <-asked:
		if rp.CurrentLeaderEpoch != 1 || rp.LeaderEpoch != 0 {
			t.Errorf("OffsetForLeaderEpoch current epoch %d, epoch %d; want 1, 0", rp.CurrentLeaderEpoch, rp.LeaderEpoch)
		}
	default:
		t.Fatal("no OffsetForLeaderEpoch after the leader change")
	}
	var offsets []int64
	for _, r := range recs {
		offsets = append(offsets, r.Offset)
	}
	if want := []int64{4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(offsets, want) {
		t.Fatalf("offsets after truncation %v, want %v (re-read from the divergence)", offsets, want)
	}
}

// With auto.offset.reset=none the same truncation makes Poll fail with
// ErrLogTruncation (Java's LogTruncationException) until the application
// seeks; so does a leader that does not know the epoch (end offset -1).
func TestLeaderChangeTruncationNone(t *testing.T) {
	for _, end := range []int64{4, -1} {
		t.Run(fmt.Sprintf("end=%d", end), func(t *testing.T) { testLeaderChangeTruncationNone(t, end) })
	}
}

func testLeaderChangeTruncationNone(t *testing.T, end int64) {
	c, cons := epochCluster(t, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetNone })
	truncateAt(c, end, make(chan kmsg.OffsetForLeaderEpochRequestTopicPartition, 1))
	moveLeader(t, c)
	produce(t, c, spread("t", 1, 10, 2)...)

	ctx := testCtx(t, 10*time.Second)
	for {
		recs, err := cons.Poll(ctx)
		if errors.Is(err, ErrLogTruncation) {
			break
		}
		if err != nil {
			t.Fatalf("Poll: %v, want ErrLogTruncation", err)
		}
		t.Fatalf("%d records (offset %d...) from a truncated log", len(recs), recs[0].Offset)
	}
	tp := kafkit.TopicPartition{Topic: "t", Partition: 0}
	if err := cons.Seek(ctx, tp, 4); err != nil {
		t.Fatal(err)
	}
	if recs := pollN(t, ctx, cons, 1); recs[0].Offset != 4 {
		t.Fatalf("after Seek(4): offset %d", recs[0].Offset)
	}
}

// A Fetch answered with a DivergingEpoch (the leader's log ends our last
// fetched epoch at offset 4) moves the consumer back to offset 4, and Fetch
// requests carry the metadata's leader epoch and the last fetched epoch.
func TestFetchDivergingEpoch(t *testing.T) {
	c, cons := epochCluster(t, nil)
	var sent atomic.Pointer[kmsg.FetchRequestTopicPartition]
	c.ControlKey(int16(kmsg.Fetch), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.FetchRequest)
		if len(req.Topics) == 0 || len(req.Topics[0].Partitions) == 0 {
			c.KeepControl()
			return nil, nil, false
		}
		rp := req.Topics[0].Partitions[0]
		sent.Store(&rp)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 0, 10, 10, 0
		sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = 0, 4
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	recs := pollN(t, testCtx(t, 10*time.Second), cons, 6)
	if recs[0].Offset != 4 || recs[5].Offset != 9 {
		t.Fatalf("after DivergingEpoch read offsets %d..%d, want 4..9", recs[0].Offset, recs[5].Offset)
	}
	rp := sent.Load()
	if rp.FetchOffset != 10 || rp.LastFetchedEpoch != 0 || rp.CurrentLeaderEpoch != 0 {
		t.Fatalf("Fetch at %d with LastFetchedEpoch %d, CurrentLeaderEpoch %d; want 10, 0, 0", rp.FetchOffset, rp.LastFetchedEpoch, rp.CurrentLeaderEpoch)
	}
}

// KIP-320: a position taken from a committed offset that carries its leader
// epoch is validated with OffsetForLeaderEpoch before it is fetched from, as
// Java's consumer does; a log truncated below it moves the consumer back.
func TestCommittedPositionValidated(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	produce(t, c, spread("t", 1, 0, 10)...)
	tp := kafkit.TopicPartition{Topic: "t", Partition: 0}
	ctx := testCtx(t, 10*time.Second)
	first := newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID, cfg.DisableAutoCommit, cfg.MaxPollRecords = "g", true, 8
		cfg.AutoOffsetReset = OffsetResetEarliest
	})
	if err := first.Assign(tp); err != nil {
		t.Fatal(err)
	}
	pollN(t, ctx, first, 8)
	if err := first.Commit(ctx); err != nil { // offset 8, epoch 0
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	asked := make(chan kmsg.OffsetForLeaderEpochRequestTopicPartition, 1)
	truncateAt(c, 6, asked)
	second := newConsumer(t, c, func(cfg *Config) { cfg.GroupID = "g" })
	if err := second.Assign(tp); err != nil {
		t.Fatal(err)
	}
	if recs := pollN(t, ctx, second, 4); recs[0].Offset != 6 {
		t.Fatalf("first offset after the committed 8 was validated against a log diverging at 6: %d", recs[0].Offset)
	}
	if rp := <-asked; rp.LeaderEpoch != 0 {
		t.Fatalf("validated the commit's epoch %d, want 0", rp.LeaderEpoch)
	}
}
