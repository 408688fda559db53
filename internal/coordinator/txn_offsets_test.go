package coordinator

import (
	"errors"
	"testing"
	"testing/synctest"

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
		if err := h.c.CompleteTxnOffsets(t.Context(), h.c.PartitionFor("g")+1, 7, true); err != nil {
			t.Fatal(err)
		}
		if got := h.committedOffset("g", "t"); got != -1 {
			t.Fatalf("a marker in another partition committed the offset: %d", got)
		}
		if err := h.c.CompleteTxnOffsets(t.Context(), h.c.PartitionFor("g"), 7, true); err != nil {
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
		if err := h.c.CompleteTxnOffsets(t.Context(), h.c.PartitionFor("g"), 7, false); err != nil {
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

func TestCompleteTxnOffsetsWhileLoading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{}, &memStore{})
		if err != nil {
			t.Fatal(err)
		}
		go c.Run(t.Context())
		if err := c.CompleteTxnOffsets(t.Context(), 0, 1, true); !errors.Is(err, ErrLoading) {
			t.Fatalf("before Load: %v", err)
		}
	})
}
