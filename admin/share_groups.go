package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListShareGroups returns the share groups (KIP-932) of every broker,
// sorted by id; State is Empty or Stable. Delete one with DeleteGroups.
func (c *Client) ListShareGroups(ctx context.Context) ([]GroupListing, error) {
	return c.listGroups(ctx, []string{"share"})
}

// ShareGroupMember is one member of a share group.
type ShareGroupMember struct {
	MemberID    string
	ClientID    string
	Host        string
	Rack        string `json:",omitempty"`
	MemberEpoch int32
	Topics      []string                // subscribed
	Assignment  []kafkit.TopicPartition // partitions it fetches from (shared with other members)
}

// ShareGroupDescription is a share group as ShareGroupDescribe shows it.
type ShareGroupDescription struct {
	Group           string
	State           string // Empty, Stable
	GroupEpoch      int32
	AssignmentEpoch int32
	Assignor        string // "simple"
	Members         []ShareGroupMember
}

// DescribeShareGroups describes share groups from their coordinators; an
// unknown group (or one of another type) fails with kerr.GroupIDNotFound.
func (c *Client) DescribeShareGroups(ctx context.Context, groups ...string) ([]ShareGroupDescription, error) {
	out := make([]ShareGroupDescription, 0, len(groups))
	var errs []error
	for _, g := range groups {
		err := c.retry(ctx, func() error {
			req := kmsg.NewPtrShareGroupDescribeRequest()
			req.GroupIDs = []string{g}
			kresp, err := c.toCoordinator(ctx, g, req)
			if err != nil {
				return err
			}
			for _, rg := range kresp.(*kmsg.ShareGroupDescribeResponse).Groups {
				if err := kafkaErr("describe share group", rg.GroupID, rg.ErrorCode, rg.ErrorMessage); err != nil {
					return err
				}
				d := ShareGroupDescription{Group: rg.GroupID, State: rg.GroupState, GroupEpoch: rg.GroupEpoch, AssignmentEpoch: rg.AssignmentEpoch, Assignor: rg.Assignor}
				for _, m := range rg.Members {
					sm := ShareGroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, MemberEpoch: m.MemberEpoch, Topics: m.SubscribedTopicNames}
					if m.RackID != nil {
						sm.Rack = *m.RackID
					}
					for _, tp := range m.Assignment.TopicPartitions {
						for _, p := range tp.Partitions {
							sm.Assignment = append(sm.Assignment, kafkit.TopicPartition{Topic: tp.Topic, Partition: p})
						}
					}
					slices.SortFunc(sm.Assignment, compareTP)
					d.Members = append(d.Members, sm)
				}
				out = append(out, d)
			}
			return nil
		})
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// ShareOffset is a share-partition's position: the share-partition start
// offset (every record before it is acknowledged or archived) and the
// records from there to the end of the log not yet delivered for good.
type ShareOffset struct {
	StartOffset int64
	Lag         int64 // -1 when the broker does not say (DescribeShareGroupOffsets v0)
}

// ShareGroupOffsets returns the share group's start offsets, for every
// partition it has state for.
func (c *Client) ShareGroupOffsets(ctx context.Context, group string) (map[kafkit.TopicPartition]ShareOffset, error) {
	out := map[kafkit.TopicPartition]ShareOffset{}
	err := c.retry(ctx, func() error {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: group}}
		kresp, err := c.toCoordinator(ctx, group, req)
		if err != nil {
			return err
		}
		var errs []error
		for _, rg := range kresp.(*kmsg.DescribeShareGroupOffsetsResponse).Groups {
			if err := kafkaErr("describe share group offsets", rg.GroupID, rg.ErrorCode, rg.ErrorMessage); err != nil {
				return err
			}
			for _, rt := range rg.Topics {
				for _, rp := range rt.Partitions {
					tp := kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
					if err := kafkaErr("describe share group offsets", partitionName(tp), rp.ErrorCode, rp.ErrorMessage); err != nil {
						errs = append(errs, err)
						continue
					}
					out[tp] = ShareOffset{StartOffset: rp.StartOffset, Lag: rp.Lag}
				}
			}
		}
		return errors.Join(errs...)
	})
	return out, err
}

// AlterShareGroupOffsets sets share-partition start offsets
// (kafka-share-groups.sh --reset-offsets). The group must have no members
// (kerr.NonEmptyGroup otherwise).
func (c *Client) AlterShareGroupOffsets(ctx context.Context, group string, offsets map[kafkit.TopicPartition]int64) error {
	return c.retry(ctx, func() error {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = group
		byTopic := map[string][]kmsg.AlterShareGroupOffsetsRequestTopicPartition{}
		for _, tp := range slices.SortedFunc(maps.Keys(offsets), compareTP) {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], kmsg.AlterShareGroupOffsetsRequestTopicPartition{Partition: tp.Partition, StartOffset: offsets[tp]})
		}
		for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
			req.Topics = append(req.Topics, kmsg.AlterShareGroupOffsetsRequestTopic{Topic: topic, Partitions: byTopic[topic]})
		}
		kresp, err := c.toCoordinator(ctx, group, req)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.AlterShareGroupOffsetsResponse)
		if err := kafkaErr("alter share group offsets", group, resp.ErrorCode, resp.ErrorMessage); err != nil {
			return err
		}
		var errs []error
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				errs = append(errs, kafkaErr("alter share group offsets", partitionName(kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}), rp.ErrorCode, rp.ErrorMessage))
			}
		}
		return errors.Join(errs...)
	})
}

// DeleteShareGroupOffsets drops the share group's state for whole topics
// (kafka-share-groups.sh --delete-offsets); the group must have no members.
func (c *Client) DeleteShareGroupOffsets(ctx context.Context, group string, topics ...string) error {
	return c.retry(ctx, func() error {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = group
		for _, t := range topics {
			req.Topics = append(req.Topics, kmsg.DeleteShareGroupOffsetsRequestTopic{Topic: t})
		}
		kresp, err := c.toCoordinator(ctx, group, req)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.DeleteShareGroupOffsetsResponse)
		if err := kafkaErr("delete share group offsets", group, resp.ErrorCode, resp.ErrorMessage); err != nil {
			return err
		}
		var errs []error
		for _, rt := range resp.Topics {
			errs = append(errs, kafkaErr("delete share group offsets", rt.Topic, rt.ErrorCode, rt.ErrorMessage))
		}
		return errors.Join(errs...)
	})
}

// ResetShareGroupOffsets computes new start offsets of a share group for
// partitions and, with execute, sets them (kafka-share-groups.sh
// --reset-offsets; without --execute it is a dry run). The group must have
// no members (ErrGroupActive). The plan is returned sorted by partition.
func (c *Client) ResetShareGroupOffsets(ctx context.Context, group string, spec ResetSpec, partitions []kafkit.TopicPartition, execute bool) ([]OffsetReset, error) {
	if spec.Kind < ResetToEarliest || spec.Kind > ResetShiftBy {
		return nil, fmt.Errorf("%w: no target (to earliest, latest, datetime, offset or shift by)", ErrInvalidResetSpec)
	}
	ds, err := c.DescribeShareGroups(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, err
	}
	if len(ds) == 1 && len(ds[0].Members) > 0 {
		return nil, fmt.Errorf("%w: share group %s has %d members", ErrGroupActive, group, len(ds[0].Members))
	}
	current := map[kafkit.TopicPartition]int64{}
	if err == nil {
		offs, err := c.ShareGroupOffsets(ctx, group)
		if err != nil {
			return nil, err
		}
		for tp, o := range offs {
			if o.StartOffset >= 0 {
				current[tp] = o.StartOffset
			}
		}
	}
	plan, err := c.resetPlan(ctx, group, spec, partitions, current)
	if err != nil || !execute {
		return plan, err
	}
	return plan, c.AlterShareGroupOffsets(ctx, group, planOffsets(plan))
}
