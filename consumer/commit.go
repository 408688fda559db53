package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func timerC(d time.Duration) <-chan time.Time {
	return time.After(d)
}

// consumedLocked returns the position of every assigned partition whose
// position is known: the offsets of records Poll already returned, plus one.
// Called with c.mu held.
func (c *Consumer) consumedLocked(only []kafkit.TopicPartition) map[kafkit.TopicPartition]offsetEpoch {
	out := make(map[kafkit.TopicPartition]offsetEpoch)
	add := func(tp kafkit.TopicPartition) {
		if ps, ok := c.parts[tp]; ok && !ps.needPosition {
			out[tp] = offsetEpoch{ps.position, ps.epoch}
		}
	}
	if only != nil {
		for _, tp := range only {
			add(tp)
		}
		return out
	}
	for tp := range c.parts {
		add(tp)
	}
	return out
}

// Commit synchronously commits the position of every assigned partition:
// everything Poll has returned so far.
func (c *Consumer) Commit(ctx context.Context) error {
	c.mu.Lock()
	offsets := c.consumedLocked(nil)
	c.mu.Unlock()
	return c.commit(ctx, offsets)
}

// CommitOffsets synchronously commits offsets: for each partition, the next
// offset the group should read.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[kafkit.TopicPartition]int64) error {
	return c.commit(ctx, withoutEpochs(offsets))
}

// CommitAsync commits offsets (every position when nil) on a background
// goroutine and calls cb, if not nil, with the outcome. Commits are not
// ordered with respect to each other; a later synchronous Commit is.
func (c *Consumer) CommitAsync(offsets map[kafkit.TopicPartition]int64, cb func(map[kafkit.TopicPartition]int64, error)) {
	var oe map[kafkit.TopicPartition]offsetEpoch
	if offsets == nil {
		c.mu.Lock()
		oe = c.consumedLocked(nil)
		c.mu.Unlock()
	} else {
		oe = withoutEpochs(offsets)
	}
	c.commitInBackground(oe, cb)
}

func (c *Consumer) commitInBackground(oe map[kafkit.TopicPartition]offsetEpoch, cb func(map[kafkit.TopicPartition]int64, error)) {
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if closed {
		if cb != nil {
			cb(plain(oe), ErrClosed)
		}
		return
	}
	ticket := c.takeTicket()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DefaultAPITimeout)
		defer cancel()
		err := c.commitInTurn(ctx, ticket, oe)
		if cb != nil {
			cb(plain(oe), err)
		}
	}()
}

func withoutEpochs(offsets map[kafkit.TopicPartition]int64) map[kafkit.TopicPartition]offsetEpoch {
	out := make(map[kafkit.TopicPartition]offsetEpoch, len(offsets))
	for tp, o := range offsets {
		out[tp] = offsetEpoch{o, -1}
	}
	return out
}

func plain(oe map[kafkit.TopicPartition]offsetEpoch) map[kafkit.TopicPartition]int64 {
	out := make(map[kafkit.TopicPartition]int64, len(oe))
	for tp, o := range oe {
		out[tp] = o.offset
	}
	return out
}

// maybeAutoCommit commits, in the background, what earlier Polls returned,
// once auto.commit.interval.ms has passed and something changed since the
// last automatic commit. Poll runs it on entry and while it waits for records
// (the caller is back in Poll, so it is done with the records it had). It
// returns when it wants to run next (zero: never).
func (c *Consumer) maybeAutoCommit() time.Duration {
	if c.cfg.DisableAutoCommit || c.cfg.GroupID == "" {
		return 0
	}
	c.mu.Lock()
	if wait := c.cfg.AutoCommitInterval - time.Since(c.lastAuto); wait > 0 {
		c.mu.Unlock()
		return wait
	}
	c.lastAuto = time.Now()
	offsets := c.consumedLocked(nil)
	if maps.Equal(offsets, c.lastAutoOffsets) {
		offsets = nil
	} else {
		c.lastAutoOffsets = offsets
	}
	c.mu.Unlock()
	if len(offsets) > 0 {
		c.commitInBackground(offsets, nil)
	}
	return c.cfg.AutoCommitInterval
}

// takeTicket fixes a commit's place in line: commits reach the coordinator in
// the order they were asked for, so an earlier asynchronous commit can never
// overwrite a later one.
func (c *Consumer) takeTicket() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.commitNext
	c.commitNext++
	return t
}

// commit commits offsets after every commit asked for before it.
func (c *Consumer) commit(ctx context.Context, offsets map[kafkit.TopicPartition]offsetEpoch) error {
	return c.commitInTurn(ctx, c.takeTicket(), offsets)
}

func (c *Consumer) commitInTurn(ctx context.Context, ticket uint64, offsets map[kafkit.TopicPartition]offsetEpoch) error {
	c.mu.Lock()
	for c.commitTurn != ticket {
		c.commitCond.Wait()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.commitTurn++
		c.commitCond.Broadcast()
		c.mu.Unlock()
	}()
	return c.sendCommit(ctx, offsets)
}

// sendCommit sends OffsetCommit to the coordinator with the current
// generation and member id (generation -1 for manually assigned consumers),
// retrying retriable errors until ctx ends. ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID and REBALANCE_IN_PROGRESS fail with ErrCommitFailed.
func (c *Consumer) sendCommit(ctx context.Context, offsets map[kafkit.TopicPartition]offsetEpoch) (err error) {
	if c.cfg.GroupID == "" {
		return ErrNoGroup
	}
	if len(offsets) == 0 {
		return nil
	}
	defer func() { c.icpt.OnCommit(ctx, plain(offsets), err) }()
	tps := make([]kafkit.TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	ids, err := c.topicIDs(ctx, topicsOf(tps))
	if err != nil {
		return err
	}
	return c.retry(ctx, "OffsetCommit", func() error {
		coord, err := c.coordinator(ctx)
		if err != nil {
			return err
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = c.cfg.GroupID
		req.Generation, req.MemberID, req.InstanceID = -1, "", nil
		if c.group != nil && !c.isManual() {
			req.Generation, req.MemberID, req.InstanceID = c.group.identity()
		}
		byTopic := make(map[string]*kmsg.OffsetCommitRequestTopic)
		for _, tp := range tps {
			t := byTopic[tp.Topic]
			if t == nil {
				nt := kmsg.NewOffsetCommitRequestTopic()
				nt.Topic, nt.TopicID = tp.Topic, ids.byName[tp.Topic]
				t = &nt
				byTopic[tp.Topic] = t
			}
			p := kmsg.NewOffsetCommitRequestTopicPartition()
			p.Partition, p.Offset, p.LeaderEpoch = tp.Partition, offsets[tp].offset, offsets[tp].epoch
			t.Partitions = append(t.Partitions, p)
		}
		for t := range maps.Values(byTopic) {
			req.Topics = append(req.Topics, *t)
		}
		kresp, err := c.cl.RequestBroker(ctx, coord, req)
		if err != nil {
			c.lostCoordinator(coord)
			return err
		}
		var errs []error
		for _, t := range kresp.(*kmsg.OffsetCommitResponse).Topics {
			name := t.Topic
			if name == "" {
				name = ids.byID[t.TopicID]
			}
			for _, p := range t.Partitions {
				perr := c.coordinatorErr(coord, p.ErrorCode)
				switch {
				case perr == nil:
				case errors.Is(perr, kerr.IllegalGeneration), errors.Is(perr, kerr.UnknownMemberID),
					errors.Is(perr, kerr.RebalanceInProgress), errors.Is(perr, kerr.FencedInstanceID):
					if c.group != nil {
						c.group.requestRejoin()
					}
					return fmt.Errorf("%w: %s[%d]: %w", ErrCommitFailed, name, p.Partition, perr)
				default:
					errs = append(errs, fmt.Errorf("OffsetCommit %s[%d]: %w", name, p.Partition, perr))
				}
			}
		}
		return errors.Join(errs...)
	})
}

func (c *Consumer) isManual() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.manual
}
