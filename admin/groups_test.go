package admin

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/twmb/franz-go/pkg/kerr"
)

// consumeCommitted joins group, reads n records of topic, commits them and
// returns the still-joined consumer.
func consumeCommitted(t *testing.T, addr, group, topic string, n int) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(testCtx(t), consumer.Config{
		BootstrapServers: []string{addr}, GroupID: group, ClientID: "lag-test",
		AutoOffsetReset: "earliest", DisableAutoCommit: true, MaxPollRecords: n,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	offsets := make(map[kafkit.TopicPartition]int64)
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[:min(len(recs), n-got)] {
			offsets[kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
			got++
		}
	}
	if err := c.CommitOffsets(ctx, offsets); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGroups(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		ctx := testCtx(t)
		mustCreate(t, adm, "g-topic", 1)
		produce(t, addr, "g-topic", 1, 10, time.Now())
		tp := kafkit.TopicPartition{Topic: "g-topic"}
		member := consumeCommitted(t, addr, "g1", "g-topic", 4)

		groups, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) != 1 || groups[0].Group != "g1" || groups[0].ProtocolType != "consumer" {
			t.Errorf("groups %+v", groups)
		}

		ds, err := adm.DescribeGroups(ctx, "g1")
		if err != nil {
			t.Fatal(err)
		}
		d := ds[0]
		if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].ClientID != "lag-test" ||
			!slices.Equal(d.Members[0].Assignment, []kafkit.TopicPartition{tp}) {
			t.Errorf("described %+v", d)
		}

		offs, err := adm.GroupOffsets(ctx, "g1")
		if err != nil || offs[tp] != 4 || len(offs) != 1 {
			t.Errorf("committed offsets %v %v, want g-topic-0 at 4", offs, err)
		}
		lag, err := adm.Lag(ctx, "g1")
		if err != nil {
			t.Fatal(err)
		}
		want := PartitionLag{TopicPartition: tp, CurrentOffset: 4, LogEndOffset: 10, Lag: 6, MemberID: d.Members[0].MemberID, Host: d.Members[0].Host, ClientID: "lag-test"}
		if lag.Total != 6 || len(lag.Partitions) != 1 || lag.Partitions[0] != want {
			t.Errorf("lag %+v, want total 6 and %+v", lag, want)
		}

		// An active group's offsets are not changed, not even in a dry run.
		spec := ResetSpec{Kind: ResetToEarliest}
		if _, err := adm.ResetOffsets(ctx, "g1", spec, []kafkit.TopicPartition{tp}, false); !errors.Is(err, ErrGroupActive) {
			t.Errorf("reset of an active group: %v, want ErrGroupActive", err)
		}
		if err := adm.DeleteGroups(ctx, "g1"); !errors.Is(err, kerr.NonEmptyGroup) {
			t.Errorf("deleting an active group: %v, want NON_EMPTY_GROUP", err)
		}
		if err := member.Close(ctx); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name string
			spec ResetSpec
			want int64
		}{
			{"to earliest", ResetSpec{Kind: ResetToEarliest}, 0},
			{"to latest", ResetSpec{Kind: ResetToLatest}, 10},
			{"to offset", ResetSpec{Kind: ResetToOffset, Offset: 7}, 7},
			{"to offset past the end is clamped", ResetSpec{Kind: ResetToOffset, Offset: 70}, 10},
			{"shift back", ResetSpec{Kind: ResetShiftBy, Offset: -3}, 1},
			{"shift before the start is clamped", ResetSpec{Kind: ResetShiftBy, Offset: -30}, 0},
			{"to a datetime after every record", ResetSpec{Kind: ResetToDatetime, Time: time.Now().Add(time.Hour)}, 10},
		} {
			// Start each case from offset 4.
			if err := adm.AlterGroupOffsets(ctx, "g1", map[kafkit.TopicPartition]int64{tp: 4}); err != nil {
				t.Fatal(err)
			}
			plan, err := adm.ResetOffsets(ctx, "g1", tc.spec, []kafkit.TopicPartition{tp}, false)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(plan) != 1 || plan[0].Current != 4 || plan[0].Target != tc.want {
				t.Errorf("%s: plan %+v, want 4 -> %d", tc.name, plan, tc.want)
			}
			if offs, _ := adm.GroupOffsets(ctx, "g1"); offs[tp] != 4 {
				t.Errorf("%s: the dry run moved the offset to %d", tc.name, offs[tp])
			}
			if _, err := adm.ResetOffsets(ctx, "g1", tc.spec, []kafkit.TopicPartition{tp}, true); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if offs, _ := adm.GroupOffsets(ctx, "g1"); offs[tp] != tc.want {
				t.Errorf("%s: executed reset left %d, want %d", tc.name, offs[tp], tc.want)
			}
		}
		if _, err := adm.ResetOffsets(ctx, "g1", ResetSpec{}, []kafkit.TopicPartition{tp}, false); !errors.Is(err, ErrInvalidResetSpec) {
			t.Errorf("empty spec: %v", err)
		}

		if err := adm.DeleteGroups(ctx, "g1"); err != nil {
			t.Fatal(err)
		}
		if offs, err := adm.GroupOffsets(ctx, "g1"); err != nil || len(offs) != 0 {
			t.Errorf("offsets of a deleted group: %v %v", offs, err)
		}
		if err := adm.DeleteGroups(ctx, "g1"); !errors.Is(err, kerr.GroupIDNotFound) {
			t.Errorf("deleting twice: %v, want GROUP_ID_NOT_FOUND", err)
		}
	})
}
