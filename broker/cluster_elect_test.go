package broker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// ElectLeaders UNCLEAN through a node that is not the controller: a
// partition with a leader needs none; one left without a leader (its only
// ISR member stopped, unclean.leader.election.enable false) gets the live
// replica outside its ISR as leader and sole ISR member, on every node's
// image.
func TestClusterUncleanElection(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	ctl := c.Controller()
	var a, b int32 // a leads with b as the other replica; neither is the controller
	for id := int32(1); id <= 3; id++ {
		if id != ctl {
			if a == 0 {
				a = id
			} else {
				b = id
			}
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "u", -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{a, b}}}
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(context.Background(), cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("creating u: %v %+v", err, resp)
	}
	c.AwaitTopic("u", 1)
	elect := func(via int32, typ int8) *kmsg.ElectLeadersResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType = typ
		req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "u", Partitions: []int32{0}}}
		r, err := nodeClient(t, c.Broker(via)).SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*kmsg.ElectLeadersResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("ElectLeaders: top-level code %d", resp.ErrorCode)
		}
		return &resp.Topics[0].Partitions[0]
	}
	if p := elect(b, 1); p.ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Errorf("unclean election of a partition with a leader: code %d", p.ErrorCode)
	}
	// The ISR shrinks to the leader (what its AlterPartition does when
	// the follower lags), then the leader stops: the partition is offline.
	if _, err := c.Broker(ctl).cluster.decide(context.Background(), func(img *metadata.Image) ([]metadata.Record, error) {
		tp := img.Topics["u"]
		return []metadata.Record{(&metadata.PartitionChange{TopicID: tp.ID, Partition: 0, Leader: metadata.NoLeaderChange}).SetISR([]int32{a})}, nil
	}); err != nil {
		t.Fatal(err)
	}
	c.Stop(a)
	if leader := c.Leader("u", 0); leader != metadata.NoLeader {
		t.Fatalf("leader %d after the only ISR member stopped, want none (unclean.leader.election.enable is false)", leader)
	}
	if p := elect(b, 0); p.ErrorCode != kerr.PreferredLeaderNotAvailable.Code {
		t.Errorf("preferred election of the offline partition: code %d", p.ErrorCode)
	}
	if p := elect(b, 1); p.ErrorCode != 0 {
		t.Fatalf("unclean election: code %d %v", p.ErrorCode, p.ErrorMessage)
	}
	c.await("the unclean leader on every node", func(*Broker) bool {
		for _, id := range []int32{b, ctl} {
			ok := false
			c.Broker(id).cluster.q.View(func(img *metadata.Image) {
				p := img.Topics["u"].Partitions[0]
				ok = p.Leader == b && len(p.ISR) == 1 && p.ISR[0] == b
			})
			if !ok {
				return false
			}
		}
		return true
	})
	if p := elect(ctl, 1); p.ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Errorf("second unclean election: code %d", p.ErrorCode)
	}
}

// Dynamic broker configs on a cluster go through the controller into the
// metadata image and apply on every node: the cluster default on all,
// a broker's own only on it (set through another node), and both survive
// a restart (from the metadata log).
func TestClusterDynamicBrokerConfigs(t *testing.T) {
	c := steadyCluster(t)
	ctl := c.Controller()
	via := ctl%3 + 1 // not the controller: the request is forwarded
	other := via%3 + 1
	alter := func(resource string, key, value string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBroker, resource
		r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr(value)}}
		req.Resources = append(req.Resources, r)
		resp, err := nodeClient(t, c.Broker(via)).SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if rr := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; rr.ErrorCode != 0 {
			t.Fatalf("setting %s=%s on broker %q: code %d %v", key, value, resource, rr.ErrorCode, rr.ErrorMessage)
		}
	}
	alter("", "log.retention.ms", "123456")
	alter(strconv.Itoa(int(other)), "message.max.bytes", "2000000")
	check := func() {
		t.Helper()
		c.await("the dynamic configs on every node", func(*Broker) bool {
			for id := int32(1); id <= 3; id++ {
				cfg := c.Broker(id).conf()
				wantMax := int64(1048588)
				if id == other {
					wantMax = 2000000
				}
				if cfg.RetentionMs == nil || *cfg.RetentionMs != 123456 || cfg.MessageMaxBytes != wantMax {
					return false
				}
			}
			return true
		})
	}
	check()
	c.Stop(other)
	c.Restart(other)
	check()

	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.dirs", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("/x")}}
	req.Resources = append(req.Resources, r)
	resp, err := nodeClient(t, c.Broker(via)).SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("a static key: code %d, want INVALID_REQUEST", code)
	}
}

// AlterPartitionReassignments on a cluster through a node that is not the
// controller: the image shows the reassignment (ListPartitionReassignments
// on every node) until the leader's AlterPartition puts the new replica in
// the ISR, which completes it: the removed replica, which led, gives the
// leadership to a target replica at a new leader epoch.
func TestClusterPartitionReassignment(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	ctl := c.Controller()
	a, b := ctl%3+1, (ctl+1)%3+1 // a leads [a b]; the target is [b ctl]
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "ra", -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{a, b}}}
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(context.Background(), cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("creating ra: %v %+v", err, resp)
	}
	c.AwaitTopic("ra", 1)
	reassign := func(replicas []int32) kmsg.AlterPartitionAssignmentsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "ra", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: replicas}}}}
		r, err := nodeClient(t, c.Broker(a)).SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*kmsg.AlterPartitionAssignmentsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("AlterPartitionReassignments: top-level code %d", resp.ErrorCode)
		}
		return resp.Topics[0].Partitions[0]
	}
	list := func(id int32) []kmsg.ListPartitionReassignmentsResponseTopic {
		t.Helper()
		r, err := nodeClient(t, c.Broker(id)).SeedBrokers()[0].Request(context.Background(), kmsg.NewPtrListPartitionReassignmentsRequest())
		if err != nil {
			t.Fatal(err)
		}
		return r.(*kmsg.ListPartitionReassignmentsResponse).Topics
	}
	if p := reassign(nil); p.ErrorCode != kerr.NoReassignmentInProgress.Code || p.ErrorMessage != nil {
		t.Errorf("cancel without a reassignment: code %d message %v", p.ErrorCode, p.ErrorMessage)
	}
	if p := reassign([]int32{b, 9}); p.ErrorCode != kerr.InvalidReplicaAssignment.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "broker 9") {
		t.Errorf("an unregistered broker: code %d message %v", p.ErrorCode, p.ErrorMessage)
	}
	if p := reassign([]int32{b, ctl}); p.ErrorCode != 0 {
		t.Fatalf("reassignment: code %d %v", p.ErrorCode, p.ErrorMessage)
	}
	c.await("the reassignment listed on every node", func(*Broker) bool {
		for id := int32(1); id <= 3; id++ {
			l := list(id)
			if len(l) != 1 || len(l[0].Partitions) != 1 {
				return false
			}
			p := l[0].Partitions[0]
			if !slices.Equal(p.Replicas, []int32{b, ctl, a}) || !slices.Equal(p.AddingReplicas, []int32{ctl}) || !slices.Equal(p.RemovingReplicas, []int32{a}) {
				t.Fatalf("node %d lists %+v", id, p)
			}
		}
		return true
	})

	// The leader reports the new replica caught up.
	var p metadata.PartitionState
	var id [16]byte
	c.Broker(ctl).cluster.q.View(func(img *metadata.Image) {
		p, id = img.Topics["ra"].Partitions[0], img.Topics["ra"].ID
	})
	alterISR(t, c, "ra", id, p, a, []int32{a, b, ctl})
	c.await("the completed reassignment on every node", func(*Broker) bool {
		for n := int32(1); n <= 3; n++ {
			if len(list(n)) != 0 {
				return false
			}
			mp := metadataOf(t, c.Broker(n), "ra").Topics[0].Partitions[0]
			if !slices.Equal(mp.Replicas, []int32{b, ctl}) || !slices.Equal(mp.ISR, []int32{b, ctl}) || mp.Leader != b || mp.LeaderEpoch != p.LeaderEpoch+1 {
				return false
			}
		}
		return true
	})
}

// A broker-only node (process.roles=broker) joins three combined nodes: it
// is not a voter but the quorum's observer, registers and is unfenced once
// it follows the metadata log, leads its share of a new topic's
// partitions, serves produce and fetch for them, and keeps its image when
// the active controller changes.
func TestClusterBrokerOnlyNode(t *testing.T) {
	c := steadyCluster(t)
	c.AddBroker(4)
	c.AwaitLive(4)
	ctl := c.Broker(c.Controller())
	observers, err := ctl.cluster.q.Observers()
	if err != nil || !slices.Equal(observers, []int32{4}) {
		t.Fatalf("the quorum's observers: %v %v, want [4]", observers, err)
	}
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "b4", 8, 2); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("b4", 8)
	led := 0
	for p := int32(0); p < 8; p++ {
		if c.Leader("b4", p) == 4 {
			led++
		}
	}
	if led == 0 {
		t.Fatal("the broker-only node leads none of 8 partitions")
	}
	pcl := clusterClient(t, c, kgo.DefaultProduceTopic("b4"))
	for i := range 16 {
		if err := pcl.ProduceSync(context.Background(), &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ccl := clusterClient(t, c, kgo.ConsumeTopics("b4"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for got := 0; got < 16; {
		fs := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 16 records", got)
		}
		got += fs.NumRecords()
	}
	// A new controller keeps replicating to the observer.
	old := ctl.nodeID
	c.Stop(old)
	if err := createTopic(t, cl, "after", 1, 1); err != nil {
		t.Fatal(err)
	}
	c.await("the new topic on the broker-only node", func(*Broker) bool { return c.Broker(4).topics.get("after") != nil })
}
