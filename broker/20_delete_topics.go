package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v0-6. v5 adds error messages, v6 deletion by topic id.
var deleteTopicsVersions = versions{0, 6}

func (b *Broker) handleDeleteTopics(rc *reqCtx, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if rc.version < 6 {
		targets = nil
		for _, name := range req.TopicNames {
			n := name
			targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: &n})
		}
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var name string
		switch {
		case rt.Topic != nil:
			name = *rt.Topic
			if t := b.topics.get(name); t != nil {
				st.TopicID = t.id
			}
		default:
			t := b.topics.getByID(rt.TopicID)
			if t == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name = t.name
			st.Topic = &name
		}
		if !b.cfg.DeleteTopicEnable {
			st.ErrorCode = kerr.TopicDeletionDisabled.Code
			msg := "Topic deletion is disabled."
			st.ErrorMessage = &msg
		} else if err := b.topics.delete(name); err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
