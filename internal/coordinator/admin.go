package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is the AclOperation bitfield of a group without ACLs:
// READ (3), DELETE (6) and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

// ListGroups handles a ListGroups request (v4 states filter, v5 types
// filter: "classic" or "consumer"; both match case-insensitively, as in
// Kafka).
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error) {
	return call(ctx, c, func() *kmsg.ListGroupsResponse {
		resp := kmsg.NewPtrListGroupsResponse()
		if c.loading() {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			return resp
		}
		matches := func(filter []string, v string) bool {
			return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
		}
		for _, g := range c.groups {
			if g.state == stateDead || !matches(req.TypesFilter, g.groupType()) || !matches(req.StatesFilter, g.stateName()) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, g.protocolType, g.stateName(), g.groupType()
			resp.Groups = append(resp.Groups, lg)
		}
		slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
		return resp
	})
}

// DescribeGroups handles a DescribeGroups request. Members' metadata and
// assignments are shown only for a Stable group, as Kafka does; an unknown
// group is "Dead" (v6+: with GROUP_ID_NOT_FOUND).
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, error) {
	return call(ctx, c, func() *kmsg.DescribeGroupsResponse {
		resp := kmsg.NewPtrDescribeGroupsResponse()
		for _, id := range req.Groups {
			dg := kmsg.NewDescribeGroupsResponseGroup()
			dg.Group = id
			if req.IncludeAuthorizedOperations {
				dg.AuthorizedOperations = groupOperations
			}
			g := c.groups[id]
			switch {
			case c.unavailable(id) != nil:
				dg.ErrorCode = c.unavailable(id).Code
			case g == nil || g.consumer != nil:
				// A consumer group is not a classic group (KIP-1043's
				// answer from v6; Dead before).
				dg.State = stateDead.String()
				if req.Version >= 6 {
					dg.ErrorCode = kerr.GroupIDNotFound.Code
					dg.ErrorMessage = ptr(fmt.Sprintf("Group %s not found.", id))
					if g != nil {
						dg.ErrorMessage = ptr(fmt.Sprintf("Group %s is not a classic group.", id))
					}
				}
			default:
				dg.State, dg.ProtocolType = g.state.String(), g.protocolType
				stable := g.state == stateStable
				if stable {
					dg.Protocol = g.protocol
				}
				for _, m := range g.sortedMembers() {
					dm := kmsg.NewDescribeGroupsResponseGroupMember()
					dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
					dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
					if stable {
						dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
					}
					dg.Members = append(dg.Members, dm)
				}
			}
			resp.Groups = append(resp.Groups, dg)
		}
		return resp
	})
}

// DeleteGroups deletes Empty groups with their offsets (tombstones for
// every offset and the group metadata).
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, error) {
	return call(ctx, c, func() *kmsg.DeleteGroupsResponse {
		resp := kmsg.NewPtrDeleteGroupsResponse()
		for _, id := range req.Groups {
			dg := kmsg.NewDeleteGroupsResponseGroup()
			dg.Group = id
			if err := c.deleteGroup(id); err != nil {
				dg.ErrorCode = err.Code
			}
			resp.Groups = append(resp.Groups, dg)
		}
		return resp
	})
}

func (c *Coordinator) deleteGroup(id string) *kerr.Error {
	if err := c.unavailable(id); err != nil {
		return err
	}
	g := c.groups[id]
	switch {
	case g == nil || g.state == stateDead:
		return kerr.GroupIDNotFound
	case g.state != stateEmpty:
		return kerr.NonEmptyGroup
	}
	all := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		all = append(all, tp)
	}
	for _, t := range g.pending { // deletion ends the group even with KIP-394 ids out
		t.Stop()
	}
	clear(g.pending)
	if err := c.removeOffsets(g, all); err != nil {
		c.log.Warn("deleting group", "group", id, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	c.log.Info("deleted group", "group", id)
	return nil
}
