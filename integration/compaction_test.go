package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// fastCleaner runs the log cleaner every 50 ms.
func fastCleaner(c *broker.Config) { c.CleanerBackoffMs = 50 }

func kgoClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// alterTopic sets topic configs with IncrementalAlterConfigs.
func alterTopic(t *testing.T, cl *kgo.Client, topic string, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for k, v := range configs {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			t.Fatalf("IncrementalAlterConfigs %s: %v", topic, err)
		}
	}
}

// createCompacted creates a one-partition topic with the given configs.
func createCompacted(t *testing.T, cl *kgo.Client, topic string, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
}

// consumeAll reads partition 0 of topic from the start through offset last.
func consumeAll(t *testing.T, addr, topic string, last int64) []*kgo.Record {
	t.Helper()
	cl := kgoClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if n := len(out); n > 0 && out[n-1].Offset >= last {
			return out
		}
	}
	t.Fatalf("consuming %s: did not reach offset %d", topic, last)
	return nil
}

// TestCompactedTopicLatestPerKey produces many updates to a few keys, and
// tombstones for some, into a compacted topic with small segments; once the
// cleaner ran, a consumer from the beginning sees exactly the latest value of
// each key and none of the deleted keys.
func TestCompactedTopicLatestPerKey(t *testing.T) {
	b := broker.NewTest(t, broker.WithConfig(fastCleaner))
	const topic = "compacted"
	cl := kgoClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1024),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	createCompacted(t, cl, topic, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "4096", "delete.retention.ms": "200", "min.cleanable.dirty.ratio": "0.01",
	})
	ctx := context.Background()
	want := map[string]string{}
	var recs []*kgo.Record
	for i := range 600 {
		k := fmt.Sprintf("key-%d", i%12)
		v := fmt.Sprintf("value-%d", i)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
		want[k] = v
	}
	for i := range 4 {
		k := fmt.Sprintf("key-%d", i)
		recs = append(recs, &kgo.Record{Key: []byte(k)}) // tombstone
		delete(want, k)
	}
	// Unique keys push the updates out of the active segment, which is never
	// cleaned.
	filler := strings.Repeat("x", 100)
	for i := range 100 {
		k := fmt.Sprintf("filler-%d", i)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(filler)})
		want[k] = filler
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1].Offset

	// A null key is refused in a compacted topic.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("a record without a key in a compacted topic: %v, want INVALID_RECORD", err)
	}

	var got []*kgo.Record
	waitFor(t, 30*time.Second, "the cleaner to compact the topic", func() bool {
		got = consumeAll(t, b.Addr(), topic, last)
		return len(got) == len(want)
	})
	seen := map[string]bool{}
	for _, r := range got {
		k := string(r.Key)
		if seen[k] {
			t.Fatalf("key %s read twice", k)
		}
		seen[k] = true
		if w, ok := want[k]; !ok || w != string(r.Value) {
			t.Fatalf("key %s at offset %d = %q, want %q (present: %v)", k, r.Offset, r.Value, w, ok)
		}
		if produced := recs[r.Offset]; string(produced.Key) != k || string(produced.Value) != string(r.Value) {
			t.Fatalf("offset %d holds %s=%q, was produced as %s=%q", r.Offset, k, r.Value, produced.Key, produced.Value)
		}
	}
}

// commitOffset commits offset for group on topic partition 0 as a simple
// (memberless) consumer does.
func commitOffset(t *testing.T, cl *kgo.Client, group, topic string, offset int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("OffsetCommit %s: %v", group, err)
	}
}

func fetchOffset(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("OffsetFetch %s: %v", group, err)
	}
	return resp.Topics[0].Partitions[0].Offset
}

// TestConsumerOffsetsCompactedAcrossRestart commits offsets of several groups
// many times, lets the cleaner compact __consumer_offsets (given small
// segments), and checks that every group's last commit survives a restart,
// which replays the compacted log.
func TestConsumerOffsetsCompactedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *broker.Config) {
		fastCleaner(c)
		c.InMemory, c.DataDir = false, dir
		c.OffsetsTopicNumPartitions = 1
	}
	b := broker.NewTest(t, broker.WithConfig(cfg))
	cl := kgoClient(t, b.Addr())
	const topic = "tracked"
	createTopic(t, b.Addr(), topic, 1)
	groups := []string{"g0", "g1", "g2"}
	commitOffset(t, cl, groups[0], topic, 0) // creates __consumer_offsets
	alterTopic(t, cl, "__consumer_offsets", map[string]string{"segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01"})
	const commits = 150
	for i := range commits {
		for j, g := range groups {
			commitOffset(t, cl, g, topic, int64(i*10+j))
		}
	}
	// The log holds every commit until the cleaner runs; count its records.
	waitFor(t, 30*time.Second, "__consumer_offsets to be compacted", func() bool {
		return compactedCount(t, b.Addr()) < commits*len(groups)/2
	})
	cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b2 := broker.NewTest(t, broker.WithConfig(cfg))
	cl2 := kgoClient(t, b2.Addr())
	for j, g := range groups {
		if got, want := fetchOffset(t, cl2, g, topic), int64((commits-1)*10+j); got != want {
			t.Fatalf("group %s: committed offset %d after the restart, want %d", g, got, want)
		}
	}
}

// compactedCount counts the records left in __consumer_offsets partition 0
// below its high watermark.
func compactedCount(t *testing.T, addr string) int {
	t.Helper()
	cl := kgoClient(t, addr)
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "__consumer_offsets"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	end := resp.Topics[0].Partitions[0].Offset
	return len(consumeAll(t, addr, "__consumer_offsets", end-1))
}
