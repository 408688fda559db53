package coordinator

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLoaderReadsKafkaRecords replays records of the schema versions Kafka
// has written over the years.
func TestLoaderReadsKafkaRecords(t *testing.T) {
	key := func(v int16, group, topic string, p int32) []byte {
		k := kmsg.OffsetCommitKey{Version: v, Group: group, Topic: topic, Partition: p}
		return k.AppendTo(nil)
	}
	value := func(v int16, offset int64) []byte {
		val := kmsg.OffsetCommitValue{Version: v, Offset: offset, LeaderEpoch: 7, Metadata: "md", CommitTimestamp: 1000, ExpireTimestamp: 2000}
		return val.AppendTo(nil)
	}
	groupRec := func(v int16, leader string, members ...string) Record {
		k := kmsg.GroupMetadataKey{Version: 2, Group: "g"}
		val := kmsg.NewGroupMetadataValue()
		val.Version, val.ProtocolType, val.Generation = v, "consumer", 4
		val.Protocol, val.Leader = ptr("range"), ptr(leader)
		for _, m := range members {
			val.Members = append(val.Members, kmsg.GroupMetadataValueMember{MemberID: m, ClientID: "c", ClientHost: "/h", SessionTimeoutMillis: 10_000, RebalanceTimeoutMillis: 20_000, Assignment: []byte(m)})
		}
		return Record{Key: k.AppendTo(nil), Value: val.AppendTo(nil)}
	}
	l := loader{groups: make(map[string]*group), txns: make(txnIndex), partitionFor: func(string) int32 { return 0 }, now: time.Now()}
	recs := []Record{
		{Key: key(0, "g", "t", 0), Value: value(0, 10)},
		{Key: key(1, "g", "t", 1), Value: value(1, 11)},
		{Key: key(1, "g", "t", 2), Value: value(3, 12)},
		{Key: key(1, "g", "t", 3), Value: value(4, 13)},
		{Key: key(1, "g", "t", 4), Value: value(3, 14)},
		{Key: key(1, "g", "t", 4)}, // tombstone
		groupRec(0, "a", "a", "b"),
		groupRec(3, "gone", "b", "c"),                // a later record wins; its leader left
		{Key: []byte{0, 11, 0, 0}, Value: []byte{1}}, // a share-group record: skipped
	}
	for i, r := range recs {
		if err := l.apply(LogRecord{Record: r, Offset: int64(i), ProducerID: -1}); err != nil {
			t.Fatal(err)
		}
	}
	g := l.groups["g"]
	want := map[int32]committed{
		0: {offset: 10, leaderEpoch: -1, metadata: "md"},
		1: {offset: 11, leaderEpoch: -1, metadata: "md"},
		2: {offset: 12, leaderEpoch: 7, metadata: "md"},
		3: {offset: 13, leaderEpoch: 7, metadata: "md"},
	}
	if len(g.offsets) != len(want) {
		t.Fatalf("%d offsets, want %d", len(g.offsets), len(want))
	}
	for p, w := range want {
		o := g.offsets[topicPartition{"t", p}]
		if o.offset != w.offset || o.leaderEpoch != w.leaderEpoch || o.metadata != w.metadata || o.commitTime.UnixMilli() != 1000 {
			t.Errorf("partition %d: %+v, want %+v", p, o, w)
		}
	}
	if g.state != stateStable || g.generation != 4 || g.protocol != "range" || len(g.members) != 2 || g.members["a"] != nil {
		t.Fatalf("group: state %v generation %d protocol %q members %d", g.state, g.generation, g.protocol, len(g.members))
	}
	if g.leader != "b" {
		t.Errorf("leader %q, want the first member when the recorded one is gone", g.leader)
	}
	if m := g.members["c"]; string(m.assignment) != "c" || m.rebalanceTimeout != 20*time.Second {
		t.Errorf("member c: %+v", m)
	}
	if err := l.apply(LogRecord{Record: Record{Key: []byte{0}}, ProducerID: -1}); err == nil {
		t.Error("a one-byte key was accepted")
	}
}
