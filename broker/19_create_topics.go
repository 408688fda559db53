package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics: v0-7. v1 validate-only and error messages, v4 defaults for
// partitions/replication (-1), v5 returns the topic's configs, v7 topic ids.
var createTopicsVersions = versions{0, 7}

func (b *Broker) handleCreateTopics(rc *reqCtx, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			// Kafka refuses every copy of a topic named twice in one request.
			st.ErrorCode = kerr.InvalidRequest.Code
			msg := "Create topics request from client `" + rc.clientID + "` contains multiple entries for the following topics: " + rt.Topic
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		spec := createSpec{
			name:              rt.Topic,
			partitions:        rt.NumPartitions,
			replicationFactor: rt.ReplicationFactor,
			validateOnly:      req.ValidateOnly,
			configs:           map[string]string{},
			// Another node's broker creating a coordinator's topic.
			internal: rc.listener == controllerListener && isInternalTopic(rt.Topic),
		}
		if len(rt.ReplicaAssignment) > 0 {
			for _, a := range rt.ReplicaAssignment {
				spec.assignment = append(spec.assignment, replicaAssignment{partition: a.Partition, replicas: a.Replicas})
			}
		}
		for _, c := range rt.Configs {
			if c.Value != nil {
				spec.configs[c.Name] = *c.Value
			}
		}
		t, err := b.topics.create(spec)
		if err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
			st.NumPartitions, st.ReplicationFactor = -1, -1
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.id
		st.NumPartitions = int32(len(t.partitions))
		st.ReplicationFactor = 1
		for _, d := range b.describeTopicConfigs(t.configs, nil, false, false) {
			st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{
				Name: d.Name, Value: d.Value, ReadOnly: d.ReadOnly, Source: int8(d.Source), IsSensitive: d.IsSensitive,
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
