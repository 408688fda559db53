package broker

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's production layout: three controller-only nodes run the quorum,
// three broker-only nodes register with it. Clients see the three brokers
// only (the controller id they are given is one of them), produce to and
// consume from an RF 3 topic; a controller-only node serves only the
// controller's APIs and keeps no partition; kill -9 of the active
// controller elects another among the controllers and topic creation
// works again, as it does after the active controller's shutdown.
func TestClusterControllerOnlyNodes(t *testing.T) {
	c := NewTestClusterSplit(t, 3, 3)
	brokers := []int32{4, 5, 6}
	cl := clusterClient(t, c, kgo.DefaultProduceTopic("split"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := createTopic(t, cl, "split", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("split", 3)

	for _, id := range brokers {
		md := metadataOf(t, c.Broker(id), "split")
		var ids []int32
		for _, b := range md.Brokers {
			ids = append(ids, b.NodeID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, brokers) || !slices.Contains(brokers, md.ControllerID) {
			t.Errorf("broker %d's Metadata: brokers %v, controller %d; want brokers %v and one of them as controller", id, ids, md.ControllerID, brokers)
		}
		for _, p := range md.Topics[0].Partitions {
			if len(p.Replicas) != 3 || len(p.ISR) != 3 || !slices.Contains(brokers, p.Leader) {
				t.Errorf("partition %d: leader %d replicas %v ISR %v", p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
	}

	for p := int32(0); p < 3; p++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Value: []byte{byte(p)}}).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", p, err)
		}
	}
	// A group: its __consumer_offsets is created through the controller
	// like any topic (kgo's producer above got its producer id from it).
	consumer := clusterClient(t, c, kgo.ConsumeTopics("split"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumerGroup("split-group"), kgo.DisableAutoCommit())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	got := 0
	for got < 3 && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(*kgo.Record) { got++ })
	}
	if got != 3 {
		t.Errorf("consumed %d of 3", got)
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Errorf("group commit: %v", err)
	}
	cancel()

	// A controller's endpoint: the controller's APIs only, as Kafka's
	// controller listener; its log dir holds the metadata log, no topic.
	ctl := c.Controller()
	if ctl > 3 {
		t.Fatalf("active controller %d is a broker-only node", ctl)
	}
	direct := nodeClient(t, c.Broker(ctl))
	vresp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[int16]bool{}
	for _, k := range vresp.ApiKeys {
		keys[k.ApiKey] = true
	}
	if !keys[int16(kmsg.BrokerRegistration)] || !keys[int16(kmsg.CreateTopics)] || keys[int16(kmsg.Produce)] || keys[int16(kmsg.Metadata)] || keys[int16(kmsg.FindCoordinator)] {
		t.Errorf("the controller's ApiVersions: %v", vresp.ApiKeys)
	}
	mctx, mcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if _, err := direct.SeedBrokers()[0].Request(mctx, kmsg.NewPtrMetadataRequest()); err == nil {
		t.Error("a controller-only node answered Metadata")
	}
	mcancel()
	for id := int32(1); id <= 3; id++ {
		if c.Broker(id).topics.get("split") != nil {
			t.Errorf("controller %d opened the topic's logs", id)
		}
		checkControllerDir(t, c.cfgs[id].DataDir)
	}

	// A controller that is not the active one answers NOT_CONTROLLER; it
	// does not forward.
	standby := ctl%3 + 1
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "via-standby", 1, 1
	req.Topics = append(req.Topics, rt)
	// Straight to the node: kgo would ask Metadata for the controller.
	if resp, err := nodeClient(t, c.Broker(standby)).SeedBrokers()[0].Request(context.Background(), req); err != nil || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != kerr.NotController.Code {
		t.Errorf("CreateTopics on standby controller %d: %v %+v, want NOT_CONTROLLER", standby, err, resp)
	}

	// Topic configs go through the controller-only node's image.
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "split"
	res.Configs = append(res.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("3600000")})
	alter.Resources = append(alter.Resources, res)
	if resp, err := alter.RequestWith(context.Background(), nodeClient(t, c.Broker(4))); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter topic configs: %v %+v", err, resp)
	}
	c.await("retention.ms on broker 5", func(*Broker) bool {
		tp := c.Broker(5).topics.get("split")
		return tp != nil && tp.configs["retention.ms"] == "3600000"
	})

	killed := time.Now()
	c.Kill(ctl)
	next := c.Controller()
	if next == ctl || next > 3 {
		t.Fatalf("controller after the kill of %d: %d", ctl, next)
	}
	if err := createTopic(t, cl, "after-kill", 3, 3); err != nil {
		t.Fatalf("create after the controller's kill: %v", err)
	}
	t.Logf("topic created %v after kill -9 of controller %d; controller now %d", time.Since(killed).Round(time.Millisecond), ctl, next)
	c.AwaitTopic("after-kill", 3)
	c.AwaitLive(3) // the brokers' sessions went on with the new controller
	c.Restart(ctl)
	if err := createTopic(t, cl, "after-restart", 1, 3); err != nil {
		t.Fatalf("create after the controller's restart: %v", err)
	}

	// SIGTERM of the active controller: it hands the quorum over.
	stopped := c.Controller()
	c.Stop(stopped)
	if next := c.Controller(); next == stopped || next > 3 {
		t.Fatalf("controller after the shutdown of %d: %d", stopped, next)
	}
	if err := createTopic(t, cl, "after-stop", 1, 3); err != nil {
		t.Fatalf("create after the controller's shutdown: %v", err)
	}
}

// checkControllerDir checks that a controller-only node's log dir holds
// what a Kafka controller's does: meta.properties and the metadata log.
func checkControllerDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{".lock", "__cluster_metadata-0", "meta.properties"}; !slices.Equal(names, want) {
		t.Errorf("controller log dir %s holds %v, want %v", dir, names, want)
	}
}

// One controller-only node is a quorum of one, and its brokers a cluster.
func TestClusterSingleControllerOnlyNode(t *testing.T) {
	c := NewTestClusterSplit(t, 1, 2)
	cl := clusterClient(t, c, kgo.DefaultProduceTopic("one-controller"))
	if err := createTopic(t, cl, "one-controller", 2, 2); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("one-controller", 2)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if md := metadataOf(t, c.Broker(2), "one-controller"); len(md.Brokers) != 2 || md.ControllerID == 1 {
		t.Errorf("Metadata: %d brokers, controller %d", len(md.Brokers), md.ControllerID)
	}
	checkControllerDir(t, c.cfgs[1].DataDir)

	// No group or transaction coordinator on the controller: it has no
	// logs for them and serves none of their APIs. A topic deletion it
	// decides has no coordinator's offsets to drop there.
	if ctl := c.Broker(1); ctl.coord.groups != nil || ctl.coord.txns != nil {
		t.Errorf("controller-only node runs coordinators: groups %v, transactions %v", ctl.coord.groups != nil, ctl.coord.txns != nil)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("one-controller")
	del.Topics = append(del.Topics, dt)
	if r := ask[*kmsg.DeleteTopicsResponse](t, seedClient(t, c.Broker(1).Addr()), del); len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
		t.Errorf("DeleteTopics on the controller-only node: %+v", r)
	}
}
