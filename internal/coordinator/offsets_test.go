package coordinator

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCommitValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{KnownPartition: func(topic string, p int32) bool { return topic != "missing" }}, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 1)
		tests := []struct {
			name   string
			group  string
			member string
			gen    int32
			topic  string
			want   *kerr.Error // nil: committed
		}{
			{"member of stable group", "g", ids[0], gen, "t", nil},
			{"stale generation", "g", ids[0], gen - 1, "t", kerr.IllegalGeneration},
			{"non-member", "g", "ghost", gen, "t", kerr.UnknownMemberID},
			{"simple commit to a non-empty group", "g", "", -1, "t", kerr.UnknownMemberID},
			{"simple commit to a new group", "simple", "", -1, "t", nil},
			{"generation for a group that does not exist", "nope", "m", 3, "t", kerr.IllegalGeneration},
			{"unknown topic", "g", ids[0], gen, "missing", kerr.UnknownTopicOrPartition},
		}
		for _, tt := range tests {
			resp := h.commit(tt.group, tt.member, tt.gen, map[string]int64{tt.topic: 42})
			code := resp.Topics[0].Partitions[0].ErrorCode
			want := int16(0)
			if tt.want != nil {
				want = tt.want.Code
			}
			if code != want {
				t.Errorf("%s: %v, want %v", tt.name, kerr.ErrorForCode(code), tt.want)
				continue
			}
			stored := h.committedOffset(tt.group, tt.topic)
			if tt.want == nil && stored != 42 {
				t.Errorf("%s: fetched %d, want 42", tt.name, stored)
			}
		}
		// Metadata above offset.metadata.max.bytes.
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "simple", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1, Metadata: ptr(strings.Repeat("x", 4097))}}}}
		resp, _ := h.c.CommitOffsets(context.Background(), req)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetMetadataTooLarge.Code {
			t.Errorf("large metadata: %v", kerr.ErrorForCode(code))
		}
	})
}

func TestCommitDuringCompletingRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		r := h.join(joinReq("g", h.getID("g")))
		resp := h.commit("g", r.MemberID, r.Generation, map[string]int64{"t": 1})
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.RebalanceInProgress.Code {
			t.Fatalf("commit before sync: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
		}
	})
}

func TestCommitStoreFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		h.store.setFail(errStore)
		resp := h.commit("g", "", -1, map[string]int64{"t": 5})
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("commit with failing store: %v", kerr.ErrorForCode(code))
		}
		h.store.setFail(nil)
		if got := h.committedOffset("g", "t"); got != -1 {
			t.Fatalf("failed commit is visible: %d", got)
		}
	})
}

func TestFetchAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		h.commit("g", "", -1, map[string]int64{"b": 2, "a": 1})
		resp, err := h.c.FetchOffsets(context.Background(), kmsg.OffsetFetchRequestGroup{Group: "g"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Topics) != 2 || resp.Topics[0].Topic != "a" || resp.Topics[1].Topic != "b" || resp.Topics[1].Partitions[0].Offset != 2 {
			t.Fatalf("fetch all: %+v", resp.Topics)
		}
		unknown, _ := h.c.FetchOffsets(context.Background(), kmsg.OffsetFetchRequestGroup{Group: "none"}, false)
		if unknown.ErrorCode != 0 || len(unknown.Topics) != 0 {
			t.Fatalf("fetch of unknown group: %+v", unknown)
		}
	})
}

// TestReload replays the records one coordinator wrote into a new one.
func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		ids, gen := h.stableGroup("live", 2)
		h.commit("live", ids[0], gen, map[string]int64{"t": 7})
		h.commit("simple", "", -1, map[string]int64{"t": 9, "u": 3})
		h.commit("gone", "", -1, map[string]int64{"t": 1})
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{"gone"}
		if resp, _ := h.c.DeleteGroups(context.Background(), del); resp.Groups[0].ErrorCode != 0 {
			t.Fatalf("delete: %v", kerr.ErrorForCode(resp.Groups[0].ErrorCode))
		}
		h.stop()
		for p := range h.store.recs {
			if p < 0 || p >= 50 {
				t.Fatalf("record in partition %d", p)
			}
		}

		h2 := start(t, Config{}, h.store)
		defer h2.stop()
		if got := h2.committedOffset("live", "t"); got != 7 {
			t.Errorf("live offset %d, want 7", got)
		}
		if got := h2.committedOffset("simple", "u"); got != 3 {
			t.Errorf("simple offset %d, want 3", got)
		}
		if got := h2.committedOffset("gone", "t"); got != -1 {
			t.Errorf("deleted group's offset %d, want -1", got)
		}
		d := h2.describe("live")
		if d.State != "Stable" || len(d.Members) != 2 || string(d.Members[0].MemberAssignment) != ids[0] {
			t.Fatalf("reloaded group: %+v", d)
		}
		// Loaded members keep their session: heartbeats work at once...
		if code := h2.heartbeat("live", ids[0], gen, nil); code != 0 {
			t.Errorf("heartbeat after reload: %v", kerr.ErrorForCode(code))
		}
		// ...and ids[1], silent, expires after its session timeout.
		for range 4 {
			time.Sleep(3 * time.Second)
			h2.heartbeat("live", ids[0], gen, nil)
		}
		if code := h2.heartbeat("live", ids[0], gen, nil); code != kerr.RebalanceInProgress.Code {
			t.Errorf("heartbeat after the silent member expired: %v", kerr.ErrorForCode(code))
		}
		if d := h2.describe("gone"); d.State != "Dead" {
			t.Errorf("deleted group described as %q", d.State)
		}
	})
}

func TestOffsetsExpireWhenGroupEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{OffsetsRetention: time.Hour, RetentionCheck: time.Minute}
		h := start(t, cfg, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 1)
		h.commit("g", ids[0], gen, map[string]int64{"t": 4})
		time.Sleep(2 * time.Hour) // a member's offsets never expire while it is there
		if code := h.heartbeat("g", ids[0], gen, nil); code != kerr.UnknownMemberID.Code {
			// it did not heartbeat, so it expired: the group is empty since ~10s
			t.Fatalf("heartbeat of silent member: %v", kerr.ErrorForCode(code))
		}
		if got := h.committedOffset("g", "t"); got != -1 {
			t.Fatalf("offset kept %d after the group was empty for longer than retention", got)
		}

		// A group that is still active keeps them.
		h.commit("s", "", -1, map[string]int64{"t": 1})
		ids, gen = h.stableGroup("k", 1)
		h.commit("k", ids[0], gen, map[string]int64{"t": 8})
		for range 2 * 3600 / 5 {
			time.Sleep(5 * time.Second)
			if code := h.heartbeat("k", ids[0], gen, nil); code != 0 {
				t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
			}
		}
		if got := h.committedOffset("k", "t"); got != 8 {
			t.Errorf("active group's offset expired: %d", got)
		}
		if got := h.committedOffset("s", "t"); got != -1 {
			t.Errorf("simple group's offset older than retention kept: %d", got)
		}
		lg, _ := h.c.ListGroups(context.Background(), kmsg.NewPtrListGroupsRequest())
		if len(lg.Groups) != 1 || lg.Groups[0].Group != "k" {
			t.Errorf("groups after expiry: %+v", lg.Groups)
		}
	})
}

func TestOffsetDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 1) // subscribed to "t"
		h.commit("g", ids[0], gen, map[string]int64{"t": 1, "old": 2})
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "g"
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}, {Topic: "old", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		resp, _ := h.c.DeleteOffsets(context.Background(), req)
		if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || resp.Topics[1].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset delete: %+v", resp)
		}
		if h.committedOffset("g", "t") != 1 || h.committedOffset("g", "old") != -1 {
			t.Fatal("wrong offsets deleted")
		}
		req.Group = "none"
		if resp, _ := h.c.DeleteOffsets(context.Background(), req); resp.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("unknown group: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	})
}

func TestAdmin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		h.stableGroup("busy", 1)
		h.commit("idle", "", -1, map[string]int64{"t": 1})

		list := func(states, types []string) []string {
			req := kmsg.NewPtrListGroupsRequest()
			req.Version = 5
			req.StatesFilter, req.TypesFilter = states, types
			resp, err := h.c.ListGroups(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, g := range resp.Groups {
				out = append(out, g.Group+":"+g.GroupState+":"+g.ProtocolType+":"+g.GroupType)
			}
			return out
		}
		tests := []struct {
			states, types []string
			want          string
		}{
			{nil, nil, "busy:Stable:consumer:classic idle:Empty::classic"},
			{[]string{"stable"}, nil, "busy:Stable:consumer:classic"},
			{[]string{"Empty", "Dead"}, nil, "idle:Empty::classic"},
			{nil, []string{"Classic"}, "busy:Stable:consumer:classic idle:Empty::classic"},
			{nil, []string{"consumer"}, ""},
		}
		for _, tt := range tests {
			if got := strings.Join(list(tt.states, tt.types), " "); got != tt.want {
				t.Errorf("ListGroups(%v, %v) = %q, want %q", tt.states, tt.types, got, tt.want)
			}
		}

		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{"busy", "idle", "none"}
		resp, _ := h.c.DeleteGroups(context.Background(), del)
		want := []*kerr.Error{kerr.NonEmptyGroup, nil, kerr.GroupIDNotFound}
		for i, g := range resp.Groups {
			if w := want[i]; (w == nil && g.ErrorCode != 0) || (w != nil && g.ErrorCode != w.Code) {
				t.Errorf("delete %s: %v, want %v", g.Group, kerr.ErrorForCode(g.ErrorCode), w)
			}
		}
		if got := strings.Join(list(nil, nil), " "); got != "busy:Stable:consumer:classic" {
			t.Errorf("after delete: %q", got)
		}
		dreq := kmsg.NewPtrDescribeGroupsRequest()
		dreq.Version = 6
		dreq.Groups = []string{"idle"}
		dresp, _ := h.c.DescribeGroups(context.Background(), dreq)
		if g := dresp.Groups[0]; g.State != "Dead" || g.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Errorf("describe deleted group v6: %+v", g)
		}
	})
}

func TestDeleteTopicOffsets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		h.commit("a", "", -1, map[string]int64{"gone": 1, "kept": 2})
		h.commit("b", "", -1, map[string]int64{"gone": 3})
		if err := h.c.DeleteTopicOffsets(context.Background(), "gone"); err != nil {
			t.Fatal(err)
		}
		if h.committedOffset("a", "gone") != -1 || h.committedOffset("b", "gone") != -1 || h.committedOffset("a", "kept") != 2 {
			t.Fatal("offsets of the deleted topic remain, or others went too")
		}
		// b had nothing else: like Kafka, the empty group is gone with them.
		if d := h.describe("b"); d.State != "Dead" {
			t.Errorf("group b: %s", d.State)
		}
		h.stop()
		h2 := start(t, Config{}, h.store)
		defer h2.stop()
		if h2.committedOffset("a", "gone") != -1 {
			t.Error("deleted offsets came back after reload")
		}
	})
}

// OffsetCommit carries a leader epoch from v6 on; an older request's epoch
// field is not on the wire, so the commit stores -1 whatever the struct says.
func TestCommitLeaderEpochByVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		for _, tc := range []struct {
			version int16
			want    int32
		}{{5, -1}, {6, 3}} {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Version, req.Group, req.Generation = tc.version, "simple", -1
			req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1, LeaderEpoch: 3}}}}
			if resp, err := h.c.CommitOffsets(context.Background(), req); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("v%d commit: %v %+v", tc.version, err, resp)
			}
			got, err := h.c.FetchOffsets(context.Background(), kmsg.OffsetFetchRequestGroup{Group: "simple", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}, false)
			if err != nil {
				t.Fatal(err)
			}
			if e := got.Topics[0].Partitions[0].LeaderEpoch; e != tc.want {
				t.Errorf("v%d commit stored leader epoch %d, want %d", tc.version, e, tc.want)
			}
		}
	})
}

// offset.metadata.max.bytes=0 (MaxMetadataBytes negative) allows empty
// metadata only.
func TestCommitMetadataLimitZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{MaxMetadataBytes: -1}, nil)
		defer h.stop()
		for metadata, want := range map[string]int16{"": 0, "x": kerr.OffsetMetadataTooLarge.Code} {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group, req.Generation = "simple", -1
			req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1, Metadata: ptr(metadata)}}}}
			resp, err := h.c.CommitOffsets(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != want {
				t.Errorf("metadata %q: %v, want %v", metadata, kerr.ErrorForCode(code), kerr.ErrorForCode(want))
			}
		}
	})
}
