package coordinator

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnOffsets: TxnOffsetRecords writes nothing and checks the
// partitions; ApplyTxnOffsets makes the records the group's offsets without
// writing them again.
func TestTxnOffsets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		known := func(topic string, _ int32) bool { return topic != "gone" }
		h := start(t, Config{KnownPartition: known}, nil)
		defer h.stop()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version, req.Group = 3, "g"
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{
			{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 17, LeaderEpoch: -1}}},
			{Topic: "gone", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}},
		}
		recs, resp, err := h.c.TxnOffsetRecords(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("records %d, response %+v", len(recs), resp.Topics)
		}
		if got := h.committedOffset("g", "t"); got != -1 {
			t.Fatalf("offset visible before the commit marker: %d", got)
		}
		if err := h.c.ApplyTxnOffsets(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
		if got := h.committedOffset("g", "t"); got != 17 {
			t.Fatalf("offset after ApplyTxnOffsets: %d, want 17", got)
		}
		if n := len(h.store.recs); n != 0 {
			t.Fatalf("ApplyTxnOffsets wrote %d records", n)
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
			_, resp, err := h.c.TxnOffsetRecords(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.want {
				t.Errorf("member %q generation %d: error %d, want %d", tc.member, tc.gen, got, tc.want)
			}
		}
	})
}

func TestApplyTxnOffsetsWhileLoading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{}, &memStore{})
		if err != nil {
			t.Fatal(err)
		}
		go c.Run(t.Context())
		if err := c.ApplyTxnOffsets(t.Context(), nil); !errors.Is(err, ErrLoading) {
			t.Fatalf("before Load: %v", err)
		}
	})
}
