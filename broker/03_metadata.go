package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-13. v1 makes a null topic list mean "all" (v0: empty means
// all), v4 adds AllowAutoTopicCreation, v10 topic ids, v12 lookup by id,
// v13 a top-level error code.
var metadataVersions = versions{0, 13}

func (b *Broker) handleMetadata(rc *reqCtx, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	if b.cluster != nil {
		return b.cluster.handleMetadata(rc, req)
	}
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := b.endpoint(rc.listener)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: b.nodeID, Host: host, Port: port}}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.nodeID

	if req.Topics == nil || (rc.version == 0 && len(req.Topics) == 0) {
		for _, t := range b.topics.all() {
			resp.Topics = append(resp.Topics, b.topicMetadata(t))
		}
		return resp, nil
	}
	autoCreate := b.cfg.AutoCreateTopics && (rc.version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topic
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			t = b.topics.get(*rt.Topic)
			if t == nil && autoCreate {
				// The request that triggers the creation is answered
				// without partitions and LEADER_NOT_AVAILABLE, as Kafka
				// answers when the topic was created before the response
				// (its synchronous path, AutoTopicCreationManager's
				// createTopicsInZk): the creation here is synchronous too.
				// KRaft answers UNKNOWN_TOPIC_OR_PARTITION only because its
				// controller has not created the topic yet. Both are
				// retriable, but "unknown" tells a group leader (kafka-go,
				// Java) the topic does not exist, so it settles on an empty
				// assignment and never sees the partitions made for it.
				created, err := b.topics.create(createSpec{name: *rt.Topic, partitions: -1, replicationFactor: -1})
				if created != nil || errorCode(err) != kerr.TopicAlreadyExists.Code {
					mt := kmsg.NewMetadataResponseTopic()
					mt.Topic = rt.Topic
					mt.ErrorCode = kerr.LeaderNotAvailable.Code
					if err != nil {
						mt.ErrorCode = errorCode(err)
					}
					resp.Topics = append(resp.Topics, mt)
					continue
				}
				t = b.topics.get(*rt.Topic) // lost a creation race
			}
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if validateTopicName(*rt.Topic) != nil {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		default:
			t = b.topics.getByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	return resp, nil
}

func (b *Broker) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = t.internal
	// Every partition shares the same replica lists and the slice is sized
	// once: at 10,000 partitions the growth copies and the per-partition
	// allocations were most of the handler's CPU.
	replicas, offline := []int32{b.nodeID}, []int32{}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.partitions))
	for i := range mt.Partitions {
		p := &mt.Partitions[i]
		p.Default()
		p.Partition = int32(i)
		p.Leader = b.nodeID
		p.LeaderEpoch = 0
		p.Replicas = replicas
		p.ISR = replicas
		p.OfflineReplicas = offline
	}
	return mt
}
