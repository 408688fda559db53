package coordinator

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnOffsets: CommitTxnOffsets writes through the writer, checks the
// partitions and holds the offsets pending; CompleteTxnOffsets commits
// them without writing them again, or drops them on abort.
func TestTxnOffsets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		known := func(topic string, _ int32) bool { return topic != "gone" }
		h := start(t, Config{KnownPartition: known}, nil)
		defer h.stop()
		var written [][]Record
		write := func(_ int32, recs []Record) (int64, *kerr.Error) {
			written = append(written, recs)
			return 100, nil
		}
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version, req.Group, req.ProducerID, req.Generation = 3, "g", 7, -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{
			{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 17, LeaderEpoch: -1}}},
			{Topic: "gone", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}},
		}
		resp, err := h.c.CommitTxnOffsets(t.Context(), req, write)
		if err != nil {
			t.Fatal(err)
		}
		if len(written) != 1 || len(written[0]) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("writes %v, response %+v", written, resp.Topics)
		}
		if got := h.committedOffset("g", "t"); got != -1 {
			t.Fatalf("offset visible before the commit marker: %d", got)
		}
		if err := h.c.CompleteTxnOffsets(t.Context(), h.c.PartitionFor("g")+1, 7, true, 200); err != nil {
			t.Fatal(err)
		}
		if got := h.committedOffset("g", "t"); got != -1 {
			t.Fatalf("a marker in another partition committed the offset: %d", got)
		}
		if err := h.c.CompleteTxnOffsets(t.Context(), h.c.PartitionFor("g"), 7, true, 200); err != nil {
			t.Fatal(err)
		}
		if got := h.committedOffset("g", "t"); got != 17 {
			t.Fatalf("offset after the commit: %d, want 17", got)
		}
		if n := len(h.store.recs); n != 0 {
			t.Fatalf("completing wrote %d records", n)
		}
		req.Topics[0].Partitions[0].Offset = 18
		if _, err := h.c.CommitTxnOffsets(t.Context(), req, write); err != nil {
			t.Fatal(err)
		}
		if err := h.c.CompleteTxnOffsets(t.Context(), h.c.PartitionFor("g"), 7, false, 200); err != nil {
			t.Fatal(err)
		}
		if got := h.committedOffset("g", "t"); got != 17 {
			t.Fatalf("offset after an abort: %d, want 17", got)
		}

		// KIP-447: a member of an active group must name its generation.
		members, gen := h.stableGroup("active", 1)
		for _, tc := range []struct {
			member string
			gen    int32
			want   int16
		}{
			{members[0], gen, 0},
			{members[0], gen + 1, kerr.IllegalGeneration.Code},
			{"stranger", gen, kerr.UnknownMemberID.Code},
			{"", -1, 0}, // pre-v3 form: no membership to check
		} {
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.Version, req.Group, req.MemberID, req.Generation = 3, "active", tc.member, tc.gen
			req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
			resp, err := h.c.CommitTxnOffsets(t.Context(), req, write)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.want {
				t.Errorf("member %q generation %d: error %d, want %d", tc.member, tc.gen, got, tc.want)
			}
		}
	})
}

// TestCompleteTxnOffsetsWhileLoading: a marker written while its
// partition is not loaded waits for the load, which applies it only if its
// replay did not meet the marker (else the producer's next transaction's
// offsets would be committed by the previous one's marker).
func TestCompleteTxnOffsetsWhileLoading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{NumPartitions: 1}, &memStore{})
		if err != nil {
			t.Fatal(err)
		}
		go c.Run(t.Context())
		tp := topicPartition{"t", 0}
		txnCommit := func(offset, value int64) LogRecord {
			return LogRecord{Record: Record{Key: offsetKey("g", tp), Value: offsetValue(committed{offset: value, leaderEpoch: -1})}, Offset: offset, ProducerID: 1}
		}
		marker := LogRecord{Offset: 1, ProducerID: 1, Marker: CommitMarker}
		replay := func(recs ...LogRecord) func(func(LogRecord, error) bool) {
			return func(yield func(LogRecord, error) bool) {
				for _, r := range recs {
					if !yield(r, nil) {
						return
					}
				}
			}
		}
		committedOffset := func() int64 {
			o, _ := call(t.Context(), c, func() int64 {
				if g := c.groups["g"]; g != nil {
					if o, ok := g.offsets[tp]; ok {
						return o.offset
					}
				}
				return -1
			})
			return o
		}

		// The marker (offset 1) was written after the replay's end.
		if err := c.CompleteTxnOffsets(t.Context(), 0, 1, true, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.LoadPartition(t.Context(), 0, replay(txnCommit(0, 10))); err != nil {
			t.Fatal(err)
		}
		if got := committedOffset(); got != 10 {
			t.Fatalf("marker written during the load: offset %d, want 10", got)
		}

		// The replay met the marker and the producer's next transaction.
		if err := c.UnloadPartition(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		if err := c.CompleteTxnOffsets(t.Context(), 0, 1, true, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.LoadPartition(t.Context(), 0, replay(txnCommit(0, 10), marker, txnCommit(2, 20))); err != nil {
			t.Fatal(err)
		}
		if got := committedOffset(); got != 10 {
			t.Fatalf("a marker the replay met was applied again: offset %d, want 10 (20 still pending)", got)
		}
	})
}

// TestReplayTxnOffsets: in the replay a transaction's offsets wait for its
// marker in their own partition (a marker of the same producer in another
// partition belongs to another transaction), a commit marker applies them
// unless a plain commit was appended after them, and those without a marker
// stay pending.
func TestReplayTxnOffsets(t *testing.T) {
	partitionFor := func(g string) int32 { return map[string]int32{"g1": 1, "g2": 2}[g] }
	l := loader{groups: make(map[string]*group), txns: make(txnIndex), partitionFor: partitionFor, now: time.Now()}
	rec := func(partition int32, offset, pid int64, group string, value int64) LogRecord {
		o := committed{offset: value, leaderEpoch: -1}
		return LogRecord{Record: Record{Key: offsetKey(group, topicPartition{"t", 0}), Value: offsetValue(o)}, Partition: partition, Offset: offset, ProducerID: pid}
	}
	marker := func(partition int32, offset, pid int64, m Marker) LogRecord {
		return LogRecord{Partition: partition, Offset: offset, ProducerID: pid, Marker: m}
	}
	for _, r := range []LogRecord{
		rec(1, 0, 9, "g1", 10),        // open transaction of producer 9 in partition 1
		rec(1, 1, -1, "g1", 5),        // a plain commit after it
		rec(2, 0, 9, "g2", 20),        // producer 9's earlier transaction in partition 2
		marker(2, 1, 9, CommitMarker), // ends only partition 2's offsets
		rec(2, 2, 7, "g2", 30),
		rec(2, 3, -1, "g2", 25), // a plain commit appended after producer 7's offset
		marker(2, 4, 7, CommitMarker),
	} {
		if err := l.apply(r); err != nil {
			t.Fatal(err)
		}
	}
	tp := topicPartition{"t", 0}
	if got := l.groups["g1"].offsets[tp].offset; got != 5 || !l.groups["g1"].pendingTxn(tp) {
		t.Errorf("g1: offset %d, pending %v; want 5 and producer 9's offset still pending", got, l.groups["g1"].pendingTxn(tp))
	}
	if got := l.groups["g2"].offsets[tp].offset; got != 25 || l.groups["g2"].pendingTxn(tp) {
		t.Errorf("g2: offset %d, pending %v; want the later plain commit 25, nothing pending", got, l.groups["g2"].pendingTxn(tp))
	}
	l.txns.complete(l.groups, 1, 9, partitionFor, true)
	if got := l.groups["g1"].offsets[tp].offset; got != 5 || l.groups["g1"].pendingTxn(tp) || len(l.txns) != 0 {
		t.Errorf("g1 after producer 9's commit: offset %d, pending %v, index %v; want the later plain commit 5, nothing pending", got, l.groups["g1"].pendingTxn(tp), l.txns)
	}
}
