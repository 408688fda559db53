package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteShareGroupOffsets: v0 (KIP-932).
var deleteShareGroupOffsetsVersions = versions{0, 0}

// handleDeleteShareGroupOffsets drops a group's state for whole topics
// (kafka-share-groups.sh --delete-offsets): the group must exist and have
// no members.
func (b *Broker) handleDeleteShareGroupOffsets(rc *reqCtx, req *kmsg.DeleteShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	if e := b.shareCoordinatorError(req.GroupID); e != nil {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	gi, ok := b.shareCoord.Describe(req.GroupID)
	switch {
	case !ok:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	case len(gi.Members) > 0:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp, nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		if t == nil {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.id
		if e := b.shareCoord.DeleteOffsets(req.GroupID, t.id); e != nil {
			st.ErrorCode = e.Code
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
