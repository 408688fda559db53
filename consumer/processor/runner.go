package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/producer"
)

// Runner consumes topics as a consumer group member and runs the handler on
// every record. Create it with New and call Run once.
type Runner struct {
	cfg  Config
	log  *slog.Logger
	used atomic.Bool // Run was called

	// Set up by Run before any rebalance callback can run.
	cons  *consumer.Consumer
	dlt   *producer.Producer
	sched *scheduler
	// stopAll and abandonAll are the parents of every tracker's stop and
	// abandon contexts.
	stopAll, abandonAll             context.Context
	cancelStopAll, cancelAbandonAll context.CancelFunc

	// trackers holds the assigned partitions' trackers. Owned by the Run
	// goroutine: rebalance callbacks run on it too (inside Poll and Close).
	trackers map[kafkit.TopicPartition]*tracker

	pollMu        sync.Mutex         // guards interruptPoll
	interruptPoll context.CancelFunc // cancels the Poll in progress, if any
}

// New checks cfg and returns a Runner; it does not connect.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Runner{cfg: cfg, log: cfg.Logger, trackers: make(map[kafkit.TopicPartition]*tracker)}, nil
}

// Run joins the group and handles records until ctx is cancelled (it then
// shuts down as the package documentation describes and returns nil) or the
// consumer fails for good (fenced, auto.offset.reset=none without an offset;
// it then shuts down the same way and returns the error). It returns once
// every handler it started has returned, so handlers must honour their ctx.
func (r *Runner) Run(ctx context.Context) (err error) {
	if r.used.Swap(true) {
		return ErrRunning
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(r.work)
	}
	err = r.loop(ctx)
	r.shutdown()
	wg.Wait()
	return err
}

// start creates the consumer (with the runner's rebalance callbacks) and the
// dead-letter producer, and subscribes.
func (r *Runner) start(ctx context.Context) error {
	cc := r.cfg.Consumer
	cc.DisableAutoCommit = true
	user := cc
	cc.OnRevoked = func(tps []kafkit.TopicPartition) {
		r.revoke(tps)
		if user.OnRevoked != nil {
			user.OnRevoked(tps)
		}
	}
	cc.OnLost = func(tps []kafkit.TopicPartition) {
		r.lose(tps)
		if user.OnLost != nil {
			user.OnLost(tps)
		}
	}
	r.dlt = r.cfg.DeadLetterProducer
	if r.dlt == nil {
		p, err := producer.New(producer.Config{BootstrapServers: cc.BootstrapServers, ClientID: cc.ClientID, TLS: cc.TLS, SASL: cc.SASL, Logger: r.log})
		if err != nil {
			return fmt.Errorf("processor: dead-letter producer: %w", err)
		}
		r.dlt = p
	}
	cons, err := consumer.New(ctx, cc)
	if err == nil {
		r.cons = cons
		if err = cons.Subscribe(r.cfg.Topics...); err != nil {
			_ = cons.Close(ctx)
		}
	}
	if err != nil {
		r.closeProducer()
		return fmt.Errorf("processor: consumer: %w", err)
	}
	r.sched = newScheduler(r.cfg.MaxBatchSize)
	// Handlers keep ctx's values but not its cancellation, which starts
	// the shutdown rather than ending them.
	base := context.WithoutCancel(ctx)
	r.stopAll, r.cancelStopAll = context.WithCancel(base)
	r.abandonAll, r.cancelAbandonAll = context.WithCancel(base)
	return nil
}

func (r *Runner) closeProducer() {
	if r.cfg.DeadLetterProducer == nil && r.dlt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
		defer cancel()
		if err := r.dlt.Close(ctx); err != nil {
			r.log.Warn("closing the dead-letter producer", "err", err)
		}
	}
}

// loop polls and dispatches until ctx ends or the consumer fails for good,
// committing every CommitInterval.
func (r *Runner) loop(ctx context.Context) error {
	nextCommit := time.Now().Add(r.cfg.CommitInterval)
	for {
		pctx, cancel := context.WithDeadline(ctx, nextCommit)
		r.pollMu.Lock()
		r.interruptPoll = cancel
		r.pollMu.Unlock()
		recs, err := r.cons.Poll(pctx)
		r.pollMu.Lock()
		r.interruptPoll = nil
		r.pollMu.Unlock()
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			for _, rec := range recs {
				r.dispatch(rec)
			}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// Time to commit, or a partition was resumed.
		case errors.Is(err, consumer.ErrFenced), errors.Is(err, consumer.ErrClosed), errors.Is(err, consumer.ErrNoOffset):
			return fmt.Errorf("processor: %w", err)
		default:
			// Membership hiccups (a rejected commit, a rebalance):
			// the consumer recovers on a later Poll.
			r.log.Warn("poll failed", "group", r.cfg.Consumer.GroupID, "err", err)
			sleep(ctx, r.cfg.RetryBackoff)
		}
		if !time.Now().Before(nextCommit) {
			r.commit(ctx, r.trackers)
			nextCommit = time.Now().Add(r.cfg.CommitInterval)
		}
	}
}

func (r *Runner) dispatch(rec *kafkit.Record) {
	tp := kafkit.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
	t, ok := r.trackers[tp]
	if !ok {
		t = newTracker(r.stopAll, r.abandonAll, tp, r.cfg.MaxInFlightPerPartition, r.pause, r.resume)
		r.trackers[tp] = t
	}
	k := laneKey{t: t}
	if r.cfg.Ordering == OrderKey {
		k.key = string(rec.Key)
	}
	t.dispatched(rec.Offset)
	r.sched.add(k, rec)
}

func (r *Runner) pause(tp kafkit.TopicPartition) {
	if err := r.cons.Pause(tp); err != nil {
		r.log.Debug("pause", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	}
}

// resume resumes tp and interrupts the Poll in progress: records of tp
// buffered before the pause are ready at once, but Resume does not wake a
// waiting Poll, which would otherwise sleep until the next commit.
func (r *Runner) resume(tp kafkit.TopicPartition) {
	if err := r.cons.Resume(tp); err != nil {
		r.log.Debug("resume", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	}
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	if r.interruptPoll != nil {
		r.interruptPoll()
	}
}

// commit commits the finished offsets of trackers that moved.
func (r *Runner) commit(ctx context.Context, trackers map[kafkit.TopicPartition]*tracker) {
	offsets := make(map[kafkit.TopicPartition]int64)
	for tp, t := range trackers {
		if o, ok := t.toCommit(); ok {
			offsets[tp] = o
		}
	}
	if len(offsets) == 0 {
		return
	}
	if err := r.cons.CommitOffsets(ctx, offsets); err != nil {
		r.log.Warn("commit failed", "group", r.cfg.Consumer.GroupID, "err", err)
		return
	}
	for tp, o := range offsets {
		trackers[tp].setCommitted(o)
	}
}

// drain stops the trackers' work, waits up to ShutdownTimeout for what runs
// to finish, abandons the rest, and commits what finished.
func (r *Runner) drain(ts map[kafkit.TopicPartition]*tracker) {
	for _, t := range ts {
		t.stopWork()
		r.sched.drop(t)
	}
	deadline := time.NewTimer(r.cfg.ShutdownTimeout)
	defer deadline.Stop()
wait:
	for _, t := range ts {
		select {
		case <-t.idle:
		case <-deadline.C:
			break wait
		}
	}
	for tp, t := range ts {
		t.retire()
		select {
		case <-t.idle:
		default:
			r.log.Warn("abandoned running handlers", "topic", tp.Topic, "partition", tp.Partition, "timeout", r.cfg.ShutdownTimeout)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	r.commit(ctx, ts)
}

// revoke runs on the Run goroutine (inside Poll or Close) before the
// partitions go to another member.
func (r *Runner) revoke(tps []kafkit.TopicPartition) {
	ts := r.take(tps)
	if len(ts) > 0 {
		r.drain(ts)
	}
}

// lose abandons partitions whose membership expired: committing is no
// longer possible and another member may already be handling them.
func (r *Runner) lose(tps []kafkit.TopicPartition) {
	for _, t := range r.take(tps) {
		t.stopWork()
		r.sched.drop(t)
		t.retire()
	}
}

// take removes and returns the trackers of tps.
func (r *Runner) take(tps []kafkit.TopicPartition) map[kafkit.TopicPartition]*tracker {
	ts := make(map[kafkit.TopicPartition]*tracker)
	for _, tp := range tps {
		if t, ok := r.trackers[tp]; ok {
			ts[tp] = t
			delete(r.trackers, tp)
		}
	}
	return ts
}

// shutdown drains every partition, closes the consumer (leaving the group)
// and the scheduler, and cancels what is left.
func (r *Runner) shutdown() {
	// Stop fetching: nothing more will be polled.
	if err := r.cons.Pause(r.cons.Assignment()...); err != nil {
		r.log.Debug("pause on shutdown", "err", err)
	}
	r.cancelStopAll()
	r.drain(r.take(r.assigned()))
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := r.cons.Close(ctx); err != nil {
		r.log.Warn("closing the consumer", "group", r.cfg.Consumer.GroupID, "err", err)
	}
	r.sched.close()
	r.cancelAbandonAll()
	r.closeProducer()
}

func (r *Runner) assigned() []kafkit.TopicPartition {
	tps := make([]kafkit.TopicPartition, 0, len(r.trackers))
	for tp := range r.trackers {
		tps = append(tps, tp)
	}
	return tps
}

// work is a worker goroutine: it runs lanes' work until the scheduler
// closes.
func (r *Runner) work() {
	for {
		l, batch := r.sched.take()
		if l == nil {
			return
		}
		t := l.key.t
		finished := r.handle(t, batch)
		offsets := make([]int64, len(batch))
		for i, rec := range batch {
			offsets[i] = rec.Offset
		}
		t.finish(offsets, finished)
		r.sched.done(l)
	}
}

// handle runs the handler on batch with retries and dead-letters it if it
// keeps failing. It reports whether the records are done; false means they
// were abandoned and must be delivered again.
func (r *Runner) handle(t *tracker, batch []*kafkit.Record) bool {
	bo := client.NewBackoff(r.cfg.RetryBackoff, r.cfg.RetryBackoffMax)
	began := time.Now()
	var err error
	for attempt := 1; ; attempt++ {
		err = r.call(t.abandon, batch)
		if t.abandon.Err() != nil {
			return false // cancelled by us: the outcome says nothing about the record
		}
		if err == nil {
			return true
		}
		if IsPermanent(err) || attempt >= r.cfg.MaxAttempts {
			break
		}
		wait := bo.NextBackOff()
		if r.cfg.MaxRetryTime > 0 && time.Since(began)+wait > r.cfg.MaxRetryTime {
			break
		}
		if !sleep(t.stop, wait) {
			return false
		}
	}
	for _, rec := range batch {
		if !r.deadLetter(t, rec, err) {
			return false
		}
	}
	return true
}

// call runs the handler once, in the producer's trace for a single record.
func (r *Runner) call(ctx context.Context, batch []*kafkit.Record) (err error) {
	if tr := r.cfg.Tracing; tr != nil {
		ctx, span := tr.StartProcess(ctx, batch)
		defer func() { interceptors.EndProcess(span, err) }()
		return r.cfg.BatchHandler(ctx, batch)
	}
	if len(batch) == 1 {
		ctx = interceptors.ExtractContext(ctx, batch[0].Headers)
	}
	return r.cfg.BatchHandler(ctx, batch)
}

// deadLetter produces rec, which failed with cause, to its dead-letter
// topic, retrying until it succeeds or t stops (false). A send in progress
// may finish while t drains; only abandonment cancels it.
func (r *Runner) deadLetter(t *tracker, rec *kafkit.Record, cause error) bool {
	topic := r.cfg.DeadLetterTopic(rec.Topic)
	bo := client.NewBackoff(r.cfg.RetryBackoff, r.cfg.RetryBackoffMax)
	for {
		dl := deadLetterRecord(topic, rec, r.cfg.Consumer.GroupID, cause)
		err := r.dlt.SendSync(t.abandon, dl)
		if t.abandon.Err() != nil {
			return false
		}
		if err == nil {
			r.log.Warn("record sent to the dead-letter topic", "topic", rec.Topic, "partition", rec.Partition,
				"offset", rec.Offset, "dlt", topic, "err", cause)
			return true
		}
		r.log.Error("producing to the dead-letter topic failed", "topic", rec.Topic, "partition", rec.Partition,
			"offset", rec.Offset, "dlt", topic, "err", err)
		if !sleep(t.stop, bo.NextBackOff()) {
			return false
		}
	}
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
