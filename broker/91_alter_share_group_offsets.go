package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/share"
)

// AlterShareGroupOffsets: v0 (KIP-932).
var alterShareGroupOffsetsVersions = versions{0, 0}

// handleAlterShareGroupOffsets sets share-partition start offsets, as
// kafka-share-groups.sh --reset-offsets does: only while the group has no
// members (NON_EMPTY_GROUP otherwise); a group that does not exist yet is
// created with them, so consumers start where the operator said.
func (b *Broker) handleAlterShareGroupOffsets(rc *reqCtx, req *kmsg.AlterShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	if req.GroupID == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if e := b.shareCoordinatorError(req.GroupID); e != nil {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	if gi, ok := b.shareCoord.Describe(req.GroupID); ok && len(gi.Members) > 0 {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp, nil
	} else if !ok && b.isClassicGroup(rc, req.GroupID) {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + req.GroupID + " is not a share group."
		resp.ErrorMessage = &msg
		return resp, nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		if t != nil {
			st.TopicID = t.id
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.StartOffset < 0:
				sp.ErrorCode = kerr.InvalidRequest.Code
			default:
				if e := b.shareCoord.AlterOffsets(share.Key{Group: req.GroupID, Topic: t.id, Partition: rp.Partition}, rp.StartOffset); e != nil {
					sp.ErrorCode = e.Code
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
