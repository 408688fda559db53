package coordinator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CommitOffsets handles an OffsetCommit request (v0-9 by topic name). The
// answer comes after the records are in __consumer_offsets.
func (c *Coordinator) CommitOffsets(ctx context.Context, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error) {
	return call(ctx, c, func() *kmsg.OffsetCommitResponse { return c.commit(req) })
}

// FetchOffsets answers one group of an OffsetFetch request (the v8+ form;
// older versions map onto it). Nil Topics asks for every committed offset.
// With requireStable (v7+, KIP-447) a partition with an offset of an open
// transaction answers UNSTABLE_OFFSET_COMMIT; the client retries.
func (c *Coordinator) FetchOffsets(ctx context.Context, req kmsg.OffsetFetchRequestGroup, requireStable bool) (kmsg.OffsetFetchResponseGroup, error) {
	return call(ctx, c, func() kmsg.OffsetFetchResponseGroup {
		out := c.fetch(req)
		if g := c.groups[req.Group]; requireStable && g != nil {
			markUnstable(&out, g)
		}
		return out
	})
}

// markUnstable replaces the offsets of g's partitions with a pending
// transactional commit by UNSTABLE_OFFSET_COMMIT.
func markUnstable(out *kmsg.OffsetFetchResponseGroup, g *group) {
	for i := range out.Topics {
		t := &out.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if g.pendingTxn(topicPartition{t.Topic, p.Partition}) {
				p.Offset, p.ErrorCode = -1, kerr.UnstableOffsetCommit.Code
			}
		}
	}
}

// DeleteOffsets handles an OffsetDelete request.
func (c *Coordinator) DeleteOffsets(ctx context.Context, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error) {
	return call(ctx, c, func() *kmsg.OffsetDeleteResponse { return c.deleteOffsets(req) })
}

// commitAllowed is Kafka's validation of an offset commit; it returns the
// group to commit to (possibly new, for a simple commit) or the error.
func (c *Coordinator) commitAllowed(req *kmsg.OffsetCommitRequest) (*group, *kerr.Error) {
	if err := c.unavailable(req.Group); err != nil {
		return nil, err
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.Generation < 0 {
			// A group that uses Kafka only to store offsets.
			return newGroup(req.Group, time.Now()), nil
		}
		return nil, kerr.IllegalGeneration
	}
	switch {
	case g.state == stateDead:
		return nil, kerr.CoordinatorNotAvailable
	case g.consumer != nil:
		if err := consumerCommitAllowed(g, req.MemberID, req.Generation, req.Version); err != nil {
			return nil, err
		}
		return g, nil
	case g.fenced(req.InstanceID, req.MemberID):
		return nil, kerr.FencedInstanceID
	case req.Generation < 0 && g.state == stateEmpty:
		return g, nil
	case g.members[req.MemberID] == nil:
		return nil, kerr.UnknownMemberID
	case req.Generation != g.generation:
		return nil, kerr.IllegalGeneration
	case g.state == stateCompletingRebalance:
		// The member knows the new generation but has no assignment yet.
		return nil, kerr.RebalanceInProgress
	}
	// Stable, or PreparingRebalance: members commit while revoking.
	c.scheduleHeartbeat(g, g.members[req.MemberID])
	return g, nil
}

func (c *Coordinator) commit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	g, gerr := c.commitAllowed(req)
	now := time.Now()
	type pending struct {
		tp  topicPartition
		o   committed
		out *kmsg.OffsetCommitResponseTopicPartition
	}
	var recs []Record
	var writes []pending
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			o, code := c.checkOffset(gerr, tp, rp.Offset, epochSince(req.Version, 6, rp.LeaderEpoch), rp.Metadata, now)
			if code == 0 && staleCommit(g, req.MemberID, req.Generation, tp) {
				code = kerr.StaleMemberEpoch.Code
			}
			if sp.ErrorCode = code; code == 0 {
				commitTimes(req, rp, &o)
				recs = append(recs, Record{Key: offsetKey(g.id, tp), Value: offsetValue(o)})
				writes = append(writes, pending{tp, o, sp})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(recs) == 0 {
		return resp
	}
	base, err := c.store.Append(c.PartitionFor(g.id), recs)
	if err != nil {
		c.log.Warn("storing offset commit", "group", g.id, "err", err)
		for _, w := range writes {
			w.out.ErrorCode = appendFailed(err).Code
		}
		return resp
	}
	c.groups[g.id] = g
	for _, w := range writes {
		w.o.logOffset = base
		g.offsets[w.tp] = w.o
	}
	return resp
}

func (c *Coordinator) fetch(req kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = req.Group
	if err := c.unavailable(req.Group); err != nil {
		out.ErrorCode = err.Code
		return out
	}
	var offsets map[topicPartition]committed
	if g := c.groups[req.Group]; g != nil {
		if err := consumerFetchAllowed(g, req.MemberID, req.MemberEpoch); err != nil {
			out.ErrorCode = err.Code
			return out
		}
		offsets = g.offsets
	}
	partition := func(p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch, rp.Metadata = -1, -1, ptr("")
		return rp
	}
	if req.Topics == nil {
		tps := make([]topicPartition, 0, len(offsets))
		for tp := range offsets {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, func(a, b topicPartition) int {
			return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
		})
		for _, tp := range tps {
			if n := len(out.Topics); n == 0 || out.Topics[n-1].Topic != tp.topic {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = tp.topic
				out.Topics = append(out.Topics, t)
			}
			o := offsets[tp]
			rp := partition(tp.partition)
			rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, ptr(o.metadata)
			t := &out.Topics[len(out.Topics)-1]
			t.Partitions = append(t.Partitions, rp)
		}
		return out
	}
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			rp := partition(p)
			if o, ok := offsets[topicPartition{rt.Topic, p}]; ok {
				rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, ptr(o.metadata)
			}
			t.Partitions = append(t.Partitions, rp)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

func (c *Coordinator) deleteOffsets(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	if err := c.unavailable(req.Group); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	g := c.groups[req.Group]
	if g == nil || g.state == stateDead {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	if g.state != stateEmpty && g.protocolType != "consumer" {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	var remove []topicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case c.cfg.KnownPartition != nil && !c.cfg.KnownPartition(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case g.state != stateEmpty && g.isSubscribed(rt.Topic):
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				remove = append(remove, topicPartition{rt.Topic, rp.Partition})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if err := c.removeOffsets(g, remove); err != nil {
		c.log.Warn("deleting offsets", "group", g.id, "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.Topics = nil
	}
	return resp
}

// removeOffsets writes tombstones for the group's offsets of tps (those it
// has) and forgets them; an Empty group left without offsets dies and its
// metadata is tombstoned too, as Kafka's cleanupGroupMetadata does.
func (c *Coordinator) removeOffsets(g *group, tps []topicPartition) error {
	var recs []Record
	for _, tp := range tps {
		if _, ok := g.offsets[tp]; ok {
			recs = append(recs, Record{Key: offsetKey(g.id, tp)})
		}
	}
	dies := g.state == stateEmpty && len(g.pending) == 0 && len(g.offsets) == len(recs) && len(g.txnOffsets) == 0
	if dies {
		recs = append(recs, g.tombstones()...)
	}
	if len(recs) == 0 {
		return nil
	}
	if _, err := c.store.Append(c.PartitionFor(g.id), recs); err != nil {
		return err
	}
	for _, tp := range tps {
		delete(g.offsets, tp)
	}
	if dies {
		c.removeGroup(g)
	}
	return nil
}

// removeGroup marks g Dead and forgets it; its timers find it gone.
func (c *Coordinator) removeGroup(g *group) {
	g.transition(stateDead, time.Now())
	c.stopRebalanceTimer(g)
	for _, t := range g.pending {
		t.Stop()
	}
	delete(c.groups, g.id)
}

// expireOffsets applies offsets.retention.minutes (KIP-211): a group's
// offsets expire once it has been Empty that long; a simple group's
// offsets, and a Stable consumer group's offsets of topics no member
// subscribes to any more, expire that long after their commit. An offset
// with its own expiry (OffsetCommit v1-4) expires then instead.
func (c *Coordinator) expireOffsets(now time.Time) {
	keep := c.cfg.OffsetsRetention
	for _, g := range c.groups {
		var expired []topicPartition
		for tp, o := range g.offsets {
			var since time.Time
			switch {
			case g.protocolType != "" && g.state == stateEmpty:
				since = g.stateSince
			case g.protocolType == "",
				g.protocolType == "consumer" && g.state == stateStable && g.subscribed != nil && !g.subscribed[tp.topic]:
				since = o.commitTime
			default:
				continue
			}
			if g.pendingTxn(tp) {
				continue // Kafka keeps an offset an open transaction will replace
			}
			if o.expireTime.IsZero() && now.Sub(since) >= keep || !o.expireTime.IsZero() && !now.Before(o.expireTime) {
				expired = append(expired, tp)
			}
		}
		if len(expired) == 0 && !(g.state == stateEmpty && len(g.offsets) == 0) {
			continue
		}
		if err := c.removeOffsets(g, expired); err != nil {
			c.log.Warn("expiring offsets", "group", g.id, "err", err)
			continue
		}
		if len(expired) > 0 {
			c.log.Info("expired offsets", "group", g.id, "partitions", len(expired))
		}
	}
}

// DeleteTopicOffsets forgets every group's committed offsets of a deleted
// topic, as Kafka does when a topic goes away, so a topic created again
// under the same name is not read from stale positions.
func (c *Coordinator) DeleteTopicOffsets(ctx context.Context, topic string) error {
	errs, err := call(ctx, c, func() error {
		var failed error
		for _, g := range c.groups {
			var tps []topicPartition
			for tp := range g.offsets {
				if tp.topic == topic {
					tps = append(tps, tp)
				}
			}
			if len(tps) == 0 {
				continue
			}
			if err := c.removeOffsets(g, tps); err != nil {
				failed = fmt.Errorf("group %s: %w", g.id, err)
			}
		}
		return failed
	})
	if err != nil {
		return err
	}
	return errs
}

// checkOffset validates one partition of an offset commit (plain or
// transactional): the group's own error first, then an unknown partition,
// then metadata over offset.metadata.max.bytes. It returns the offset to
// store and the error code (0 when the commit may go ahead).
func (c *Coordinator) checkOffset(gerr *kerr.Error, tp topicPartition, offset int64, leaderEpoch int32, metadata *string, now time.Time) (committed, int16) {
	o := committed{offset: offset, leaderEpoch: leaderEpoch, commitTime: now}
	if metadata != nil {
		o.metadata = *metadata
	}
	switch {
	case gerr != nil:
		return o, gerr.Code
	case c.cfg.KnownPartition != nil && !c.cfg.KnownPartition(tp.topic, tp.partition):
		return o, kerr.UnknownTopicOrPartition.Code
	case len(o.metadata) > c.cfg.MaxMetadataBytes:
		return o, kerr.OffsetMetadataTooLarge.Code
	}
	return o, 0
}

// commitTimes applies the times older OffsetCommit versions carry, as Kafka
// still does: v1's commit timestamp per partition, v2-4's retention time,
// which gives the offset its own expiry (-1: the broker's retention).
func commitTimes(req *kmsg.OffsetCommitRequest, rp kmsg.OffsetCommitRequestTopicPartition, o *committed) {
	if req.Version == 1 && rp.Timestamp != -1 {
		o.commitTime = time.UnixMilli(rp.Timestamp)
	}
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
		o.expireTime = o.commitTime.Add(time.Duration(req.RetentionTimeMillis) * time.Millisecond)
	}
}

// epochSince is a partition's committed leader epoch: -1 when the request
// version is older than since, the first that carries one.
func epochSince(version, since int16, epoch int32) int32 {
	if version < since {
		return -1
	}
	return epoch
}
