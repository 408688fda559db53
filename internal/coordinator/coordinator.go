package coordinator

import (
	"context"
	"crypto/rand"
	"fmt"
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
	// loaded says, by partition of __consumer_offsets, whether its groups
	// are here (see load.go).
	loaded []bool
	// deferred are transaction completions whose marker was written to a
	// partition not loaded yet (see CompleteTxnOffsets).
	deferred map[int32][]deferredCompletion
	groups   map[string]*group
	txns     txnIndex // groups with offsets of open transactions
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
		loaded: make([]bool, cfg.NumPartitions), deferred: make(map[int32][]deferredCompletion),
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
			c.expireOffsets(now) // only loaded groups are here
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
// (on a cluster) the group's partition is led by another broker, whose
// coordinator the client must find, or its state is still loading. A
// partition this broker has stopped leading is NOT_COORDINATOR before its
// unload reaches the loop.
func (c *Coordinator) unavailable(group string) *kerr.Error {
	p := c.PartitionFor(group)
	switch {
	case c.cfg.Owns != nil && !c.cfg.Owns(p):
		return kerr.NotCoordinator
	case !c.loaded[p]:
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// loading reports whether a partition this coordinator serves is still
// loading (ListGroups answers COORDINATOR_LOAD_IN_PROGRESS then, as
// Kafka's does).
func (c *Coordinator) loading() bool {
	for p, ok := range c.loaded {
		if !ok && (c.cfg.Owns == nil || c.cfg.Owns(int32(p))) {
			return true
		}
	}
	return false
}
