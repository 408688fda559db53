package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	return c.retryIf(ctx, what, op, client.IsRetriable)
}

// retryIf is retry with its own test of which errors are retriable.
func (c *Consumer) retryIf(ctx context.Context, what string, op func() error, retriable func(error) bool) error {
	bo := client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax)
	for {
		err := op()
		if err == nil || !retriable(err) {
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
// is that recent). It retries partitions that failed with retriable errors
// until ctx ends.
func (c *Consumer) listOffsets(ctx context.Context, specs map[kafkit.TopicPartition]int64) (map[kafkit.TopicPartition]offsetEpoch, error) {
	out := make(map[kafkit.TopicPartition]offsetEpoch, len(specs))
	err := c.retry(ctx, "ListOffsets", func() error {
		got, failed, err := c.listOffsetsOnce(ctx, pick(specs, missing(specs, out)))
		if err != nil {
			return err
		}
		maps.Copy(out, got)
		var retriable error
		for _, ferr := range failed {
			if !client.IsRetriable(ferr) {
				return ferr
			}
			retriable = ferr
		}
		return retriable
	})
	return out, err
}

// listOffsetsOnce sends one ListOffsets to each partition's leader and
// returns the offsets found and, per partition, why there is none; err is
// for failures of the whole attempt (metadata).
func (c *Consumer) listOffsetsOnce(ctx context.Context, specs map[kafkit.TopicPartition]int64) (map[kafkit.TopicPartition]offsetEpoch, map[kafkit.TopicPartition]error, error) {
	out := make(map[kafkit.TopicPartition]offsetEpoch, len(specs))
	r, err := c.leaders(ctx, slices.Collect(maps.Keys(specs)))
	if err != nil {
		return nil, nil, err
	}
	failed := r.failed
	if failed == nil {
		failed = make(map[kafkit.TopicPartition]error)
	}
	c.askLeaders(ctx, r, "ListOffsets", failed, func(tps []kafkit.TopicPartition) kmsg.Request {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.IsolationLevel = c.isolationLevel()
		for _, tp := range tps {
			p := kmsg.NewListOffsetsRequestTopicPartition()
			p.Partition, p.Timestamp, p.CurrentLeaderEpoch = tp.Partition, specs[tp], r.epoch(tp)
			req.Topics = addToTopic(req.Topics, tp.Topic, kmsg.NewListOffsetsRequestTopic,
				func(t *kmsg.ListOffsetsRequestTopic) (*string, *[]kmsg.ListOffsetsRequestTopicPartition) {
					return &t.Topic, &t.Partitions
				}, p)
		}
		return req
	}, func(kresp kmsg.Response, ok func(kafkit.TopicPartition, int16) bool) {
		for _, t := range kresp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if tp := (kafkit.TopicPartition{Topic: t.Topic, Partition: p.Partition}); ok(tp, p.ErrorCode) {
					out[tp] = offsetEpoch{p.Offset, p.LeaderEpoch}
				}
			}
		}
	})
	return out, failed, nil
}

// askLeaders sends each leader in r the request build makes for its
// partitions, and hands each response to read, whose ok records a
// partition's error code in failed (forgetting the topic's metadata when the
// error is retriable) and reports whether the partition succeeded. A request
// that fails fails its partitions.
func (c *Consumer) askLeaders(ctx context.Context, r routes, what string, failed map[kafkit.TopicPartition]error,
	build func([]kafkit.TopicPartition) kmsg.Request, read func(kmsg.Response, func(kafkit.TopicPartition, int16) bool)) {
	for leader, tps := range r.byLeader {
		kresp, err := c.cl.RequestBroker(ctx, leader, build(tps))
		if err != nil {
			for _, tp := range tps {
				failed[tp] = err
			}
			continue
		}
		read(kresp, func(tp kafkit.TopicPartition, code int16) bool {
			err := kerr.ErrorForCode(code)
			if err == nil {
				return true
			}
			if client.IsRetriable(err) {
				c.cl.InvalidateMetadata(tp.Topic)
			}
			failed[tp] = fmt.Errorf("%s %s[%d]: %w", what, tp.Topic, tp.Partition, err)
			return false
		})
	}
}

// addToTopic adds p to topics, the topic list of a request, under topic:
// to the last entry when it is that topic (callers add partitions sorted by
// topic), else to a new entry from newTopic. fields exposes an entry's name
// and partitions.
func addToTopic[T, P any](topics []T, topic string, newTopic func() T, fields func(*T) (*string, *[]P), p P) []T {
	if n := len(topics); n > 0 {
		if name, parts := fields(&topics[n-1]); *name == topic {
			*parts = append(*parts, p)
			return topics
		}
	}
	t := newTopic()
	name, parts := fields(&t)
	*name, *parts = topic, append(*parts, p)
	return append(topics, t)
}

// pick is specs restricted to tps.
func pick(specs map[kafkit.TopicPartition]int64, tps []kafkit.TopicPartition) map[kafkit.TopicPartition]int64 {
	out := make(map[kafkit.TopicPartition]int64, len(tps))
	for _, tp := range tps {
		out[tp] = specs[tp]
	}
	return out
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

// routes is where partitions are led, per the cached metadata.
type routes struct {
	md       *client.Metadata
	byLeader map[int32][]kafkit.TopicPartition // sorted within each leader
	failed   map[kafkit.TopicPartition]error   // no usable leader, and why; nil if none
}

// epoch is tp's leader epoch in the metadata (-1 unknown), which requests
// carry as CurrentLeaderEpoch (KIP-320) so that a stale leader refuses them.
func (r routes) epoch(tp kafkit.TopicPartition) int32 {
	if ps := r.md.Topics[tp.Topic].Partitions; int(tp.Partition) < len(ps) {
		return ps[tp.Partition].LeaderEpoch
	}
	return -1
}

// leaders groups partitions by their leader, per the cached metadata.
// Partitions without a usable leader come back in failed with the reason;
// their topics' metadata is invalidated when the reason is retriable.
func (c *Consumer) leaders(ctx context.Context, tps []kafkit.TopicPartition) (routes, error) {
	md, err := c.cl.Metadata(ctx, topicsOf(tps)...)
	if err != nil {
		return routes{}, err
	}
	r := routes{md: md, byLeader: make(map[int32][]kafkit.TopicPartition)}
	slices.SortFunc(tps, compareTP)
	for i, tp := range tps {
		t := md.Topics[tp.Topic]
		var err error
		switch {
		case t.Err != nil:
			err = fmt.Errorf("topic %s: %w", tp.Topic, t.Err)
		case int(tp.Partition) >= len(t.Partitions):
			err = fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, kerr.UnknownTopicOrPartition)
		case t.Partitions[tp.Partition].Leader < 0:
			err = fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, kerr.LeaderNotAvailable)
		default:
			leader := t.Partitions[tp.Partition].Leader
			to, ok := r.byLeader[leader]
			if !ok { // room for the rest at once: often one leader has all (one allocation per Fetch, not one per doubling)
				to = make([]kafkit.TopicPartition, 0, len(tps)-i)
			}
			r.byLeader[leader] = append(to, tp)
			continue
		}
		if r.failed == nil { // made only when needed: the fetcher asks once per Fetch
			r.failed = make(map[kafkit.TopicPartition]error)
		}
		r.failed[tp] = err
		if client.IsRetriable(err) {
			c.cl.InvalidateMetadata(tp.Topic)
		}
	}
	return r, nil
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
	if len(topics) == 0 {
		return idsOf(&client.Metadata{}), nil
	}
	md, err := c.cl.Metadata(ctx, topics...)
	if err != nil {
		return topicIDMap{}, err
	}
	return idsOf(md), nil
}

func idsOf(md *client.Metadata) topicIDMap {
	m := topicIDMap{byName: make(map[string][16]byte), byID: make(map[[16]byte]string)}
	for _, t := range md.Topics {
		m.byName[t.Name] = t.ID
		m.byID[t.ID] = t.Name
	}
	return m
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

// resolvePositions sets the position of partitions that need one, in one
// attempt: the committed offset when the group has one (unless the
// partition is being reset after OFFSET_OUT_OF_RANGE), else per
// auto.offset.reset. It returns, per partition, why it has none yet; a
// partition without an offset under auto.offset.reset=none gets ErrNoOffset
// as its error for Poll. One partition's failure never holds back another.
func (c *Consumer) resolvePositions(ctx context.Context, tps []kafkit.TopicPartition) map[kafkit.TopicPartition]error {
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
	failed := make(map[kafkit.TopicPartition]error)
	if len(states) == 0 {
		return failed
	}

	committed := map[kafkit.TopicPartition]offsetEpoch{}
	if c.cfg.GroupID != "" && len(fromCommit) > 0 {
		var err error
		if committed, err = c.fetchCommitted(ctx, fromCommit); err != nil {
			for _, tp := range fromCommit {
				failed[tp] = err
			}
		}
	}
	specs := make(map[kafkit.TopicPartition]int64)
	var noOffset []kafkit.TopicPartition
	for tp := range states {
		if _, ok := committed[tp]; ok || failed[tp] != nil {
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
	var reset map[kafkit.TopicPartition]offsetEpoch
	if len(specs) > 0 {
		var listFailed map[kafkit.TopicPartition]error
		var err error
		if reset, listFailed, err = c.listOffsetsOnce(ctx, specs); err != nil {
			for tp := range specs {
				failed[tp] = err
			}
		}
		maps.Copy(failed, listFailed)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, ps := range states {
		if c.parts[tp] != ps || !ps.needPosition { // revoked or sought meanwhile
			continue
		}
		if o, ok := committed[tp]; ok {
			// KIP-320: a committed offset is validated against the
			// leader's log before it is fetched from, as Java's
			// consumer does, when the commit carries its epoch.
			ps.setPosition(o)
			ps.validate = o.epoch >= 0
		} else if o, ok := reset[tp]; ok {
			ps.setPosition(o)
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
	return failed
}

// setPosition moves ps to o (from a commit, a reset or a validation),
// dropping what was buffered. Called with c.mu held.
func (ps *partState) setPosition(o offsetEpoch) {
	ps.needPosition, ps.resetting, ps.validate = false, false, false
	ps.position, ps.fetchOffset, ps.epoch, ps.fetchEpoch = o.offset, o.offset, o.epoch, o.epoch
	ps.dropBuffered()
}

// lookUp runs position lookups (what) for partitions the fetcher marked
// busy with ps.lookup, on a goroutine of its own so that the fetcher keeps
// fetching every other partition meanwhile (Java resets and validates
// positions asynchronously too). Each partition that failed retriably backs
// off on its own (retry.backoff.ms doubling up to retry.backoff.max.ms); a
// non-retriable failure becomes the partition's error for Poll.
func (c *Consumer) lookUp(states map[kafkit.TopicPartition]*partState, what func(context.Context, []kafkit.TopicPartition) map[kafkit.TopicPartition]error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DefaultAPITimeout)
	defer cancel()
	failed := what(ctx, slices.Collect(maps.Keys(states)))
	now := time.Now()
	c.mu.Lock()
	for tp, ps := range states {
		ps.lookup = false
		if c.parts[tp] != ps {
			continue // revoked meanwhile
		}
		err := failed[tp]
		switch {
		case err == nil:
			ps.bo = nil
		case c.ctx.Err() != nil:
		case client.IsRetriable(err) || errors.Is(err, context.DeadlineExceeded):
			c.log.Debug("position lookup failed; backing off", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			ps.backOff(c.cfg, now)
		case ps.err == nil:
			ps.err = fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, err)
			signal(c.wake)
		}
	}
	c.mu.Unlock()
	signal(c.fetchWake)
}

// backOff holds ps back from lookups and fetches for its next back-off:
// retry.backoff.ms, doubling with each consecutive failure up to
// retry.backoff.max.ms. Called with c.mu held.
func (ps *partState) backOff(cfg Config, now time.Time) {
	if ps.bo == nil {
		ps.bo = client.NewBackoff(cfg.RetryBackoff, cfg.RetryBackoffMax)
	}
	ps.retryAt = now.Add(ps.bo.NextBackOff())
}

// validatePositions checks partitions' positions against their leaders'
// logs with OffsetForLeaderEpoch (KIP-320), after a leader change, a
// FENCED_LEADER_EPOCH or a position taken from a commit: the leader returns
// where the epoch of the last record consumed ends in its log. If that is
// before the position, the log was truncated under the consumer (an unclean
// leader election): it moves back to the end of that epoch, or with
// auto.offset.reset=none the partition fails with ErrLogTruncation. When the
// leader does not know the epoch, the position is reset per
// auto.offset.reset (ErrLogTruncation under none). Partitions whose position has no epoch need no check.
func (c *Consumer) validatePositions(ctx context.Context, tps []kafkit.TopicPartition) map[kafkit.TopicPartition]error {
	type ask struct {
		ps  *partState
		pos offsetEpoch
	}
	asks := make(map[kafkit.TopicPartition]ask, len(tps))
	c.mu.Lock()
	for _, tp := range tps {
		if ps, ok := c.parts[tp]; ok && ps.validate && !ps.needPosition {
			if ps.epoch < 0 {
				ps.validate = false
				continue
			}
			asks[tp] = ask{ps, offsetEpoch{ps.position, ps.epoch}}
		}
	}
	c.mu.Unlock()
	failed := make(map[kafkit.TopicPartition]error)
	if len(asks) == 0 {
		return failed
	}
	r, err := c.leaders(ctx, slices.Collect(maps.Keys(asks)))
	if err != nil {
		for tp := range asks {
			failed[tp] = err
		}
		return failed
	}
	maps.Copy(failed, r.failed)
	ends := make(map[kafkit.TopicPartition]offsetEpoch)
	c.askLeaders(ctx, r, "OffsetForLeaderEpoch", failed, func(tps []kafkit.TopicPartition) kmsg.Request {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		for _, tp := range tps {
			p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = tp.Partition, r.epoch(tp), asks[tp].pos.epoch
			req.Topics = addToTopic(req.Topics, tp.Topic, kmsg.NewOffsetForLeaderEpochRequestTopic,
				func(t *kmsg.OffsetForLeaderEpochRequestTopic) (*string, *[]kmsg.OffsetForLeaderEpochRequestTopicPartition) {
					return &t.Topic, &t.Partitions
				}, p)
		}
		return req
	}, func(kresp kmsg.Response, ok func(kafkit.TopicPartition, int16) bool) {
		for _, t := range kresp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
			for _, p := range t.Partitions {
				if tp := (kafkit.TopicPartition{Topic: t.Topic, Partition: p.Partition}); ok(tp, p.ErrorCode) {
					ends[tp] = offsetEpoch{p.EndOffset, p.LeaderEpoch}
				}
			}
		}
	})

	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, end := range ends {
		a := asks[tp]
		if c.parts[tp] != a.ps || !a.ps.validate || a.ps.position != a.pos.offset {
			continue // revoked or sought meanwhile
		}
		c.truncatedLocked(tp, a.ps, a.pos.offset, end)
	}
	return failed
}

// truncatedLocked applies where the epoch of the record before offset ends
// in the leader's log (from OffsetForLeaderEpoch, or a fetch's
// DivergingEpoch) to ps, as Java's SubscriptionState.maybeCompleteValidation
// does. Called with c.mu held.
func (c *Consumer) truncatedLocked(tp kafkit.TopicPartition, ps *partState, offset int64, end offsetEpoch) {
	unknown := end.offset < 0 || end.epoch < 0
	switch {
	case (unknown || end.offset < offset) && c.cfg.AutoOffsetReset == OffsetResetNone:
		ps.err = fmt.Errorf("%w: %s[%d] at offset %d: the leader's log diverges from offset %d (epoch %d; -1: unknown)", ErrLogTruncation, tp.Topic, tp.Partition, offset, end.offset, end.epoch)
		ps.dropBuffered()
		signal(c.wake)
	case unknown:
		c.log.Info("the leader does not know the position's epoch; resetting", "topic", tp.Topic, "partition", tp.Partition, "offset", offset, "auto_offset_reset", c.cfg.AutoOffsetReset)
		ps.needPosition, ps.resetting, ps.validate = true, true, false
		ps.dropBuffered()
	case end.offset < offset:
		c.log.Info("log truncation detected; resuming at the first offset known to diverge", "topic", tp.Topic, "partition", tp.Partition, "offset", offset, "diverges_at", end.offset, "epoch", end.epoch)
		ps.setPosition(end)
	default:
		ps.validate = false
	}
}
