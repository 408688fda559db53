package admin

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeLogDirs(t *testing.T) {
	dataDir := t.TempDir()
	b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.InMemory, c.DataDir = false, dataDir }))
	adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	mustCreate(t, adm, "sized", 2)
	produce(t, b.Addr(), "sized", 1, 20, time.Now()) // partition 0 only

	dirs, err := adm.DescribeLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 1 || dirs[0].Dir != dataDir || dirs[0].Err != nil {
		t.Fatalf("dirs %+v, want one, %s", dirs, dataDir)
	}
	d := dirs[0]
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Errorf("volume: total %d, usable %d", d.TotalBytes, d.UsableBytes)
	}
	p0, p1 := kafkit.TopicPartition{Topic: "sized"}, kafkit.TopicPartition{Topic: "sized", Partition: 1}
	if d.Replicas[p0].Size <= 0 || d.Replicas[p1].Size != 0 {
		t.Errorf("sizes: %+v, want partition 0 > 0 and partition 1 empty", d.Replicas)
	}
	if _, ok := d.Replicas[p1]; !ok {
		t.Error("an empty partition must still be listed")
	}

	// Writing more grows the size; asking for one partition lists only it.
	cluster, err := adm.DescribeCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := cluster.Brokers[0].ID
	if d.Broker != id {
		t.Errorf("dir of broker %d, want %d", d.Broker, id)
	}
	before := d.Replicas[p0].Size
	produce(t, b.Addr(), "sized", 1, 5, time.Now())
	dirs, err = adm.DescribeLogDirs(ctx, []int32{id}, p0)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Collect(maps.Keys(dirs[0].Replicas)); len(got) != 1 || got[0] != p0 {
		t.Errorf("asked for %v, got %v", p0, got)
	}
	if after := dirs[0].Replicas[p0].Size; after <= before {
		t.Errorf("size %d after more records, was %d", after, before)
	}

	// A broker that does not exist is an error; nothing is described.
	dirs, err = adm.DescribeLogDirs(ctx, []int32{id + 7})
	if err == nil || len(dirs) != 0 {
		t.Errorf("unknown broker: %v, %+v", err, dirs)
	}
}

func TestDeleteGroupOffsets(t *testing.T) {
	b := broker.NewTest(t)
	adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	mustCreate(t, adm, "old", 1)
	mustCreate(t, adm, "live", 1)
	produce(t, b.Addr(), "live", 1, 10, time.Now())
	old, live := kafkit.TopicPartition{Topic: "old"}, kafkit.TopicPartition{Topic: "live"}

	if err := adm.AlterGroupOffsets(ctx, "g1", map[kafkit.TopicPartition]int64{old: 3}); err != nil {
		t.Fatal(err)
	}
	consumeCommitted(t, b.Addr(), "g1", "live", 4) // stays in the group, subscribed to "live"

	err := adm.DeleteGroupOffsets(ctx, "g1", old, live)
	if !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("deleting a subscribed topic's offset: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.Resource != "live-0" {
		t.Errorf("error %v does not name live-0", err)
	}
	offs, err := adm.GroupOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[kafkit.TopicPartition]int64{live: 4}; !maps.Equal(offs, want) {
		t.Errorf("offsets after delete %v, want %v (old's deleted, live's kept)", offs, want)
	}

	if err := adm.DeleteGroupOffsets(ctx, "nope", old); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("unknown group: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

// Before v4 the volume's sizes are not on the wire; they read as unknown,
// not as an empty volume. A directory's own error is kept with it.
func TestLogDirsBeforeV4(t *testing.T) {
	resp := kmsg.NewPtrDescribeLogDirsResponse()
	resp.Version = 3
	d := kmsg.DescribeLogDirsResponseDir{Dir: "/b", ErrorCode: kerr.KafkaStorageError.Code}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{d, {Dir: "/a"}}
	dirs := logDirs(1, resp)
	if len(dirs) != 2 || dirs[0].Dir != "/a" || dirs[0].TotalBytes != -1 || dirs[0].UsableBytes != -1 || dirs[0].Err != nil {
		t.Errorf("dirs %+v", dirs)
	}
	if !errors.Is(dirs[1].Err, kerr.KafkaStorageError) {
		t.Errorf("offline dir: %v", dirs[1].Err)
	}
}
