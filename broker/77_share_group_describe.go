package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareGroupDescribe: v1, the stable version of Kafka 4.1+.
var shareGroupDescribeVersions = versions{1, 1}

func (b *Broker) handleShareGroupDescribe(rc *reqCtx, req *kmsg.ShareGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	for _, id := range req.GroupIDs {
		g := kmsg.NewShareGroupDescribeResponseGroup()
		g.GroupID = id
		if e := b.shareCoordinatorError(id); e != nil {
			g.ErrorCode = e.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		gi, ok := b.shareCoord.Describe(id)
		if !ok {
			g.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + id + " not found."
			if b.isClassicGroup(rc, id) {
				msg = "Group " + id + " is not a share group."
			}
			g.ErrorMessage = &msg
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.GroupState, g.GroupEpoch, g.AssignmentEpoch, g.Assignor = gi.State, gi.Epoch, gi.AssignmentEpoch, "simple"
		for _, m := range gi.Members {
			dm := kmsg.NewShareGroupDescribeResponseGroupMember()
			dm.MemberID, dm.RackID, dm.MemberEpoch = m.ID, m.Rack, m.Epoch
			dm.ClientID, dm.ClientHost, dm.SubscribedTopicNames = m.ClientID, m.ClientHost, m.Topics
			for tid, parts := range m.Assignment {
				tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
				tp.TopicID, tp.Partitions = tid, parts
				if t := b.topics.getByID(tid); t != nil {
					tp.Topic = t.name
				}
				dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, tp)
			}
			g.Members = append(g.Members, dm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
