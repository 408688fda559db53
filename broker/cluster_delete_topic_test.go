package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOffsets is every offset group has committed (OffsetFetch of all
// topics, through the client's routing to its coordinator), by topic and
// partition.
func groupOffsets(ctx context.Context, t *testing.T, cl *kgo.Client, group string) map[string]map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("OffsetFetch %s: %v", group, err)
		}
		code, topics := resp.ErrorCode, resp.Topics
		if len(resp.Groups) > 0 {
			code = resp.Groups[0].ErrorCode
		}
		if err := kerr.ErrorForCode(code); kerr.IsRetriable(err) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		} else if err != nil {
			t.Fatalf("OffsetFetch %s: %v", group, err)
		}
		out := map[string]map[int32]int64{}
		for _, rt := range topics {
			for _, rp := range rt.Partitions {
				if rp.Offset >= 0 {
					if out[rt.Topic] == nil {
						out[rt.Topic] = map[int32]int64{}
					}
					out[rt.Topic][rp.Partition] = rp.Offset
				}
			}
		}
		if len(resp.Groups) > 0 {
			for _, rt := range resp.Groups[0].Topics {
				for _, rp := range rt.Partitions {
					if rp.Offset >= 0 {
						if out[rt.Topic] == nil {
							out[rt.Topic] = map[int32]int64{}
						}
						out[rt.Topic][rp.Partition] = rp.Offset
					}
				}
			}
		}
		return out
	}
}

// Deleting a topic on a cluster drops the topic's committed offsets of
// every group, whichever node coordinates it, as each Kafka broker does
// when it applies the deletion from the metadata log
// (BrokerMetadataPublisher → onPartitionsDeleted): the coordinators write
// tombstones, so a coordinator that loads the partition later does not
// bring them back, and consumers of the topic created again start from
// their reset policy.
func TestClusterDeleteTopicForgetsOffsetsOnEveryCoordinator(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c, kgo.RetryTimeout(30*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	findCoordinator(t, cl, "td", 0)
	c.AwaitTopic(offsetsTopic, 50)
	// One group per node, by who leads its partition of __consumer_offsets.
	groups := map[int32]string{}
	for i := 0; len(groups) < 3 && i < 1000; i++ {
		g := fmt.Sprintf("td-%d", i)
		if x := c.Leader(offsetsTopic, c.Broker(1).coord.groups.PartitionFor(g)); x > 0 && groups[x] == "" {
			groups[x] = g
		}
	}
	if len(groups) < 3 {
		t.Fatalf("groups coordinated by each node: %v", groups)
	}
	const topic = "td-topic"
	create := func() {
		t.Helper()
		if err := createTopic(t, cl, topic, 2, 3); err != nil {
			t.Fatalf("creating %s: %v", topic, err)
		}
		c.AwaitTopic(topic, 2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	create()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte("old")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range groups {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = g, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		for p := range int32(2) {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, 4
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("committing %s: %v", g, err)
		}
		for _, rp := range resp.Topics[0].Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("committing %s: %v", g, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
		if got := groupOffsets(ctx, t, cl, g)[topic]; len(got) != 2 {
			t.Fatalf("%s committed %v", g, got)
		}
	}

	// Through one node only: the others learn of it from the metadata log.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{topic}
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr(topic)}}
	if resp, err := del.RequestWith(ctx, nodeClient(t, c.Broker(1))); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("deleting %s: %v %+v", topic, err, resp)
	}
	// Each coordinator forgets them when its image applies the deletion,
	// shortly after the deletion was answered.
	stale := map[string]map[int32]int64{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		clear(stale)
		for _, g := range groups {
			if o := groupOffsets(ctx, t, cl, g)[topic]; len(o) > 0 {
				stale[g] = o
			}
		}
		if len(stale) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets of deleted %s still served: %v (groups by coordinator %v)", topic, stale, groups)
		}
	}
	// The groups held nothing else: they are gone, as Kafka's are.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	for _, g := range groups {
		dg.Groups = append(dg.Groups, g)
	}
	if resp, err := dg.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		for _, g := range resp.Groups {
			if g.State != "Dead" || g.ErrorCode != 0 && g.ErrorCode != kerr.GroupIDNotFound.Code {
				t.Errorf("group %s after its only topic's deletion: %s %v", g.Group, g.State, kerr.ErrorForCode(g.ErrorCode))
			}
		}
	}
	// Written as tombstones: the leader's log (every replica's, once
	// replicated) has them, so a coordinator loading it later has none.
	for _, g := range groups {
		x := c.Leader(offsetsTopic, c.Broker(1).coord.groups.PartitionFor(g))
		for p := range int32(2) {
			if off := committedInLog(t, c.Broker(x), g, topic, p); off != -1 {
				t.Errorf("node %d's log of %s still has %s-%d at %d", x, g, topic, p, off)
			}
		}
	}
	// A coordinator that takes a group over loads it without the offsets.
	moved := groups[1]
	moveLeader(t, c, offsetsTopic, c.Broker(1).coord.groups.PartitionFor(moved), 2)
	if o := groupOffsets(ctx, t, cl, moved)[topic]; len(o) > 0 {
		t.Errorf("%s's new coordinator serves offsets of deleted %s: %v", moved, topic, o)
	}

	create()
	// A new client: cl's producer still has the old topic's id.
	prod := clusterClient(t, c, kgo.RetryTimeout(30*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	// Past the old offsets, so that those would be read from, not reset.
	for i := range 20 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte("new")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A consumer in each group starts where its reset policy says (the
	// start), not at the old topic's offset 4.
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cons, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup(g), kgo.ConsumeTopics(topic),
				kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			defer cons.Close()
			first := map[int32]int64{}
			for len(first) < 2 && ctx.Err() == nil {
				cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					if _, ok := first[r.Partition]; !ok {
						first[r.Partition] = r.Offset
					}
				})
			}
			for p, off := range first {
				if off != 0 {
					t.Errorf("group %s started %s-%d at %d, not at the start", g, topic, p, off)
				}
			}
			if len(first) < 2 {
				t.Errorf("group %s read partitions %v only", g, first)
			}
		}()
	}
	wg.Wait()
}
