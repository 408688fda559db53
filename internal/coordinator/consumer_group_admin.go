package coordinator

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe handles a ConsumerGroupDescribe request: the
// group's epochs, assignor and each member's subscription, current and
// target assignment. A classic group is GROUP_ID_NOT_FOUND here, as in
// Kafka.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) (*kmsg.ConsumerGroupDescribeResponse, error) {
	return call(ctx, c, func() *kmsg.ConsumerGroupDescribeResponse {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
		for _, id := range req.Groups {
			resp.Groups = append(resp.Groups, c.describeConsumerGroup(id, req.IncludeAuthorizedOperations))
		}
		return resp
	})
}

func (c *Coordinator) describeConsumerGroup(id string, ops bool) kmsg.ConsumerGroupDescribeResponseGroup {
	dg := kmsg.NewConsumerGroupDescribeResponseGroup()
	dg.Group = id
	fail := func(err *kerr.Error, format string) kmsg.ConsumerGroupDescribeResponseGroup {
		dg.ErrorCode = err.Code
		if format != "" {
			dg.ErrorMessage = ptr(fmt.Sprintf(format, id))
		}
		return dg
	}
	g := c.groups[id]
	switch {
	case c.unavailable(id) != nil:
		return fail(c.unavailable(id), "")
	case id == "":
		return fail(kerr.InvalidGroupID, "")
	case g == nil:
		return fail(kerr.GroupIDNotFound, "Group %s not found.")
	case g.consumer == nil:
		return fail(kerr.GroupIDNotFound, "Group %s is not a consumer group.")
	}
	if ops {
		dg.AuthorizedOperations = groupOperations
	}
	cg := g.consumer
	dg.State, dg.Epoch, dg.AssignmentEpoch = cg.state().String(), cg.epoch, cg.assignmentEpoch
	dg.AssignorName = cg.assignor
	if dg.AssignorName == "" {
		dg.AssignorName = shortAssignorName(c.cfg.ConsumerAssignors[0])
	}
	for _, m := range cg.sortedMembers() {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics, dm.SubscribedTopicRegex = m.topics, m.regex
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		dm.Assignment = c.describedAssignment(cg, m.assigned)
		dm.TargetAssignment = c.describedAssignment(cg, cg.target[m.id])
		dm.MemberType = 1 // a consumer-protocol member
		dg.Members = append(dg.Members, dm)
	}
	return dg
}

func (c *Coordinator) describedAssignment(cg *consumerGroup, s tpSet) kmsg.Assignment {
	a := kmsg.Assignment{TopicPartitions: []kmsg.AssignmentTopicPartition{}}
	for _, tp := range s.sorted() {
		if n := len(a.TopicPartitions); n > 0 && a.TopicPartitions[n-1].Topic == tp.topic {
			a.TopicPartitions[n-1].Partitions = append(a.TopicPartitions[n-1].Partitions, tp.partition)
			continue
		}
		a.TopicPartitions = append(a.TopicPartitions, kmsg.AssignmentTopicPartition{TopicID: c.topicID(cg, tp.topic), Topic: tp.topic, Partitions: []int32{tp.partition}})
	}
	return a
}

// groupType is the group's type as ListGroups v5 names it.
func (g *group) groupType() string {
	if g.consumer != nil {
		return "consumer"
	}
	return "classic"
}

// stateName is the group's state as ListGroups and DescribeGroups name it.
func (g *group) stateName() string {
	if g.consumer != nil {
		return g.consumer.state().String()
	}
	return g.state.String()
}

// consumerCommitAllowed is Kafka's ConsumerGroup.validateOffsetCommit: an
// admin or simple commit (negative epoch) only while the group has no
// members, otherwise a member's with OffsetCommit v9+ and an epoch no newer
// than the member's. An older epoch is accepted as KIP-1251 (Kafka 4.3)
// accepts it, partition by partition (staleCommit): a member commits what
// it consumed while the answer that moved it to its next epoch was on its
// way, and what it commits while revoking.
func consumerCommitAllowed(g *group, memberID string, epoch int32, version int16) *kerr.Error {
	cg := g.consumer
	if epoch < 0 && len(cg.members) == 0 {
		return nil
	}
	m := cg.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case version < 9:
		return kerr.UnsupportedVersion
	case epoch > m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// staleCommit reports whether a commit of tp at epoch by memberID comes
// from before the member was assigned tp (KIP-1251's per-partition
// assignment epoch): the partition may have been someone else's then.
func staleCommit(g *group, memberID string, epoch int32, tp topicPartition) bool {
	if g.consumer == nil {
		return false
	}
	m := g.consumer.members[memberID]
	if m == nil {
		return false
	}
	at, ok := m.assignedAt[tp]
	return ok && epoch < at
}

// consumerFetchAllowed is Kafka's ConsumerGroup.validateOffsetFetch for
// OffsetFetch v9+: a member must name its current epoch; a request without
// a member (an admin fetch) is always allowed.
func consumerFetchAllowed(g *group, memberID *string, epoch int32) *kerr.Error {
	if g.consumer == nil || memberID == nil || *memberID == "" && epoch < 0 {
		return nil
	}
	m := g.consumer.members[*memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case epoch != m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// offsetCommitMemberEpochs is the first OffsetCommit version that carries
// member epochs; transactional commits are checked as if they were it.
const offsetCommitMemberEpochs = 9

// becomeClassic turns a consumer group without members into a classic one
// (a classic member joining it), keeping its offsets, as Kafka converts an
// empty consumer group.
func (c *Coordinator) becomeClassic(g *group) {
	c.appendTombstones(g)
	g.consumer, g.protocolType, g.subscribed = nil, "", nil
}

// appendTombstones deletes g's metadata records before it changes type.
func (c *Coordinator) appendTombstones(g *group) {
	if _, err := c.store.Append(c.PartitionFor(g.id), g.tombstones()); err != nil {
		c.log.Warn("deleting group metadata", "group", g.id, "err", err)
	}
}
