package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: v0-3 (v2+ flexible). Partitions only grow, as in Kafka.
var createPartitionsVersions = versions{0, 3}

func (b *Broker) handleCreatePartitions(rc *reqCtx, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if err := b.topics.grow(rt.Topic, rt.Count, req.ValidateOnly); err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
