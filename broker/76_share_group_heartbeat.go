package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/share"
)

// ShareGroupHeartbeat: v1, the stable version of Kafka 4.1+ (v0 was 4.0's
// early access and is gone from Kafka 4.1).
var shareGroupHeartbeatVersions = versions{1, 1}

func (b *Broker) handleShareGroupHeartbeat(rc *reqCtx, req *kmsg.ShareGroupHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(e *kerr.Error, msg string) (kmsg.Response, error) {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp, nil
	}
	switch {
	case req.GroupID == "":
		return fail(kerr.InvalidRequest, "GroupId can't be empty.")
	case req.MemberID == "":
		return fail(kerr.InvalidRequest, "MemberId can't be empty.")
	case len(req.MemberID) > 36:
		return fail(kerr.InvalidRequest, "MemberId can't be longer than 36 characters.")
	case req.MemberEpoch < -1:
		return fail(kerr.InvalidRequest, "MemberEpoch is invalid.")
	}
	if e := b.shareCoordinatorError(req.GroupID); e != nil {
		return fail(e, "")
	}
	if req.MemberEpoch == 0 && !b.shareCoord.IsGroup(req.GroupID) && b.isClassicGroup(rc, req.GroupID) {
		// A group id names one kind of group, as in Kafka.
		return fail(kerr.GroupIDNotFound, "Group "+req.GroupID+" is not a share group.")
	}
	res, gc := b.shareCoord.Heartbeat(share.HeartbeatRequest{
		Group: req.GroupID, Member: req.MemberID, Epoch: req.MemberEpoch, Rack: req.RackID,
		Topics: req.SubscribedTopicNames, ClientID: rc.clientID, ClientHost: "/" + rc.host,
	}, b.shareTopicInfo, time.Now())
	if res.Err != nil {
		return fail(res.Err, res.Message)
	}
	resp.MemberID = &req.MemberID
	resp.MemberEpoch = res.Epoch
	resp.HeartbeatIntervalMillis = int32(gc.HeartbeatInterval / time.Millisecond)
	if res.Assignment != nil {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		for id, parts := range res.Assignment {
			if err := b.initSharePartitions(req.GroupID, id, parts); err != nil {
				return fail(kerr.CoordinatorNotAvailable, "")
			}
			tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = id, parts
			a.TopicPartitions = append(a.TopicPartitions, tp)
		}
		resp.Assignment = &a
	}
	return resp, nil
}

// initSharePartitions gives the assigned partitions their start offsets
// (share.auto.offset.reset) when the group has none yet: Kafka initializes
// a share-partition when it is first assigned, so records produced between
// the assignment and the first fetch are not skipped under "latest". On a
// cluster the coordinator does so for the partitions it leads, whose log
// it can trust; the others' leaders initialize them at their first fetch.
func (b *Broker) initSharePartitions(group string, id [16]byte, parts []int32) error {
	for _, idx := range parts {
		t, p := b.sharePartition(id, idx)
		if p == nil || (b.cluster != nil && b.cluster.partitionLeader(t.name, idx) != b.nodeID) {
			continue
		}
		if err := b.shareCoord.Initialize(share.Key{Group: group, Topic: id, Partition: idx}, func() int64 { return b.shareStartOffset(group, p) }); err != nil {
			return err
		}
	}
	return nil
}

// isClassicGroup reports whether the classic coordinator knows group.
func (b *Broker) isClassicGroup(rc *reqCtx, group string) bool {
	req := kmsg.NewPtrListGroupsRequest()
	resp, err := b.coord.groups.ListGroups(rc.ctx, req)
	if err != nil {
		return false
	}
	for _, g := range resp.Groups {
		if g.Group == group {
			return true
		}
	}
	return false
}
