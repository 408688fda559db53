package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
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
// everything Poll has returned so far. Without a deadline in ctx it gives
// up after default.api.timeout.ms, as Java's commitSync does. A group member
// commits only in a stable generation and never into a later one: a commit
// made while the member rejoins, or whose generation ended before it was
// accepted, fails with ErrCommitFailed.
func (c *Consumer) Commit(ctx context.Context) error {
	c.mu.Lock()
	offsets := c.consumedLocked(nil)
	c.mu.Unlock()
	ctx, cancel := c.withAPITimeout(ctx)
	defer cancel()
	return c.commit(ctx, offsets)
}

// CommitOffsets synchronously commits offsets: for each partition, the next
// offset the group should read. It is bounded and tied to its generation as
// Commit is.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[kafkit.TopicPartition]int64) error {
	ctx, cancel := c.withAPITimeout(ctx)
	defer cancel()
	return c.commit(ctx, withoutEpochs(offsets))
}

// withAPITimeout bounds ctx by default.api.timeout.ms unless it has a
// deadline already.
func (c *Consumer) withAPITimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.DefaultAPITimeout)
}

// CommitAsync commits offsets (every position when nil) on a background
// goroutine and calls cb, if not nil, with the outcome. As Java's
// commitAsync, it is sent once, never retried, and only in the generation it
// was asked in. Commits reach the coordinator in the order they were asked
// for.
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
	turn := c.commitTurn()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DefaultAPITimeout)
		defer cancel()
		err := turn.run(ctx, func() error { return c.sendCommit(ctx, turn.member, oe, false) })
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
// last automatic commit that succeeded. Poll runs it on entry and while it
// waits for records (the caller is back in Poll, so it is done with the
// records it had). It returns when it wants to run next (zero: never).
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
	}
	c.mu.Unlock()
	if len(offsets) > 0 {
		c.commitInBackground(offsets, func(_ map[kafkit.TopicPartition]int64, err error) {
			if err == nil {
				c.mu.Lock()
				c.lastAutoOffsets = offsets
				c.mu.Unlock()
			}
		})
	}
	return c.cfg.AutoCommitInterval
}

// commitTurn is a commit's place in line, taken when the commit is asked
// for: commits reach the coordinator in that order, so an earlier
// asynchronous commit can never overwrite a later one. It also fixes the
// membership the commit carries.
type commitTurn struct {
	prev, mine chan struct{} // the commit before is done; this one is done
	member     membership
	err        error // no stable membership to commit in
}

func (c *Consumer) commitTurn() *commitTurn {
	t := &commitTurn{mine: make(chan struct{})}
	t.member, t.err = c.commitMembership()
	c.mu.Lock()
	t.prev, c.commitTail = c.commitTail, t.mine
	c.mu.Unlock()
	return t
}

// run waits for the commits before this one (until ctx ends: the commit is
// then not sent, and those after it wait for the ones before) and sends it.
func (t *commitTurn) run(ctx context.Context, send func() error) error {
	select {
	case <-t.prev:
	case <-ctx.Done():
		go func() {
			<-t.prev
			close(t.mine)
		}()
		return fmt.Errorf("OffsetCommit: waiting for earlier commits: %w", ctx.Err())
	}
	defer close(t.mine)
	if t.err != nil {
		return t.err
	}
	return send()
}

// commitMembership returns the membership a commit asked for now carries:
// generation -1 for a manually assigned consumer, the stable generation of a
// group member, or ErrCommitFailed while it has none.
func (c *Consumer) commitMembership() (membership, error) {
	if c.group == nil || c.isManual() {
		return membership{generation: -1}, nil
	}
	m, ok := c.group.stableIdentity()
	if !ok {
		return m, fmt.Errorf("%w: the member is joining the group or lost its membership", ErrCommitFailed)
	}
	return m, nil
}

// commit commits offsets after every commit asked for before it, retrying
// retriable errors while its generation lasts.
func (c *Consumer) commit(ctx context.Context, offsets map[kafkit.TopicPartition]offsetEpoch) error {
	t := c.commitTurn()
	return t.run(ctx, func() error { return c.sendCommit(ctx, t.member, offsets, true) })
}

// sendCommit sends OffsetCommit to the coordinator for member m, retrying
// retriable errors until ctx ends when retry is set. It fails with
// ErrCommitFailed, without sending, once m's generation is over, and when
// the coordinator answers ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID (which end the membership unless it has moved on
// already) or REBALANCE_IN_PROGRESS.
func (c *Consumer) sendCommit(ctx context.Context, m membership, offsets map[kafkit.TopicPartition]offsetEpoch, retry bool) (err error) {
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
	op := func() error {
		if m.generation >= 0 {
			now, ok := c.group.stableIdentity()
			if !ok || now.memberID != m.memberID || !m.epochs && now.generation != m.generation {
				return fmt.Errorf("%w: generation %d ended before the commit was accepted", ErrCommitFailed, m.generation)
			}
			m.generation = now.generation // a member epoch moves on within the membership
		}
		coord, err := c.coordinator(ctx)
		if err != nil {
			return err
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = c.cfg.GroupID
		req.Generation, req.MemberID, req.InstanceID = m.generation, m.memberID, m.instanceID
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
				case lostMembership(perr), errors.Is(perr, kerr.RebalanceInProgress), errors.Is(perr, kerr.FencedInstanceID):
					if m.generation >= 0 {
						c.group.commitRejected(m.generation, perr)
					}
					return fmt.Errorf("%w: %s[%d]: %w", ErrCommitFailed, name, p.Partition, perr)
				case errors.Is(perr, kerr.StaleMemberEpoch) && retry:
					// The member epoch moved on since the commit was sent
					// (brokers before KIP-1251 accept only the latest): a
					// synchronous commit is sent again with the epoch the
					// heartbeat brings, as Java's commitSync does.
					return errStaleEpoch{fmt.Errorf("OffsetCommit %s[%d]: %w", name, p.Partition, perr)}
				case errors.Is(perr, kerr.StaleMemberEpoch):
					return fmt.Errorf("%w: %s[%d]: %w", ErrCommitFailed, name, p.Partition, perr)
				default:
					errs = append(errs, fmt.Errorf("OffsetCommit %s[%d]: %w", name, p.Partition, perr))
				}
			}
		}
		return errors.Join(errs...)
	}
	if !retry {
		return op()
	}
	err = c.retryIf(ctx, "OffsetCommit", op, func(err error) bool {
		return client.IsRetriable(err) || errors.As(err, new(errStaleEpoch))
	})
	if stale := new(errStaleEpoch); errors.As(err, stale) {
		// Out of time before the heartbeat brought a newer epoch.
		err = fmt.Errorf("%w: %w", ErrCommitFailed, stale.error)
	}
	return err
}

// errStaleEpoch is a commit answered STALE_MEMBER_EPOCH, retried while
// ctx lasts.
type errStaleEpoch struct{ error }

func (e errStaleEpoch) Unwrap() error { return e.error }

func (c *Consumer) isManual() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.manual
}
