package broker

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// The client's view of a cluster, from this node's image: brokers,
// controller, leaders, replicas, ISR, offline replicas and leader epochs;
// and the leadership checks of the partition requests.

// clusterBroker is a live broker's endpoint on one listener.
type clusterBroker struct {
	id   int32
	host string
	port int32
	rack *string
}

// liveBrokers are the registered, unfenced brokers, by id, with their
// endpoint on listener (their first one if they have no such listener:
// the CONTROLLER endpoint's requests come from other nodes).
func liveBrokers(img *metadata.Image, listener string) []clusterBroker {
	var out []clusterBroker
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		br := img.Brokers[id]
		if br.Fenced || len(br.Listeners) == 0 {
			continue
		}
		ep := br.Listeners[0]
		for _, l := range br.Listeners {
			if l.Name == listener {
				ep = l
			}
		}
		cb := clusterBroker{id: id, host: ep.Host, port: ep.Port}
		if br.Rack != "" {
			rack := br.Rack
			cb.rack = &rack
		}
		out = append(out, cb)
	}
	return out
}

// controllerID is the active controller's id, -1 while there is none.
func (c *cluster) controllerID() int32 {
	if id, ok := c.q.Controller(); ok {
		return id
	}
	return -1
}

func (c *cluster) handleMetadata(rc *reqCtx, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	b := c.b
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.ClusterID = &b.clusterID
	all := req.Topics == nil || (rc.version == 0 && len(req.Topics) == 0)
	autoCreate := b.cfg.AutoCreateTopics && (rc.version < 4 || req.AllowAutoTopicCreation)
	var create []string
	c.q.View(func(img *metadata.Image) {
		resp.ControllerID = c.metadataControllerID(img)
		for _, br := range liveBrokers(img, rc.listener) {
			resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
		}
		if all {
			for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
				resp.Topics = append(resp.Topics, topicFromImage(img, img.Topics[name]))
			}
			return
		}
		for _, rt := range req.Topics {
			var t *metadata.TopicImage
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			switch {
			case rt.Topic != nil && *rt.Topic != "":
				if t = img.Topics[*rt.Topic]; t == nil {
					mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
					if validateTopicName(*rt.Topic) != nil {
						mt.ErrorCode = kerr.InvalidTopicException.Code
					} else if autoCreate {
						create = append(create, *rt.Topic)
					}
				}
			default:
				if t = img.TopicsByID[rt.TopicID]; t == nil {
					mt.ErrorCode = kerr.UnknownTopicID.Code
				}
			}
			if t != nil {
				mt = topicFromImage(img, t)
			}
			resp.Topics = append(resp.Topics, mt)
		}
	})
	// As in Kafka, the request that triggers a creation is answered
	// UNKNOWN_TOPIC_OR_PARTITION; the client asks again.
	for _, name := range create {
		if _, err := b.topics.create(createSpec{name: name, partitions: -1, replicationFactor: -1}); err != nil && errorCode(err) != kerr.TopicAlreadyExists.Code {
			for i := range resp.Topics {
				if t := resp.Topics[i].Topic; t != nil && *t == name {
					resp.Topics[i].ErrorCode = errorCode(err)
				}
			}
		}
	}
	return resp, nil
}

// topicFromImage is a topic's Metadata entry.
func topicFromImage(img *metadata.Image, t *metadata.TopicImage) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID, mt.IsInternal = &name, t.ID, isInternalTopic(name)
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		mp := &mt.Partitions[i]
		mp.Default()
		mp.Partition, mp.Leader, mp.LeaderEpoch = int32(i), p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR, mp.OfflineReplicas = slices.Clone(p.Replicas), slices.Clone(p.ISR), []int32{}
		for _, r := range p.Replicas {
			if br := img.Brokers[r]; br == nil || br.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if p.Leader == metadata.NoLeader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
	}
	return mt
}

func (c *cluster) describeCluster(rc *reqCtx, resp *kmsg.DescribeClusterResponse) {
	resp.Brokers = nil
	c.q.View(func(img *metadata.Image) {
		resp.ControllerID = c.metadataControllerID(img)
		for _, br := range liveBrokers(img, rc.listener) {
			resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
		}
	})
}

// leadership is what a partition request needs to know of the image.
type leadership struct {
	code        int16 // 0: this broker leads at the epoch asked for
	leader      int32
	leaderEpoch int32
}

// checkLeader checks that this broker leads topic's partition and that
// the client's CurrentLeaderEpoch (-1: not checked) is the current one, as
// Kafka's Partition does: an older epoch is FENCED_LEADER_EPOCH, a newer
// one UNKNOWN_LEADER_EPOCH, another leader NOT_LEADER_OR_FOLLOWER.
func (c *cluster) checkLeader(topic string, partition, currentEpoch int32) leadership {
	l := leadership{code: kerr.UnknownTopicOrPartition.Code, leader: -1, leaderEpoch: -1}
	c.q.View(func(img *metadata.Image) {
		t := img.Topics[topic]
		if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
			return
		}
		p := t.Partitions[partition]
		l.leader, l.leaderEpoch = p.Leader, p.LeaderEpoch
		switch {
		case currentEpoch >= 0 && currentEpoch < p.LeaderEpoch:
			l.code = kerr.FencedLeaderEpoch.Code
		case currentEpoch > p.LeaderEpoch:
			l.code = kerr.UnknownLeaderEpoch.Code
		case p.Leader != c.b.nodeID:
			l.code = kerr.NotLeaderForPartition.Code
		default:
			l.code = 0
		}
	})
	return l
}

// leaderEndpoints are the KIP-951 NodeEndpoints of the leaders named in
// NOT_LEADER_OR_FOLLOWER answers.
func (c *cluster) leaderEndpoints(listener string, ids map[int32]bool) []clusterBroker {
	var out []clusterBroker
	c.q.View(func(img *metadata.Image) {
		for _, br := range liveBrokers(img, listener) {
			if ids[br.id] {
				out = append(out, br)
			}
		}
	})
	return out
}

// notLeader fills a partition answer's error code and KIP-951 current
// leader when this broker may not serve it (see checkLeader).
func (c *cluster) notLeader(topic string, partition, currentEpoch int32, code *int16, leader, leaderEpoch *int32) bool {
	l := c.checkLeader(topic, partition, currentEpoch)
	if l.code == 0 {
		return false
	}
	*code, *leader, *leaderEpoch = l.code, l.leader, l.leaderEpoch
	return true
}

// leadersNamed are the leaders that NOT_LEADER_OR_FOLLOWER answers point
// to.
func (c *cluster) leadersNamed(rc *reqCtx, each func(yield func(code int16, leader int32))) []clusterBroker {
	ids := map[int32]bool{}
	each(func(code int16, leader int32) {
		if code == kerr.NotLeaderForPartition.Code && leader >= 0 {
			ids[leader] = true
		}
	})
	if len(ids) == 0 {
		return nil
	}
	return c.leaderEndpoints(rc.listener, ids)
}

// produceEndpoints adds the KIP-951 NodeEndpoints of a Produce response.
func (c *cluster) produceEndpoints(rc *reqCtx, resp *kmsg.ProduceResponse) {
	for _, br := range c.leadersNamed(rc, func(yield func(int16, int32)) {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				yield(p.ErrorCode, p.CurrentLeader.LeaderID)
			}
		}
	}) {
		resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
	}
}

// fetchEndpoints adds the KIP-951 NodeEndpoints of a Fetch response.
func (c *cluster) fetchEndpoints(rc *reqCtx, resp *kmsg.FetchResponse) {
	for _, br := range c.leadersNamed(rc, func(yield func(int16, int32)) {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				yield(p.ErrorCode, p.CurrentLeader.LeaderID)
			}
		}
	}) {
		resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
	}
}

// describeControllers is DescribeCluster on the CONTROLLER listener: the
// voters at their controller.quorum.voters endpoints, and the active
// controller's id (-1 while there is none).
func (c *cluster) describeControllers(resp *kmsg.DescribeClusterResponse) {
	resp.ControllerID = -1
	leader, ok := c.q.Controller()
	for _, id := range c.voterIDs() {
		host, port, valid := c.voterEndpoint(id)
		if !valid {
			continue
		}
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: id, Host: host, Port: port})
		if ok && id == leader {
			resp.ControllerID = id
		}
	}
}
