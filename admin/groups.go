package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupListing is one group as ListGroups reports it.
type GroupListing struct {
	Group        string
	ProtocolType string // "consumer" for consumer groups
	State        string // Stable, Empty, ...; "" if the broker does not say (ListGroups < v4)
	Type         string // classic or consumer (KIP-848); "" if the broker does not say (ListGroups < v5)
}

// ListGroups returns the groups of every broker, sorted by id. Brokers that
// fail are reported in the error; the groups of the others are returned.
func (c *Client) ListGroups(ctx context.Context) ([]GroupListing, error) {
	return c.listGroups(ctx, nil)
}

// listGroups asks every broker for its groups of the given types (nil:
// every type; brokers before ListGroups v5 ignore the filter, so the
// listing is filtered by protocol type here too).
func (c *Client) listGroups(ctx context.Context, types []string) ([]GroupListing, error) {
	md, err := c.metadata(ctx)
	if err != nil {
		return nil, err
	}
	var out []GroupListing
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(md.Brokers)) {
		var resp *kmsg.ListGroupsResponse
		err := c.retry(ctx, func() error {
			req := kmsg.NewPtrListGroupsRequest()
			req.TypesFilter = types
			kresp, err := c.cl.RequestBroker(ctx, id, req)
			if err != nil {
				return err
			}
			resp = kresp.(*kmsg.ListGroupsResponse)
			return kafkaErr("list groups on broker", fmt.Sprint(id), resp.ErrorCode, nil)
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, g := range resp.Groups {
			// Brokers before ListGroups v5 ignore the filter and give no
			// type: those groups are matched by their protocol type.
			if types == nil || slices.Contains(types, g.GroupType) || (g.GroupType == "" && slices.Contains(types, g.ProtocolType)) {
				out = append(out, GroupListing{Group: g.Group, ProtocolType: g.ProtocolType, State: g.GroupState, Type: g.GroupType})
			}
		}
	}
	slices.SortFunc(out, func(a, b GroupListing) int { return strings.Compare(a.Group, b.Group) })
	return out, errors.Join(errs...)
}

// GroupMember is one member of a group.
type GroupMember struct {
	MemberID   string
	InstanceID string `json:",omitempty"` // group.instance.id of a static member
	ClientID   string
	Host       string
	// Assignment is what the member was given, decoded for consumer
	// groups (ProtocolType "consumer"); nil for other protocols. In a
	// KIP-848 group it is what the member owns now.
	Assignment []kafkit.TopicPartition
	// Epoch and TargetAssignment are a KIP-848 member's epoch and the
	// assignment it is moving to.
	Epoch            int32                   `json:",omitempty"`
	TargetAssignment []kafkit.TopicPartition `json:",omitempty"`
}

// GroupDescription describes one group.
type GroupDescription struct {
	Group string
	// Type is classic, or consumer for a KIP-848 group.
	Type string
	// State is Kafka's state: Empty, PreparingRebalance,
	// CompletingRebalance, Stable, Dead; for a consumer group Empty,
	// Assigning, Reconciling, Stable.
	State        string
	ProtocolType string
	Protocol     string // the assignor a consumer group chose (the broker's, for a KIP-848 group)
	Coordinator  int32
	Members      []GroupMember
	// Epoch and AssignmentEpoch are a KIP-848 group's group epoch and
	// the epoch of its target assignment.
	Epoch, AssignmentEpoch int32 `json:",omitempty"`
}

// DescribeGroups describes each group, in order, asking each group's
// coordinator: with ConsumerGroupDescribe first and, for a classic group or
// a broker without KIP-848, DescribeGroups, as Java's admin client does. A
// group that does not exist comes back in state Dead (as Kafka answers);
// failures are joined into the error.
func (c *Client) DescribeGroups(ctx context.Context, groups ...string) ([]GroupDescription, error) {
	var out []GroupDescription
	var errs []error
	for _, g := range groups {
		d, err := c.describeGroup(ctx, g)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

func (c *Client) describeGroup(ctx context.Context, group string) (GroupDescription, error) {
	var d GroupDescription
	err := c.retry(ctx, func() error {
		coord, err := c.cl.FindCoordinator(ctx, 0, group)
		if err != nil {
			return err
		}
		var found bool
		if d, found, err = c.describeConsumerGroup(ctx, coord, group); err != nil || found {
			return err
		}
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		kresp, err := c.cl.RequestBroker(ctx, coord, req)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.DescribeGroupsResponse)
		if len(resp.Groups) != 1 {
			return fmt.Errorf("describe group %s: %d groups in the answer, want 1", group, len(resp.Groups))
		}
		rg := resp.Groups[0]
		if rg.ErrorCode == kerr.GroupIDNotFound.Code { // DescribeGroups v6+; older versions answer Dead
			d = GroupDescription{Group: group, State: "Dead", Coordinator: coord}
			return nil
		}
		if err := kafkaErr("describe group", group, rg.ErrorCode, rg.ErrorMessage); err != nil {
			return err
		}
		d = GroupDescription{Group: group, Type: "classic", State: rg.State, ProtocolType: rg.ProtocolType, Protocol: rg.Protocol, Coordinator: coord}
		for _, m := range rg.Members {
			gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
			if m.InstanceID != nil {
				gm.InstanceID = *m.InstanceID
			}
			if rg.ProtocolType == "consumer" && len(m.MemberAssignment) > 0 {
				var a kmsg.ConsumerMemberAssignment
				if err := a.ReadFrom(m.MemberAssignment); err != nil {
					return fmt.Errorf("describe group %s: member %s's assignment: %w", group, m.MemberID, err)
				}
				for _, t := range a.Topics {
					for _, p := range t.Partitions {
						gm.Assignment = append(gm.Assignment, kafkit.TopicPartition{Topic: t.Topic, Partition: p})
					}
				}
				slices.SortFunc(gm.Assignment, compareTP)
			}
			d.Members = append(d.Members, gm)
		}
		return nil
	})
	return d, err
}

// describeConsumerGroup describes a KIP-848 group with
// ConsumerGroupDescribe; found is false for a group of another type, or a
// broker without the API.
func (c *Client) describeConsumerGroup(ctx context.Context, coord int32, group string) (d GroupDescription, found bool, err error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	kresp, err := c.cl.RequestBroker(ctx, coord, req)
	if errors.Is(err, client.ErrUnsupportedAPI) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	resp := kresp.(*kmsg.ConsumerGroupDescribeResponse)
	if len(resp.Groups) != 1 {
		return d, false, fmt.Errorf("describe group %s: %d groups in the answer, want 1", group, len(resp.Groups))
	}
	rg := resp.Groups[0]
	if rg.ErrorCode == kerr.GroupIDNotFound.Code {
		return d, false, nil
	}
	if err := kafkaErr("describe consumer group", group, rg.ErrorCode, rg.ErrorMessage); err != nil {
		return d, false, err
	}
	d = GroupDescription{Group: group, Type: "consumer", State: rg.State, ProtocolType: "consumer", Protocol: rg.AssignorName,
		Coordinator: coord, Epoch: rg.Epoch, AssignmentEpoch: rg.AssignmentEpoch}
	for _, m := range rg.Members {
		gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Epoch: m.MemberEpoch,
			Assignment: assignedPartitions(m.Assignment), TargetAssignment: assignedPartitions(m.TargetAssignment)}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		d.Members = append(d.Members, gm)
	}
	return d, true, nil
}

// assignedPartitions lists a KIP-848 assignment, sorted.
func assignedPartitions(a kmsg.Assignment) []kafkit.TopicPartition {
	var out []kafkit.TopicPartition
	for _, t := range a.TopicPartitions {
		for _, p := range t.Partitions {
			out = append(out, kafkit.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}

// DeleteGroups deletes empty groups and their committed offsets; a group
// with members fails with kerr.NonEmptyGroup, an unknown one with
// kerr.GroupIDNotFound.
func (c *Client) DeleteGroups(ctx context.Context, groups ...string) error {
	var errs []error
	for _, g := range groups {
		errs = append(errs, c.retry(ctx, func() error {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{g}
			kresp, err := c.toCoordinator(ctx, g, req)
			if err != nil {
				return err
			}
			for _, rg := range kresp.(*kmsg.DeleteGroupsResponse).Groups {
				if err := kafkaErr("delete group", rg.Group, rg.ErrorCode, rg.ErrorMessage); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

// GroupOffsets returns the offsets group committed (the next offset each
// partition's consumer will read): for every partition with a commit, or
// only for the given partitions. A group that never committed has none.
func (c *Client) GroupOffsets(ctx context.Context, group string, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]int64, error) {
	ids, err := c.topicIDs(ctx)
	if err != nil {
		return nil, err
	}
	req := client.NewOffsetFetch(group, partitions, ids.byName)
	out := make(map[kafkit.TopicPartition]int64)
	err = c.retry(ctx, func() error {
		clear(out)
		kresp, err := c.toCoordinator(ctx, group, req)
		if err != nil {
			return err
		}
		return client.ReadOffsetFetch(kresp.(*kmsg.OffsetFetchResponse), ids.byID,
			func(code int16) error { return kafkaErr("fetch offsets of group", group, code, nil) },
			func(tp kafkit.TopicPartition, offset int64, _ int32, code int16) error {
				if err := kafkaErr("fetch offsets of group "+group+" for", partitionName(tp), code, nil); err != nil {
					return err
				}
				if offset >= 0 {
					out[tp] = offset
				}
				return nil
			})
	})
	return out, err
}

// AlterGroupOffsets commits offsets for group, which must have no members
// (ErrGroupActive otherwise, as kafka-consumer-groups refuses): members
// would overwrite them with their own commits.
func (c *Client) AlterGroupOffsets(ctx context.Context, group string, offsets map[kafkit.TopicPartition]int64) error {
	if err := c.requireInactive(ctx, group); err != nil {
		return err
	}
	ids, err := c.topicIDs(ctx)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1 // no generation: an admin commit to an empty group
	req.RetentionTimeMillis = -1
	for t, ps := range client.PartitionsByTopic(slices.SortedFunc(maps.Keys(offsets), compareTP)) {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = t, ids.byName[t]
		for _, p := range ps {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, offsets[kafkit.TopicPartition{Topic: t, Partition: p}]
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return c.retry(ctx, func() error {
		kresp, err := c.toCoordinator(ctx, group, req)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.OffsetCommitResponse)
		var errs []error
		for _, rt := range resp.Topics {
			name := rt.Topic
			if resp.GetVersion() >= 10 {
				name = ids.byID[rt.TopicID]
			}
			for _, rp := range rt.Partitions {
				tp := kafkit.TopicPartition{Topic: name, Partition: rp.Partition}
				errs = append(errs, kafkaErr("commit offset of group "+group+" for", partitionName(tp), rp.ErrorCode, nil))
			}
		}
		return errors.Join(errs...)
	})
}

// DeleteGroupOffsets deletes group's committed offsets of partitions
// (OffsetDelete, KIP-496; kafka-consumer-groups.sh --delete-offsets). The
// group must be empty or not subscribe to the partitions' topics: Kafka
// refuses each partition of a topic that a member of the group subscribes
// to with GROUP_SUBSCRIBED_TO_TOPIC. A group-level failure
// (kerr.GroupIDNotFound, kerr.NonEmptyGroup for a group that is not a
// consumer group) fails the call; each partition's error is joined into
// the error, the other partitions' offsets are deleted.
func (c *Client) DeleteGroupOffsets(ctx context.Context, group string, partitions ...kafkit.TopicPartition) error {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	for t, ps := range client.PartitionsByTopic(partitions) {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = t
		for _, p := range ps {
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	var resp *kmsg.OffsetDeleteResponse
	if err := c.retry(ctx, func() error {
		kresp, err := c.toCoordinator(ctx, group, req)
		if err != nil {
			return err
		}
		resp = kresp.(*kmsg.OffsetDeleteResponse)
		return kafkaErr("delete offsets of group", group, resp.ErrorCode, nil)
	}); err != nil {
		return err
	}
	// Partition errors are final: retrying would not change the group's
	// subscriptions, and an unknown partition stays unknown.
	var errs []error
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			errs = append(errs, kafkaErr("delete offset of group "+group+" for", partitionName(tp), rp.ErrorCode, nil))
		}
	}
	return errors.Join(errs...)
}

// requireInactive fails with ErrGroupActive unless group is Empty or Dead.
func (c *Client) requireInactive(ctx context.Context, group string) error {
	d, err := c.describeGroup(ctx, group)
	if err != nil {
		return err
	}
	if d.State != "Empty" && d.State != "Dead" {
		return fmt.Errorf("%w: offsets can only be changed if group '%s' is inactive, but its state is %s with %d member(s)",
			ErrGroupActive, group, d.State, len(d.Members))
	}
	return nil
}

// topicIDMap maps topic names and ids both ways: OffsetFetch and
// OffsetCommit v10 name topics by id.
type topicIDMap struct {
	byName map[string][16]byte
	byID   map[[16]byte]string
}

func (c *Client) topicIDs(ctx context.Context) (topicIDMap, error) {
	md, err := c.cl.Metadata(ctx)
	if err != nil {
		return topicIDMap{}, fmt.Errorf("metadata: %w", err)
	}
	m := topicIDMap{byName: make(map[string][16]byte), byID: make(map[[16]byte]string)}
	for _, t := range md.Topics {
		m.byName[t.Name], m.byID[t.ID] = t.ID, t.Name
	}
	return m, nil
}
