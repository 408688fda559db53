package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

func unregisterReq(id int32) *kmsg.UnregisterBrokerRequest {
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = id
	return req
}

// brokerEpochOn is broker id's epoch in node b's image, 0 if it is not
// registered there.
func brokerEpochOn(b *Broker, id int32) int64 {
	var epoch int64
	b.cluster.q.View(func(img *metadata.Image) {
		if br := img.Brokers[id]; br != nil {
			epoch = br.Epoch
		}
	})
	return epoch
}

// kafka-cluster.sh unregister: the active controller removes a
// registration, sent through any broker (forwarded) or to it; its
// leaderships move first. A live broker, unregistered as Kafka allows,
// registers again with a new epoch; a killed one is gone from every
// image and from the quorum's observers. An unknown id is
// BROKER_ID_NOT_REGISTERED; a standby controller answers NOT_CONTROLLER.
func TestClusterUnregisterBroker(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.AddBroker(4)
	cl := clusterClient(t, c)
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "on-4", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Replicas = []int32{4, 1}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	create.Topics = append(create.Topics, rt)
	if r, err := create.RequestWith(context.Background(), cl); err != nil || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, r)
	}
	c.AwaitTopic("on-4", 1)
	if l := c.Leader("on-4", 0); l != 4 {
		t.Fatalf("leader of on-4-0: %d, want 4", l)
	}

	ctl := c.Controller()
	other := ctl%3 + 1
	oldEpoch := brokerEpochOn(c.Broker(ctl), 4)
	if r := ask[*kmsg.UnregisterBrokerResponse](t, nodeClient(t, c.Broker(other)), unregisterReq(4)); r.ErrorCode != 0 {
		t.Fatalf("unregister live broker 4 through broker %d: %+v", other, r)
	}
	if l := c.Leader("on-4", 0); l != 1 {
		t.Errorf("leader of on-4-0 after broker 4's unregistration: %d, want 1", l)
	}
	c.await("broker 4 registered again", func(b *Broker) bool {
		return b.cluster.q.IsController() && brokerEpochOn(b, 4) > oldEpoch && c.Broker(4).cluster.epoch.Load() == brokerEpochOn(b, 4) && !c.Broker(4).cluster.fencedHere()
	})
	cl4 := clusterClient(t, c)
	describeQuorumUntil(t, cl4, "broker 4 an observer again", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		return slices.Equal(replicaIDs(p.Observers), []int32{4}) && p.Observers[0].LogEndOffset == leaderEnd(p)
	})

	c.Kill(4)
	c.AwaitLive(3)
	if r := ask[*kmsg.UnregisterBrokerResponse](t, nodeClient(t, c.Broker(ctl)), unregisterReq(4)); r.ErrorCode != 0 {
		t.Fatalf("unregister killed broker 4: %+v", r)
	}
	c.await("broker 4 gone from every image", func(*Broker) bool {
		for id := int32(1); id <= 3; id++ {
			if brokerEpochOn(c.Broker(id), 4) != 0 {
				return false
			}
		}
		return true
	})
	describeQuorumUntil(t, cl, "no observer", func(p kmsg.DescribeQuorumResponseTopicPartition) bool { return len(p.Observers) == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []int32{4, 99} {
		if r, err := unregisterReq(id).RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.BrokerIDNotRegistered.Code {
			t.Errorf("unregister broker %d again: %v %+v, want BROKER_ID_NOT_REGISTERED", id, err, r)
		}
	}
	ctl = c.Controller()
	standby := ctl%3 + 1
	if r := ask[*kmsg.UnregisterBrokerResponse](t, seedClient(t, c.Broker(standby).cluster.voters[standby]), unregisterReq(1)); r.ErrorCode != kerr.NotController.Code {
		t.Errorf("unregister on standby controller %d's CONTROLLER listener: %+v, want NOT_CONTROLLER", standby, r)
	}
	if brokerEpochOn(c.Broker(ctl), 1) == 0 {
		t.Error("broker 1 unregistered by a standby controller")
	}
}
