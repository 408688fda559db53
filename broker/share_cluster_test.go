package broker

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// setGroupConfig sets a GROUP config resource's values through cl and
// waits until every node of c reads them.
func setGroupConfig(t testing.TB, c *TestCluster, cl *kgo.Client, group string, kvs ...string) {
	t.Helper()
	alterGroupConfigs(t, cl, group, kvs...)
	c.await("group configs on every node", func(b *Broker) bool {
		for i := 0; i < len(kvs); i += 2 {
			if b.groupConfigs.get(group, kvs[i]) != kvs[i+1] {
				return false
			}
		}
		return true
	})
}

// alterGroupConfigs sets a GROUP config resource's values through cl.
func alterGroupConfigs(t testing.TB, cl *kgo.Client, group string, kvs ...string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for i := 0; i < len(kvs); i += 2 {
		res.Configs = append(res.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: kvs[i], Value: kmsg.StringPtr(kvs[i+1])})
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("setting group configs: %v %+v", err, resp)
	}
}

// otherNode is a running node of c other than the ones given.
func otherNode(c *TestCluster, not ...int32) int32 {
	for id := int32(1); id <= int32(len(c.cfgs)); id++ {
		if c.Broker(id) != nil && !slices.Contains(not, id) {
			return id
		}
	}
	return -1
}

// shareFetchOn sends one ShareFetch of topic id's partition 0 for member
// straight to node b, opening a share session, and returns the answer.
func shareFetchOn(t *testing.T, cl *kgo.Client, group, member string, id [16]byte, maxRecords int32) *kmsg.ShareFetchResponse {
	t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(member)
	req.MaxWaitMillis, req.MaxRecords, req.BatchSize, req.MinBytes = 2000, maxRecords, maxRecords, 1
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = id
	rt.Partitions = append(rt.Partitions, kmsg.NewShareFetchRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.ShareFetchResponse)
}

// shareConsume polls cl, accepting every record and flushing the
// acknowledgements, until done says so or 30 s passed. Each record goes to
// seen before it is acknowledged; the records whose acknowledgement was
// flushed go to accepted.
func shareConsume(t *testing.T, cl *kgo.Client, seen func(r *kgo.Record), accepted map[string]bool, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !done() {
		if ctx.Err() != nil {
			t.Fatalf("share consumer: %d records accepted when the time ran out", len(accepted))
		}
		var batch []string
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			seen(r)
			r.Ack(kgo.AckAccept)
			batch = append(batch, string(r.Value))
		})
		if err := cl.FlushAcks(ctx); err != nil {
			// Acknowledgements sent to a deposed leader fail; their
			// records come again.
			t.Logf("flushing acknowledgements: %v", err)
			continue
		}
		for _, v := range batch {
			accepted[v] = true
		}
	}
}

// TestClusterShareGroupLeaderMove runs a share group on a three-node
// cluster through a kgo share consumer: the group coordinator is the
// leader of the group's partition of __consumer_offsets (NOT_COORDINATOR
// elsewhere), ShareFetch is served by the partition's leader only
// (NOT_LEADER_OR_FOLLOWER with the leader elsewhere), and across a move of
// the partition's leadership the new leader works from the replicated
// share state: records accepted before the move are never delivered
// again, records another member acquired and never acknowledged are
// delivered again (before their 60 s lock could have expired). Then the
// coordinator's partition moves and the new coordinator serves the
// group's offsets and membership from the replicated log.
func TestClusterShareGroupLeaderMove(t *testing.T) {
	c := NewTestCluster(t, 3, WithConfig(func(cfg *Config) {
		cfg.BrokerSessionTimeoutMs = 10000
		cfg.ShareMinHeartbeatIntervalMs = 1000
	}))
	const topic, group, total, held = "share-move", "share-move-g", 300, 50
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, topic, 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic(topic, 1)
	setGroupConfig(t, c, cl, group, "share.auto.offset.reset", "earliest", "share.record.lock.duration.ms", "60000", "share.heartbeat.interval.ms", "1000")
	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := c.Broker(1).topics.get(topic).id
	leader := c.Leader(topic, 0)

	// Every node offers the share APIs at the versions kgo's share
	// consumer needs (ShareFetch and ShareAcknowledge v2, Kafka 4.2's).
	for nid := int32(1); nid <= 3; nid++ {
		vresp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), nodeClient(t, c.Broker(nid)))
		if err != nil {
			t.Fatal(err)
		}
		offered := map[int16]int16{}
		for _, k := range vresp.ApiKeys {
			offered[k.ApiKey] = k.MaxVersion
		}
		for _, k := range []kmsg.Key{kmsg.ShareGroupHeartbeat, kmsg.ShareGroupDescribe, kmsg.ShareFetch, kmsg.ShareAcknowledge, kmsg.DescribeShareGroupOffsets} {
			if v, ok := offered[int16(k)]; !ok || (k == kmsg.ShareFetch || k == kmsg.ShareAcknowledge) && v < 2 {
				t.Errorf("node %d's ApiVersions: %s at most v%d (offered: %v)", nid, k.Name(), v, ok)
			}
		}
	}

	// Not the leader: NOT_LEADER_OR_FOLLOWER, pointing at the leader.
	follower := otherNode(c, leader)
	resp := shareFetchOn(t, nodeClient(t, c.Broker(follower)), group, "probe", id, 10)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.NotLeaderForPartition.Code || p.CurrentLeader.LeaderID != leader || len(p.AcquiredRecords) != 0 ||
		!slices.ContainsFunc(resp.NodeEndpoints, func(e kmsg.ShareFetchResponseNodeEndpoint) bool { return e.NodeID == leader }) {
		t.Fatalf("share fetch on follower %d (leader %d): %+v", follower, leader, resp)
	}

	// Not the coordinator: NOT_COORDINATOR.
	coord := findCoordinator(t, cl, group, 0)
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, "probe-member", []string{topic}
	if r := askNode(t, c.Broker(otherNode(c, coord)), hb, func(r *kmsg.ShareGroupHeartbeatResponse) int16 { return r.ErrorCode }); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("share heartbeat on a node other than coordinator %d: %+v", coord, r)
	}

	// A member that hangs holds the first records at the leader.
	holder := nodeClient(t, c.Broker(leader))
	resp = shareFetchOn(t, holder, group, "hung-member", id, held)
	p = resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].FirstOffset != 0 || p.AcquiredRecords[0].LastOffset != held-1 {
		t.Fatalf("hung member acquired %+v", resp)
	}

	consumer := clusterClient(t, c, kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200*time.Millisecond), kgo.ShareMaxRecords(20))
	accepted := map[string]bool{}
	shareConsume(t, consumer, func(r *kgo.Record) {
		if n, _ := strconv.Atoi(string(r.Value)); n < held {
			t.Errorf("record %d held by the hung member delivered before the move", n)
		}
	}, accepted, func() bool { return len(accepted) >= 100 })
	before := len(accepted)
	acceptedBefore := map[string]bool{}
	for v := range accepted {
		acceptedBefore[v] = true
	}

	to := otherNode(c, leader)
	moveLeader(t, c, topic, 0, to)
	redelivered := 0
	shareConsume(t, consumer, func(r *kgo.Record) {
		v := string(r.Value)
		if acceptedBefore[v] {
			t.Errorf("record %s accepted before the leader moved delivered again", v)
		}
		if n, _ := strconv.Atoi(v); n < held {
			redelivered++
			if r.DeliveryCount() < 2 {
				t.Errorf("held record %d redelivered with delivery count %d", n, r.DeliveryCount())
			}
		}
	}, accepted, func() bool { return len(accepted) == total })
	if redelivered < held {
		t.Errorf("%d of the %d records the hung member held were delivered again", redelivered, held)
	}
	t.Logf("%d records accepted before the move from %d to %d, %d after", before, leader, to, total-before)

	// The coordinator moves: the new one loads the group's share state
	// from its replica of __consumer_offsets.
	cp := coordinatorPartition(c, group)
	var replicas []int32
	c.Broker(coord).cluster.q.View(func(img *metadata.Image) { replicas = img.Topics[offsetsTopic].Partitions[cp].Replicas })
	newCoord := otherNode(c, append(slices.DeleteFunc(slices.Clone([]int32{1, 2, 3}), func(id int32) bool { return slices.Contains(replicas, id) }), coord)...)
	moveLeader(t, c, offsetsTopic, cp, newCoord)
	desc := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	dg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	dg.GroupID = group
	desc.Groups = append(desc.Groups, dg)
	code := func(r *kmsg.DescribeShareGroupOffsetsResponse) int16 { return r.Groups[0].ErrorCode }
	if r := askNode(t, c.Broker(coord), desc, code); r.Groups[0].ErrorCode != kerr.NotCoordinator.Code {
		t.Errorf("offsets on the former coordinator %d: %+v", coord, r.Groups[0])
	}
	r := askNode(t, c.Broker(newCoord), desc, code)
	if g := r.Groups[0]; g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].StartOffset != total {
		t.Fatalf("offsets on the new coordinator %d: %+v", newCoord, g)
	}

	// The consumer finds the new coordinator and goes on.
	recs = recs[:0]
	for i := total; i < total+20; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	shareConsume(t, consumer, func(*kgo.Record) {}, accepted, func() bool { return len(accepted) == total+20 })
}

// BenchmarkShareConsume runs kgo share consumers that accept every record
// of a 3-partition topic, on one node and on a three-node cluster (RF 3),
// and reports records/s: the cost of the share state's replicated writes.
//
//	go test -run '^$' -bench BenchmarkShareConsume -benchtime 1x ./broker/
func BenchmarkShareConsume(b *testing.B) {
	const topic, group, total, consumers = "share-bench", "share-bench-g", 30000, 3
	run := func(b *testing.B, seeds []string, setup func(cl *kgo.Client)) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		setup(cl)
		var recs []*kgo.Record
		for i := range total {
			recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var mu sync.Mutex
		seen := map[string]bool{}
		var wg sync.WaitGroup
		for range consumers {
			c, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			wg.Go(func() {
				for ctx.Err() == nil {
					var batch []string
					c.PollFetches(ctx).EachRecord(func(r *kgo.Record) { r.Ack(kgo.AckAccept); batch = append(batch, string(r.Value)) })
					if c.FlushAcks(ctx) != nil {
						continue
					}
					mu.Lock()
					for _, v := range batch {
						seen[v] = true
					}
					if len(seen) == total {
						cancel()
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != total {
			b.Fatalf("%d of %d records accepted in 2 minutes", len(seen), total)
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "records/s")
	}
	create := func(b *testing.B, cl *kgo.Client, rf int16) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 3, rf
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			b.Fatalf("creating %s: %v %+v", topic, err, resp)
		}
	}
	b.Run("node", func(b *testing.B) {
		br := NewTest(b)
		run(b, []string{br.Addr()}, func(cl *kgo.Client) {
			create(b, cl, 1)
			alterGroupConfigs(b, cl, group, "share.auto.offset.reset", "earliest")
		})
	})
	b.Run("cluster", func(b *testing.B) {
		c := NewTestCluster(b, 3, WithConfig(func(cfg *Config) { cfg.BrokerSessionTimeoutMs = 10000 }))
		run(b, c.Addrs(), func(cl *kgo.Client) {
			create(b, cl, 3)
			c.AwaitTopic(topic, 3)
			setGroupConfig(b, c, cl, group, "share.auto.offset.reset", "earliest")
		})
	})
}
