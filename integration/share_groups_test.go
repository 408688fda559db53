package integration

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/testutil"
)

// shareTargets runs fn against the targets that have share groups: our
// broker and kfake (the Apache Kafka image the container target runs
// predates KIP-932's stable RPCs).
func shareTargets(t *testing.T, fn func(t *testing.T, tg testutil.Target)) {
	testutil.ForEachTarget(t, func(t *testing.T, tg testutil.Target) {
		if tg.Name == testutil.ApacheKafka {
			t.Skip(testutil.KafkaImage + " has no share groups (Kafka 4.2+)")
		}
		fn(t, tg)
	})
}

// setGroupConfigs sets a group's configs (the GROUP config resource).
func setGroupConfigs(t *testing.T, seeds []string, group string, kvs ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for i := 0; i < len(kvs); i += 2 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kvs[i], kmsg.StringPtr(kvs[i+1])
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			t.Fatalf("setting configs of group %s: %v", group, err)
		}
	}
}

// produceValues produces the values "0".."n-1" round robin over the
// topic's partitions with kgo and waits for them.
func produceValues(t *testing.T, seeds []string, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// newKgoShareConsumer is a kgo share consumer of topic in group.
func newKgoShareConsumer(t *testing.T, seeds []string, group, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestShareGroupKgoSharedPartition: two kgo share consumers of one
// single-partition topic both receive its records (a share group shares a
// partition), and every record is accepted exactly once.
func TestShareGroupKgoSharedPartition(t *testing.T) {
	shareTargets(t, func(t *testing.T, tg testutil.Target) {
		const topic, group, total = "share-kgo-shared", "share-kgo-shared-g", 2000
		createTopicOn(t, tg.Bootstrap, topic, 1)
		setGroupConfigs(t, tg.Bootstrap, group, "share.auto.offset.reset", "earliest")
		produceValues(t, tg.Bootstrap, topic, 0, total)

		var mu sync.Mutex
		seen := map[string]int{}
		perConsumer := [2]int{}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for i := range 2 {
			cl := newKgoShareConsumer(t, tg.Bootstrap, group, topic, kgo.ShareMaxRecords(50))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					fs := cl.PollFetches(ctx)
					fs.EachRecord(func(r *kgo.Record) {
						r.Ack(kgo.AckAccept)
						mu.Lock()
						seen[string(r.Value)]++
						perConsumer[i]++
						mu.Unlock()
					})
					if err := cl.FlushAcks(ctx); err != nil && ctx.Err() == nil {
						t.Errorf("flushing acks: %v", err)
					}
					mu.Lock()
					done := len(seen) == total
					mu.Unlock()
					if done {
						cancel()
					}
					// Let the other consumer take its turn.
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if len(seen) != total {
			t.Fatalf("consumed %d distinct records of %d", len(seen), total)
		}
		for v, n := range seen {
			if n != 1 {
				t.Errorf("record %s accepted %d times", v, n)
			}
		}
		if perConsumer[0] == 0 || perConsumer[1] == 0 {
			t.Errorf("records per consumer %v: the partition was not shared", perConsumer)
		}
	})
}
