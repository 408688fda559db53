package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetEpoch is an offset with the leader epoch of the record before it.
type offsetEpoch struct {
	offset int64
	epoch  int32
}

func (c *Consumer) isolationLevel() int8 {
	if c.cfg.IsolationLevel == ReadCommitted {
		return 1
	}
	return 0
}

// retry runs op until it succeeds, fails with a non-retriable error, or ctx
// ends, backing off retry.backoff.ms .. retry.backoff.max.ms between tries.
func (c *Consumer) retry(ctx context.Context, what string, op func() error) error {
	bo := client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax)
	for {
		err := op()
		if err == nil || !client.IsRetriable(err) {
			return err
		}
		c.log.Debug("retrying", "op", what, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case <-c.ctx.Done():
			return ErrClosed
		case <-timerC(bo.NextBackOff()):
		}
	}
}

// listOffsets asks each partition's leader for the offset matching spec:
// kafkit.OffsetEarliest, kafkit.OffsetLatest (the last stable offset under
// read_committed), or a timestamp in milliseconds (-1 offset when no record
// is that recent).
func (c *Consumer) listOffsets(ctx context.Context, specs map[kafkit.TopicPartition]int64) (map[kafkit.TopicPartition]offsetEpoch, error) {
	out := make(map[kafkit.TopicPartition]offsetEpoch, len(specs))
	err := c.retry(ctx, "ListOffsets", func() error {
		byLeader, failed, err := c.leaders(ctx, missing(specs, out))
		if err != nil {
			return err
		}
		var retriable error
		for _, ferr := range failed {
			if !client.IsRetriable(ferr) {
				return ferr
			}
			retriable = ferr
		}
		for leader, tps := range byLeader {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			req.IsolationLevel = c.isolationLevel()
			byTopic := make(map[string][]kmsg.ListOffsetsRequestTopicPartition)
			for _, tp := range tps {
				p := kmsg.NewListOffsetsRequestTopicPartition()
				p.Partition = tp.Partition
				p.Timestamp = specs[tp]
				byTopic[tp.Topic] = append(byTopic[tp.Topic], p)
			}
			for t, ps := range byTopic {
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic, rt.Partitions = t, ps
				req.Topics = append(req.Topics, rt)
			}
			kresp, err := c.cl.RequestBroker(ctx, leader, req)
			if err != nil {
				retriable = err
				continue
			}
			for _, t := range kresp.(*kmsg.ListOffsetsResponse).Topics {
				for _, p := range t.Partitions {
					tp := kafkit.TopicPartition{Topic: t.Topic, Partition: p.Partition}
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						if !client.IsRetriable(err) {
							return fmt.Errorf("ListOffsets %s[%d]: %w", tp.Topic, tp.Partition, err)
						}
						c.cl.InvalidateMetadata(tp.Topic)
						retriable = fmt.Errorf("ListOffsets %s[%d]: %w", tp.Topic, tp.Partition, err)
						continue
					}
					out[tp] = offsetEpoch{p.Offset, p.LeaderEpoch}
				}
			}
		}
		return retriable
	})
	return out, err
}

func missing[V any](specs map[kafkit.TopicPartition]int64, have map[kafkit.TopicPartition]V) []kafkit.TopicPartition {
	var tps []kafkit.TopicPartition
	for tp := range specs {
		if _, ok := have[tp]; !ok {
			tps = append(tps, tp)
		}
	}
	return tps
}

// leaders groups partitions by their leader, per the cached metadata.
// Partitions without a usable leader come back in failed with the reason;
// their topics' metadata is invalidated when the reason is retriable.
func (c *Consumer) leaders(ctx context.Context, tps []kafkit.TopicPartition) (byLeader map[int32][]kafkit.TopicPartition, failed map[kafkit.TopicPartition]error, err error) {
	md, err := c.cl.Metadata(ctx, topicsOf(tps)...)
	if err != nil {
		return nil, nil, err
	}
	byLeader = make(map[int32][]kafkit.TopicPartition)
	failed = make(map[kafkit.TopicPartition]error)
	for _, tp := range tps {
		t := md.Topics[tp.Topic]
		switch {
		case t.Err != nil:
			failed[tp] = fmt.Errorf("topic %s: %w", tp.Topic, t.Err)
		case int(tp.Partition) >= len(t.Partitions):
			failed[tp] = fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, kerr.UnknownTopicOrPartition)
		case t.Partitions[tp.Partition].Leader < 0:
			failed[tp] = fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, kerr.LeaderNotAvailable)
		default:
			leader := t.Partitions[tp.Partition].Leader
			byLeader[leader] = append(byLeader[leader], tp)
			continue
		}
		if client.IsRetriable(failed[tp]) {
			c.cl.InvalidateMetadata(tp.Topic)
		}
	}
	return byLeader, failed, nil
}

// topicsOf lists the distinct topics of tps.
func topicsOf(tps []kafkit.TopicPartition) []string { return client.TopicsOf(tps) }

// BeginningOffsets returns the log start offset of each partition.
func (c *Consumer) BeginningOffsets(ctx context.Context, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]int64, error) {
	return c.offsetsFor(ctx, partitions, kafkit.OffsetEarliest)
}

// OffsetsForTimes returns, for each partition, the earliest offset whose
// timestamp is at or after the given time, or -1 if no record is that recent.
func (c *Consumer) OffsetsForTimes(ctx context.Context, times map[kafkit.TopicPartition]time.Time) (map[kafkit.TopicPartition]int64, error) {
	specs := make(map[kafkit.TopicPartition]int64, len(times))
	for tp, ts := range times {
		specs[tp] = ts.UnixMilli()
	}
	return c.offsets(ctx, specs)
}

// EndOffsets returns the end offset of each partition: the high watermark, or
// the last stable offset under read_committed.
func (c *Consumer) EndOffsets(ctx context.Context, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]int64, error) {
	return c.offsetsFor(ctx, partitions, kafkit.OffsetLatest)
}

func (c *Consumer) offsetsFor(ctx context.Context, partitions []kafkit.TopicPartition, spec int64) (map[kafkit.TopicPartition]int64, error) {
	specs := make(map[kafkit.TopicPartition]int64, len(partitions))
	for _, tp := range partitions {
		specs[tp] = spec
	}
	return c.offsets(ctx, specs)
}

func (c *Consumer) offsets(ctx context.Context, specs map[kafkit.TopicPartition]int64) (map[kafkit.TopicPartition]int64, error) {
	offs, err := c.listOffsets(ctx, specs)
	if err != nil {
		return nil, err
	}
	return plain(offs), nil
}

// Committed returns the group's committed offsets (the next offsets to read)
// for partitions; partitions without a commit are absent.
func (c *Consumer) Committed(ctx context.Context, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]int64, error) {
	offs, err := c.fetchCommitted(ctx, partitions)
	if err != nil {
		return nil, err
	}
	return plain(offs), nil
}

// fetchCommitted runs OffsetFetch (require_stable, so offsets pending in a
// transaction are waited for) against the group coordinator.
func (c *Consumer) fetchCommitted(ctx context.Context, tps []kafkit.TopicPartition) (map[kafkit.TopicPartition]offsetEpoch, error) {
	if c.cfg.GroupID == "" {
		return nil, ErrNoGroup
	}
	ids, err := c.topicIDs(ctx, topicsOf(tps))
	if err != nil {
		return nil, err
	}
	req := client.NewOffsetFetch(c.cfg.GroupID, tps, ids.byName)
	req.RequireStable = true

	out := make(map[kafkit.TopicPartition]offsetEpoch)
	err = c.retry(ctx, "OffsetFetch", func() error {
		coord, err := c.coordinator(ctx)
		if err != nil {
			return err
		}
		kresp, err := c.cl.RequestBroker(ctx, coord, req)
		if err != nil {
			c.lostCoordinator(coord)
			return err
		}
		return client.ReadOffsetFetch(kresp.(*kmsg.OffsetFetchResponse), ids.byID,
			func(code int16) error { return c.coordinatorErr(coord, code) },
			func(tp kafkit.TopicPartition, offset int64, epoch int32, code int16) error {
				if err := kerr.ErrorForCode(code); err != nil {
					return fmt.Errorf("OffsetFetch %s[%d]: %w", tp.Topic, tp.Partition, err)
				}
				if offset >= 0 {
					out[tp] = offsetEpoch{offset, epoch}
				}
				return nil
			})
	})
	return out, err
}

// topicIDMap maps topic names and ids both ways (requests from Fetch v13,
// OffsetFetch v10 and OffsetCommit v10 name topics by id).
type topicIDMap struct {
	byName map[string][16]byte
	byID   map[[16]byte]string
}

func (c *Consumer) topicIDs(ctx context.Context, topics []string) (topicIDMap, error) {
	m := topicIDMap{byName: make(map[string][16]byte), byID: make(map[[16]byte]string)}
	if len(topics) == 0 {
		return m, nil
	}
	md, err := c.cl.Metadata(ctx, topics...)
	if err != nil {
		return m, err
	}
	for _, t := range md.Topics {
		m.byName[t.Name] = t.ID
		m.byID[t.ID] = t.Name
	}
	return m, nil
}

// coordinatorErr maps a group-level error code, forgetting the coordinator
// when it moved.
func (c *Consumer) coordinatorErr(coord int32, code int16) error {
	err := kerr.ErrorForCode(code)
	if errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable) {
		c.lostCoordinator(coord)
	}
	return err
}

// resolvePositions sets the position of partitions that need one: the
// committed offset when the group has one (unless the partition is being
// reset after OFFSET_OUT_OF_RANGE), else per auto.offset.reset.
func (c *Consumer) resolvePositions(ctx context.Context, tps []kafkit.TopicPartition) error {
	c.mu.Lock()
	states := make(map[kafkit.TopicPartition]*partState, len(tps))
	var fromCommit []kafkit.TopicPartition
	for _, tp := range tps {
		if ps, ok := c.parts[tp]; ok && ps.needPosition && ps.err == nil {
			states[tp] = ps
			if !ps.resetting {
				fromCommit = append(fromCommit, tp)
			}
		}
	}
	c.mu.Unlock()
	if len(states) == 0 {
		return nil
	}

	committed := map[kafkit.TopicPartition]offsetEpoch{}
	if c.cfg.GroupID != "" && len(fromCommit) > 0 {
		var err error
		if committed, err = c.fetchCommitted(ctx, fromCommit); err != nil {
			return err
		}
	}
	specs := make(map[kafkit.TopicPartition]int64)
	var noOffset []kafkit.TopicPartition
	for tp := range states {
		if _, ok := committed[tp]; ok {
			continue
		}
		switch c.cfg.AutoOffsetReset {
		case OffsetResetEarliest:
			specs[tp] = kafkit.OffsetEarliest
		case OffsetResetLatest:
			specs[tp] = kafkit.OffsetLatest
		default:
			noOffset = append(noOffset, tp)
		}
	}
	reset, err := c.listOffsets(ctx, specs)
	if err != nil {
		return err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, ps := range states {
		if c.parts[tp] != ps || !ps.needPosition { // revoked or sought meanwhile
			continue
		}
		o, ok := committed[tp]
		if !ok {
			o, ok = reset[tp]
		}
		if ok {
			ps.needPosition, ps.resetting = false, false
			ps.position, ps.fetchOffset, ps.epoch = o.offset, o.offset, o.epoch
		}
	}
	for _, tp := range noOffset {
		if ps := c.parts[tp]; ps == states[tp] && ps.needPosition {
			ps.err = fmt.Errorf("%w: %s[%d]", ErrNoOffset, tp.Topic, tp.Partition)
		}
	}
	if len(noOffset) > 0 {
		signal(c.wake)
	}
	signal(c.fetchWake)
	return nil
}
