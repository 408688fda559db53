package coordinator

import (
	"context"
	"crypto/rand"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Coordinator is the group coordinator. Create it with New, run its loop
// with Run, feed it the durable records with Load, then serve requests.
type Coordinator struct {
	cfg   Config
	store Store
	log   *slog.Logger

	ops  chan func()   // work for the Run goroutine, in arrival order
	done chan struct{} // closed when Run returns

	// Owned by the Run goroutine.
	loaded bool
	groups map[string]*group
	txns   txnIndex // groups with offsets of open transactions
}

// New returns a coordinator that writes its state through store. It answers
// COORDINATOR_LOAD_IN_PROGRESS until Load has finished.
func New(cfg Config, store Store) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("group coordinator config: %w", err)
	}
	if store == nil {
		return nil, fmt.Errorf("group coordinator: nil Store")
	}
	cfg = cfg.withDefaults()
	return &Coordinator{
		cfg: cfg, store: store, log: cfg.Logger,
		ops: make(chan func()), done: make(chan struct{}),
		groups: make(map[string]*group), txns: make(txnIndex),
	}, nil
}

// PartitionFor is the __consumer_offsets partition of group under this
// coordinator's partition count.
func (c *Coordinator) PartitionFor(group string) int32 {
	return PartitionFor(group, c.cfg.NumPartitions)
}

// Run is the coordinator's loop; it owns every group and returns when ctx
// is done, after which calls fail with ErrClosed and pending JoinGroup and
// SyncGroup calls return ErrClosed.
func (c *Coordinator) Run(ctx context.Context) {
	defer close(c.done)
	expire := time.NewTicker(c.cfg.RetentionCheck)
	defer expire.Stop()
	defer c.stopTimers()
	for {
		select {
		case <-ctx.Done():
			return
		case fn := <-c.ops:
			fn()
		case now := <-expire.C:
			if c.loaded {
				c.expireOffsets(now)
			}
		}
	}
}

func (c *Coordinator) stopTimers() {
	for _, g := range c.groups {
		if g.rebalance != nil {
			g.rebalance.Stop()
		}
		for _, t := range g.pending {
			t.Stop()
		}
		for _, m := range g.members {
			if m.heartbeat != nil {
				m.heartbeat.Stop()
			}
		}
		if g.consumer != nil {
			for _, m := range g.consumer.members {
				c.stopConsumerTimers(m)
			}
		}
	}
}

// Load replays the records of __consumer_offsets (every partition, each in
// offset order, markers included) and then starts answering requests. It
// decodes on the caller's goroutine, so the loop keeps answering
// COORDINATOR_LOAD_IN_PROGRESS meanwhile. A record that cannot be decoded
// fails the load. Offsets of transactions without a marker stay pending
// until CompleteTxnOffsets.
func (c *Coordinator) Load(ctx context.Context, recs iter.Seq2[LogRecord, error]) error {
	l := loader{cg: cgLoader{c.cfg.Topics}, groups: make(map[string]*group), txns: make(txnIndex), partitionFor: c.PartitionFor, now: time.Now()}
	for r, err := range recs {
		if err != nil {
			return fmt.Errorf("loading __consumer_offsets: %w", err)
		}
		if err := l.apply(r); err != nil {
			return fmt.Errorf("loading __consumer_offsets: %w", err)
		}
	}
	for id, g := range l.groups {
		if g.consumer != nil {
			l.cg.finish(g, l.now)
		}
		if g.protocolType == "" && g.generation == 0 && len(g.offsets) == 0 && len(g.txnOffsets) == 0 {
			delete(l.groups, id) // only tombstones remained
		}
	}
	_, err := call(ctx, c, func() struct{} {
		c.groups, c.txns = l.groups, l.txns
		for _, g := range c.groups {
			for _, m := range g.members {
				c.scheduleHeartbeat(g, m)
			}
			if g.consumer != nil {
				for _, m := range g.consumer.members {
					c.scheduleConsumerSession(g, m)
					c.watchRevocation(g, m)
				}
			}
		}
		c.loaded = true
		c.log.Info("loaded groups", "groups", len(c.groups))
		return struct{}{}
	})
	return err
}

// call runs fn on the loop and returns its result.
func call[T any](ctx context.Context, c *Coordinator, fn func() T) (T, error) {
	ch := make(chan T, 1)
	var zero T
	select {
	case c.ops <- func() { ch <- fn() }:
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-c.done:
		return zero, ErrClosed
	}
	return wait(ctx, c, ch)
}

// wait receives a result the loop sends later (JoinGroup, SyncGroup).
func wait[T any](ctx context.Context, c *Coordinator, ch <-chan T) (T, error) {
	var zero T
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-c.done:
		select { // the answer may have been sent just before Run returned
		case v := <-ch:
			return v, nil
		default:
			return zero, ErrClosed
		}
	}
}

// afterFunc runs fn on the loop after d.
func (c *Coordinator) afterFunc(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		select {
		case c.ops <- fn:
		case <-c.done:
		}
	})
}

// newMemberID is Kafka's "<prefix>-<uuid>" (prefix: client.id, or
// group.instance.id for static members).
func newMemberID(prefix string) string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// storeGroup writes the group's metadata record.
func (c *Coordinator) storeGroup(g *group) error {
	_, err := c.store.Append(c.PartitionFor(g.id), []Record{{Key: groupKey(g.id), Value: groupValue(g)}})
	return err
}

// unavailable is why this coordinator cannot serve a group's request now:
// its state is still loading, or (on a cluster) the group's partition is
// led by another broker, whose coordinator the client must find.
func (c *Coordinator) unavailable(group string) *kerr.Error {
	switch {
	case !c.loaded:
		return kerr.CoordinatorLoadInProgress
	case c.cfg.Owns != nil && !c.cfg.Owns(c.PartitionFor(group)):
		return kerr.NotCoordinator
	}
	return nil
}
