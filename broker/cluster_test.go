package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

func clusterClient(t *testing.T, c *TestCluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// nodeClient talks to one node only (no metadata-driven routing).
func nodeClient(t *testing.T, b *Broker) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through any broker, retrying what Kafka's
// clients retry and an attempt that timed out, until the deadline.
func createTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, rf int16) error {
	t.Helper()
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		if err == nil || err == kerr.TopicAlreadyExists && errors.Is(last, context.DeadlineExceeded) {
			return nil // created, the answer to an attempt that timed out (a loaded machine) included
		}
		if last = err; !kerr.IsRetriable(err) && err != kerr.NotController && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return last
}

// metadataOf asks one node for a topic's metadata.
func metadataOf(t *testing.T, b *Broker, topic string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	resp, err := nodeClient(t, b).SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.MetadataResponse)
}

// Three nodes: every client sees three brokers and the controller; 12
// partitions × RF 3 are led 4 per node; kgo produces through the leaders
// and consumes back.
func TestClusterTopicsAndLeaders(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "spread", 12, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("spread", 12)
	var md *kmsg.MetadataResponse
	for id := int32(1); id <= 3; id++ {
		md = metadataOf(t, c.Broker(id), "spread")
		if len(md.Brokers) != 3 || md.ControllerID != c.Controller() {
			t.Fatalf("node %d: brokers %v, controller %d (want 3 brokers, controller %d)", id, md.Brokers, md.ControllerID, c.Controller())
		}
	}
	leads := map[int32]int{}
	for _, p := range md.Topics[0].Partitions {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 || p.Leader != p.Replicas[0] {
			t.Errorf("partition %d: leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
		leads[p.Leader]++
	}
	if leads[1] != 4 || leads[2] != 4 || leads[3] != 4 {
		t.Errorf("leaders per node %v, want 4 each", leads)
	}
	pcl := clusterClient(t, c, kgo.DefaultProduceTopic("spread"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 12; p++ {
		if err := pcl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Value: []byte{byte(p)}}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}
	// acks=all: each record is in every replica's log once acknowledged.
	for p := int32(0); p < 12; p++ {
		leader := c.Leader("spread", p)
		for id := int32(1); id <= 3; id++ {
			if end := c.Broker(id).topics.partition("spread", p).log.EndOffset(); end != 1 {
				t.Errorf("partition %d on node %d (leader %d): end offset %d, want 1", p, id, leader, end)
			}
		}
	}
	ccl := clusterClient(t, c, kgo.ConsumeTopics("spread"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for got < 12 && ctx.Err() == nil {
		fs := ccl.PollFetches(ctx)
		fs.EachRecord(func(*kgo.Record) { got++ })
	}
	if got != 12 {
		t.Errorf("consumed %d of 12 records", got)
	}
}

// A partition request to a broker that does not lead it is refused with
// NOT_LEADER_OR_FOLLOWER naming the leader (KIP-951), and stale or future
// leader epochs with FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH.
func TestClusterNotLeader(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "one", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("one", 1)
	leader := c.Leader("one", 0)
	other := leader%3 + 1
	ocl := nodeClient(t, c.Broker(other))

	prod := kmsg.NewPtrProduceRequest()
	prod.Acks = 1
	prod.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = "one", c.Broker(leader).topics.get("one").id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = nil
	rt.Partitions = append(rt.Partitions, rp)
	prod.Topics = append(prod.Topics, rt)
	r, err := ocl.SeedBrokers()[0].Request(context.Background(), prod)
	if err != nil {
		t.Fatal(err)
	}
	presp := r.(*kmsg.ProduceResponse)
	sp := presp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code || sp.CurrentLeader.LeaderID != leader || len(presp.Brokers) != 1 || presp.Brokers[0].NodeID != leader {
		t.Errorf("produce to a follower: code %d current leader %+v brokers %+v", sp.ErrorCode, sp.CurrentLeader, presp.Brokers)
	}

	lcl := nodeClient(t, c.Broker(leader))
	for _, tc := range []struct {
		epoch int32
		want  int16
	}{{-1, 0}, {0, 0}, {1, kerr.UnknownLeaderEpoch.Code}} {
		req := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "one"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.CurrentLeaderEpoch, lp.Timestamp = tc.epoch, -1
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		r, err := lcl.SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*kmsg.ListOffsetsResponse)
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.want {
			t.Errorf("ListOffsets at leader epoch %d: code %d, want %d", tc.epoch, got, tc.want)
		}
	}
}

// Killing the active controller elects another, and topic creation works
// again; the killed node rejoins with a new broker epoch.
func TestClusterControllerFailover(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	first := c.Controller()
	epoch := c.Broker(first).cluster.epoch.Load()
	c.Kill(first)
	if next := c.Controller(); next == first {
		t.Fatalf("controller still %d", next)
	}
	if err := createTopic(t, cl, "after-failover", 3, 2); err != nil {
		t.Fatalf("create after failover: %v", err)
	}
	c.Restart(first)
	c.AwaitTopic("after-failover", 3)
	if again := c.Broker(first).cluster.epoch.Load(); again <= epoch {
		t.Errorf("rejoined with broker epoch %d, had %d", again, epoch)
	}
	if tp := c.Broker(first).topics.get("after-failover"); tp == nil {
		t.Error("the restarted node did not catch up with the topic created while it was down")
	}
}

// A controlled shutdown moves the broker's leaderships before it stops; a
// killed broker is fenced after broker.session.timeout.ms and its
// leaderships move.
func TestClusterShutdownAndFencing(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "moves", 6, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("moves", 6)
	ledBy := func(id int32) (n int) {
		for p := int32(0); p < 6; p++ {
			if c.Leader("moves", p) == id {
				n++
			}
		}
		return n
	}
	if ledBy(3) == 0 {
		t.Fatal("node 3 leads nothing")
	}
	c.Stop(3)
	// Moved by the controlled shutdown, not by fencing: visible on the
	// active controller's image within a second of Stop, before the 1.5 s
	// session could expire (the image applies what the quorum committed a
	// little after the commit, and a new controller after its election).
	deadline := time.Now().Add(time.Second)
	for ledBy(3) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ledBy(3); n != 0 {
		t.Errorf("a second after a controlled shutdown node 3 still leads %d partitions", n)
	}
	// And fenced with it (Kafka's SHUTDOWN_NOW): Metadata stops listing
	// it, so clients drop it as a coordinator without a session timeout.
	fenced := false
	c.Broker(c.Controller()).cluster.q.View(func(img *metadata.Image) { fenced = img.Brokers[3] != nil && img.Brokers[3].Fenced })
	if !fenced {
		t.Error("a second after its controlled shutdown node 3 is not fenced")
	}
	c.Restart(3)
	c.AwaitLive(3)

	victim := int32(2)
	if c.Controller() == victim {
		victim = 1
	}
	if ledBy(victim) == 0 {
		t.Fatalf("node %d leads nothing", victim)
	}
	killed := time.Now()
	c.Kill(victim)
	c.AwaitLive(2)
	if since := time.Since(killed); since < 1500*time.Millisecond {
		t.Errorf("fenced %v after the kill, before broker.session.timeout.ms (1.5 s)", since)
	}
	if n := ledBy(victim); n != 0 {
		t.Errorf("the fenced node still leads %d partitions", n)
	}
}

// The group coordinator is the leader of the group's __consumer_offsets
// partition; when its broker stops, the partition's leadership moves and a
// kgo consumer group goes on with the new coordinator. (That committed
// offsets survive the move is integration's TestClusterCoordinatorFailover;
// here the test only asks that the records produced after it arrive.)
func TestClusterGroupCoordinatorMoves(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "work", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("work", 3)
	pcl := clusterClient(t, c, kgo.DefaultProduceTopic("work"))
	produce := func(tag byte) {
		t.Helper()
		for i := 0; i < 10; i++ {
			if err := pcl.ProduceSync(context.Background(), &kgo.Record{Value: []byte{tag, byte(i)}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce('a')
	ccl := clusterClient(t, c, kgo.ConsumeTopics("work"), kgo.ConsumerGroup("grp"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	consume := func(tag byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got := 0
		for got < 10 && ctx.Err() == nil {
			ccl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if r.Value[0] == tag {
					got++
				}
			})
		}
		if got < 10 {
			t.Fatalf("consumed %d of the 10 records %c", got, tag)
		}
	}
	consume('a')

	// COORDINATOR_NOT_AVAILABLE is retriable (a node whose image lags the
	// controller's may answer it for a moment): ask again, as clients do.
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = "grp"
	resp, err := req.RequestWith(context.Background(), cl)
	for deadline := time.Now().Add(10 * time.Second); err == nil && resp.ErrorCode == kerr.CoordinatorNotAvailable.Code && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		resp, err = req.RequestWith(context.Background(), cl)
	}
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("FindCoordinator: %v %v", err, resp)
	}
	coord := resp.NodeID
	partition := coordinatorPartition(c, "grp")
	if leader := c.Leader(offsetsTopic, partition); leader != coord {
		t.Fatalf("coordinator %d, but %s-%d is led by %d", coord, offsetsTopic, partition, leader)
	}
	c.Stop(coord)
	if leader := c.Leader(offsetsTopic, partition); leader == coord || leader < 0 {
		t.Fatalf("%s-%d led by %d after its leader %d stopped", offsetsTopic, partition, leader, coord)
	}
	produce('b')
	consume('b')

	// A broker that does not lead the group's partition sends the client
	// to find the coordinator again.
	owner := c.Leader(offsetsTopic, partition)
	for id := int32(1); id <= 3; id++ {
		if id == owner || c.Broker(id) == nil {
			continue
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = "grp", "m", 1
		r, err := nodeClient(t, c.Broker(id)).SeedBrokers()[0].Request(context.Background(), hb)
		if err != nil {
			t.Fatal(err)
		}
		if code := r.(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.NotCoordinator.Code {
			t.Errorf("heartbeat of grp on node %d (coordinator %d): code %d, want NOT_COORDINATOR", id, owner, code)
		}
	}
}

func coordinatorPartition(c *TestCluster, group string) int32 {
	for _, b := range c.nodes {
		if b != nil {
			return b.coord.groups.PartitionFor(group)
		}
	}
	return -1
}

// With two of three voters down (the active controller among them),
// metadata changes fail with a retriable error on the survivor; when they
// return nothing committed is lost and changes work again.
func TestClusterQuorumLoss(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "kept", 2, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("kept", 2)
	ctl := c.Controller()
	survivor, other := ctl%3+1, (ctl+1)%3+1
	c.Kill(ctl)
	c.Kill(other)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "refused", 1, 1
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	r, err := nodeClient(t, c.Broker(survivor)).SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	st := r.(*kmsg.CreateTopicsResponse).Topics[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err == nil || !kerr.IsRetriable(err) {
		t.Errorf("creation without a quorum: %v (%v), want a retriable error", err, st.ErrorMessage)
	}
	t.Logf("refused in %v: %v", time.Since(start).Round(time.Millisecond), kerr.ErrorForCode(st.ErrorCode))
	c.Restart(ctl)
	c.Restart(other)
	if err := createTopic(t, cl, "later", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("kept", 2)
	c.AwaitTopic("later", 1)
	if tp := c.Broker(survivor).topics.get("refused"); tp != nil {
		t.Error("the refused topic exists")
	}
}

// A transaction over partitions led by three different nodes: the
// coordinator writes the markers on each leader (WriteTxnMarkers), so a
// read_committed consumer sees the committed records and not the aborted
// ones.
func TestClusterTransactionAcrossLeaders(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "txn", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("txn", 3)
	leaders := map[int32]bool{}
	for p := int32(0); p < 3; p++ {
		leaders[c.Leader("txn", p)] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("partitions led by %v, want three nodes", leaders)
	}
	pcl := clusterClient(t, c, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, commit := range []bool{false, true} {
		if err := pcl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 3; p++ {
			v := []byte("aborted")
			if commit {
				v = []byte("committed")
			}
			if err := pcl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := pcl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	ccl := clusterClient(t, c, kgo.ConsumeTopics("txn"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]int{}
	for got["committed"] < 3 && ctx.Err() == nil {
		ccl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
	}
	if got["committed"] != 3 || got["aborted"] != 0 {
		t.Errorf("read_committed consumed %v, want the 3 committed records only", got)
	}
}

// AlterPartition from a partition's leader, on the active controller's
// CONTROLLER endpoint, shrinks the ISR that Metadata reports; a stale
// partition epoch is refused.
func TestClusterAlterPartition(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "isr", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("isr", 1)
	leader := c.Leader("isr", 0)
	md := metadataOf(t, c.Broker(leader), "isr")
	p := md.Topics[0].Partitions[0]
	var follower int32
	for _, r := range p.ISR {
		if r != leader {
			follower = r
		}
	}
	ctl := c.Controller()
	ctlClient, err := c.Broker(ctl).cluster.client(ctl)
	if err != nil {
		t.Fatal(err)
	}
	alter := func(partitionEpoch int32) *kmsg.AlterPartitionResponse {
		t.Helper()
		req := kmsg.NewPtrAlterPartitionRequest()
		req.BrokerID, req.BrokerEpoch = leader, c.Broker(leader).cluster.epoch.Load()
		rt := kmsg.NewAlterPartitionRequestTopic()
		rt.Topic, rt.TopicID = "isr", md.Topics[0].TopicID
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.LeaderEpoch, rp.PartitionEpoch = p.LeaderEpoch, partitionEpoch
		for _, r := range p.ISR {
			if r != follower {
				rp.NewISR = append(rp.NewISR, r)
				rp.NewEpochISR = append(rp.NewEpochISR, kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{BrokerID: r, BrokerEpoch: c.Broker(r).cluster.epoch.Load()})
			}
		}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := ctlClient.SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return r.(*kmsg.AlterPartitionResponse)
	}
	var epoch int32
	c.Broker(ctl).cluster.q.View(func(img *metadata.Image) { epoch = img.Topics["isr"].Partitions[0].PartitionEpoch })
	if code := alter(epoch + 5).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidUpdateVersion.Code {
		t.Errorf("stale partition epoch: code %d", code)
	}
	resp := alter(epoch)
	sp := resp.Topics[0].Partitions[0]
	if resp.ErrorCode != 0 || sp.ErrorCode != 0 || len(sp.ISR) != 2 || sp.PartitionEpoch != epoch+1 {
		t.Fatalf("shrink: %+v", resp)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if isr := metadataOf(t, c.Broker(leader), "isr").Topics[0].Partitions[0].ISR; len(isr) == 2 {
			return
		}
	}
	t.Error("Metadata never showed the shrunk ISR")
}

// A topic config altered through a node that is not the controller is
// recorded by the controller and reaches every node's logs.
func TestClusterTopicConfigs(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "conf", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("conf", 1)
	other := c.Controller()%3 + 1
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "conf"
	r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("60000")}}
	req.Resources = append(req.Resources, r)
	resp, err := nodeClient(t, c.Broker(other)).SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("alter through node %d: %v", other, kerr.ErrorForCode(code))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for id := int32(1); id <= 3; id++ {
			if c.Broker(id).topics.get("conf").configs["retention.ms"] == "60000" {
				n++
			}
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention.ms reached %d of 3 nodes", n)
		}
	}
}

// Preferred leader election through any node: once the preferred replica
// is back in the ISR (here by the leader's AlterPartition), ElectLeaders
// PREFERRED gives it the leadership again.
func TestClusterPreferredElection(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "pref", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("pref", 1)
	preferred := c.Leader("pref", 0)
	c.Stop(preferred)
	c.Restart(preferred)
	ctl := c.Controller()
	var p metadata.PartitionState
	var id [16]byte
	c.Broker(ctl).cluster.q.View(func(img *metadata.Image) {
		p, id = img.Topics["pref"].Partitions[0], img.Topics["pref"].ID
		p.ISR = slices.Clone(p.ISR)
	})
	if p.Leader == preferred || slices.Contains(p.ISR, preferred) {
		t.Fatalf("after the shutdown: %+v", p)
	}
	elect := func() int16 {
		t.Helper()
		req := kmsg.NewPtrElectLeadersRequest()
		req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "pref", Partitions: []int32{0}}}
		r, err := nodeClient(t, c.Broker(preferred)).SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return r.(*kmsg.ElectLeadersResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := elect(); code != kerr.PreferredLeaderNotAvailable.Code {
		t.Errorf("election with the preferred replica out of the ISR: code %d", code)
	}
	alterISR(t, c, "pref", id, p, p.Leader, append(slices.Clone(p.ISR), preferred))
	if code := elect(); code != 0 {
		t.Fatalf("preferred election: code %d", code)
	}
	if leader := c.Leader("pref", 0); leader != preferred {
		t.Errorf("leader %d after the election, want the preferred %d", leader, preferred)
	}
	if code := elect(); code != kerr.ElectionNotNeeded.Code {
		t.Errorf("second election: code %d", code)
	}
}

// Kill is a crash: the killed node's logs keep what was written but get no
// clean-shutdown marker, and its restart recovers them with the records.
func TestClusterKillIsACrash(t *testing.T) {
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	// RF 1: with replicas the restarted node would rightly follow the new
	// leader's log (acks=1 records may be lost), which is not what this
	// test checks.
	if err := createTopic(t, cl, "crash", 1, 1); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("crash", 1)
	victim := c.Leader("crash", 0)
	pcl := clusterClient(t, c, kgo.DefaultProduceTopic("crash"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for i := range 10 {
		if err := pcl.ProduceSync(context.Background(), &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := c.Broker(victim).topics.partitionDir("crash", 0)
	c.Kill(victim)
	if _, err := os.Stat(filepath.Join(dir, ".kafka_cleanshutdown")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the killed node's log has a clean-shutdown marker (err %v): it was closed, not crashed", err)
	}
	c.Restart(victim)
	if end := c.Broker(victim).topics.get("crash").partitions[0].log.EndOffset(); end != 10 {
		t.Errorf("after the crash and restart the log ends at %d, want the 10 records written", end)
	}
}

// alterISR sends the controller, as leader's AlterPartition, partition 0
// of topic with isr (each member at its current broker epoch) and fails
// the test unless the controller commits it.
func alterISR(t *testing.T, c *TestCluster, topic string, id [16]byte, p metadata.PartitionState, leader int32, isr []int32) {
	t.Helper()
	ap := kmsg.NewPtrAlterPartitionRequest()
	ap.BrokerID, ap.BrokerEpoch = leader, c.Broker(leader).cluster.epoch.Load()
	tp := kmsg.AlterPartitionRequestTopicPartition{LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}
	for _, m := range isr {
		tp.NewEpochISR = append(tp.NewEpochISR, kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{BrokerID: m, BrokerEpoch: c.Broker(m).cluster.epoch.Load()})
	}
	ap.Topics = []kmsg.AlterPartitionRequestTopic{{Topic: topic, TopicID: id, Partitions: []kmsg.AlterPartitionRequestTopicPartition{tp}}}
	ctl := c.Controller()
	cl, err := c.Broker(ctl).cluster.client(ctl)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cl.SeedBrokers()[0].Request(context.Background(), ap)
	if err != nil || r.(*kmsg.AlterPartitionResponse).Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AlterPartition of %s-0 to ISR %v: %v %+v", topic, isr, err, r)
	}
}
