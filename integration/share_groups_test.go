package integration

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/testutil"
)

// shareTargets runs fn against the clusters that have share groups: our
// broker, with the floors of the groups' lock duration and heartbeat
// interval lowered to 1 s (Kafka's group.share.min.* keys) so tests need
// not wait 15 s for a lock or 5 s for a heartbeat, and kfake. (The Apache
// Kafka image the container target runs predates KIP-932's stable RPCs.)
func shareTargets(t *testing.T, fn func(t *testing.T, tg testutil.Target)) {
	t.Run(testutil.Kafkit, func(t *testing.T) {
		b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) {
			c.ShareMinRecordLockDurationMs, c.ShareMinHeartbeatIntervalMs = 1000, 1000
		}))
		fn(t, testutil.Target{Name: testutil.Kafkit, Bootstrap: []string{b.Addr()}, Broker: b})
	})
	t.Run(testutil.Kfake, func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		fn(t, testutil.Target{Name: testutil.Kfake, Bootstrap: c.ListenAddrs()})
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

// topicID looks a topic's id up through Metadata.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata of %s: %v %+v", topic, err, resp)
	}
	return resp.Topics[0].TopicID
}

// firstBroker is the (only) broker of a single-node cluster, for share
// requests sent as a bare client would send them.
func firstBroker(t *testing.T, cl *kgo.Client) *kgo.Broker {
	t.Helper()
	if err := cl.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	bs := cl.DiscoveredBrokers()
	if len(bs) == 0 {
		t.Fatal("no broker discovered")
	}
	return bs[0]
}

// holdRecords acquires up to n records of partition 0 as member through a
// bare ShareFetch and never acknowledges them, as a consumer that hangs.
func holdRecords(t *testing.T, cl *kgo.Client, group, member string, id [16]byte, n int32) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(member)
	req.MaxWaitMillis, req.MaxRecords, req.BatchSize, req.MinBytes = 5000, n, n, 1
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = id
	rt.Partitions = append(rt.Partitions, kmsg.NewShareFetchRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	kresp, err := firstBroker(t, cl).Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.ShareFetchResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("share fetch: %+v", resp)
	}
	var out []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out = append(out, rp.AcquiredRecords...)
		}
	}
	return out
}

// TestShareGroupLockExpiryRedelivers: records a consumer acquired and never
// acknowledged come back, once share.record.lock.duration.ms has passed,
// to another consumer with their delivery count raised to 2; the hung
// consumer can no longer acknowledge them (INVALID_RECORD_STATE).
func TestShareGroupLockExpiryRedelivers(t *testing.T) {
	shareTargets(t, func(t *testing.T, tg testutil.Target) {
		if tg.Name == testutil.Kfake {
			t.Skip("kfake keeps 30 s locks whatever the group's share.record.lock.duration.ms")
		}
		const topic, group, total = "share-lock", "share-lock-g", 10
		createTopicOn(t, tg.Bootstrap, topic, 1)
		setGroupConfigs(t, tg.Bootstrap, group, "share.auto.offset.reset", "earliest", "share.record.lock.duration.ms", "1000")
		produceValues(t, tg.Bootstrap, topic, 0, total)
		raw, err := kgo.NewClient(kgo.SeedBrokers(tg.Bootstrap...))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		id := topicID(t, raw, topic)
		held := holdRecords(t, raw, group, "hung-member", id, total)
		if len(held) == 0 || held[0].DeliveryCount != 1 {
			t.Fatalf("hung consumer acquired %+v", held)
		}
		acquiredAt := time.Now()

		cl := newKgoShareConsumer(t, tg.Bootstrap, group, topic)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got := map[string]int32{}
		for len(got) < total && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				got[string(r.Value)] = r.DeliveryCount()
				r.Ack(kgo.AckAccept)
			})
		}
		if err := cl.FlushAcks(ctx); err != nil {
			t.Fatal(err)
		}
		if len(got) != total {
			t.Fatalf("redelivered %d of %d records", len(got), total)
		}
		if since := time.Since(acquiredAt); since < 900*time.Millisecond {
			t.Errorf("records redelivered %v after acquisition, before the 1 s lock ended", since)
		}
		for v, dc := range got {
			if dc != 2 {
				t.Errorf("record %s redelivered with delivery count %d, want 2", v, dc)
			}
		}
		// The hung consumer's late acknowledgement is refused.
		ack := kmsg.NewPtrShareAcknowledgeRequest()
		ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = kmsg.StringPtr(group), kmsg.StringPtr("hung-member"), 1
		at := kmsg.NewShareAcknowledgeRequestTopic()
		at.TopicID = id
		ap := kmsg.NewShareAcknowledgeRequestTopicPartition()
		ap.AcknowledgementBatches = append(ap.AcknowledgementBatches, kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}})
		at.Partitions = append(at.Partitions, ap)
		ack.Topics = append(ack.Topics, at)
		kresp, err := firstBroker(t, raw).Request(ctx, ack)
		if err != nil {
			t.Fatal(err)
		}
		if resp := kresp.(*kmsg.ShareAcknowledgeResponse); resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRecordState.Code {
			t.Fatalf("late acknowledgement answered %+v, want INVALID_RECORD_STATE", resp)
		}
	})
}

// TestShareGroupRejectAndPoison: rejected records are never delivered
// again; a record released on every delivery is delivered
// group.share.delivery.count.limit (5) times and then archived; the
// share-partition start offset ends past everything.
func TestShareGroupRejectAndPoison(t *testing.T) {
	shareTargets(t, func(t *testing.T, tg testutil.Target) {
		const topic, group, total, poison = "share-poison", "share-poison-g", 20, "7"
		createTopicOn(t, tg.Bootstrap, topic, 1)
		setGroupConfigs(t, tg.Bootstrap, group, "share.auto.offset.reset", "earliest")
		produceValues(t, tg.Bootstrap, topic, 0, total)
		cl := newKgoShareConsumer(t, tg.Bootstrap, group, topic)
		deliveries := map[string][]int32{}
		isRejected := func(v string) bool { n, _ := strconv.Atoi(v); return n%5 == 0 }
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := func() bool {
			accepted := 0
			for v, dcs := range deliveries {
				if !isRejected(v) && v != poison && len(dcs) > 0 {
					accepted++
				}
			}
			return accepted == total-4-1 && len(deliveries[poison]) == 5
		}
		for !done() && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				v := string(r.Value)
				deliveries[v] = append(deliveries[v], r.DeliveryCount())
				switch {
				case v == poison:
					r.Ack(kgo.AckRelease)
				case isRejected(v):
					r.Ack(kgo.AckReject)
				default:
					r.Ack(kgo.AckAccept)
				}
			})
			cl.FlushAcks(ctx)
		}
		// Nothing more may come: not the rejected, not the poison record.
		quiet, stop := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer stop()
		for quiet.Err() == nil {
			cl.PollFetches(quiet).EachRecord(func(r *kgo.Record) {
				t.Errorf("record %s delivered again (delivery %d)", r.Value, r.DeliveryCount())
				r.Ack(kgo.AckAccept)
			})
		}
		for v, dcs := range deliveries {
			want := []int32{1}
			if v == poison {
				want = []int32{1, 2, 3, 4, 5}
			}
			if !slices.Equal(dcs, want) {
				t.Errorf("record %s delivered with counts %v, want %v", v, dcs, want)
			}
		}
		if len(deliveries) != total {
			t.Errorf("%d records delivered, want %d", len(deliveries), total)
		}
		adm, err := kgo.NewClient(kgo.SeedBrokers(tg.Bootstrap...))
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.Groups = append(req.Groups, kmsg.DescribeShareGroupOffsetsRequestGroup{GroupID: group, Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}})
		resp, err := req.RequestWith(context.Background(), adm)
		if err != nil {
			t.Fatal(err)
		}
		if g := resp.Groups[0]; g.ErrorCode != 0 || g.Topics[0].Partitions[0].StartOffset != total {
			t.Errorf("share-partition start offset: %+v, want %d", g, total)
		}
	})
}
