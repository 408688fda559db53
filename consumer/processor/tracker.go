package processor

import (
	"context"
	"sync"

	"github.com/kafkit/kafkit"
)

// tracker follows one assigned partition: which dispatched records are
// finished, hence the offset that is safe to commit, and whether the
// partition is paused for backpressure. The Run goroutine creates and
// retires trackers; workers report into them.
type tracker struct {
	tp kafkit.TopicPartition

	// stop is cancelled when the partition is revoked or the runner shuts
	// down: no record starts, no retry waits. abandon is cancelled when
	// running handlers are given up on; it is their ctx.
	stop, abandon             context.Context
	cancelStop, cancelAbandon context.CancelFunc

	// pause and resume pause and resume the partition in the consumer.
	pause, resume func(kafkit.TopicPartition)
	maxInFlight   int

	mu        sync.Mutex // guards the fields below
	pending   []int64    // dispatched offsets not yet behind next, in order
	done      map[int64]bool
	next      int64 // everything below is finished: the offset to commit; -1 none yet
	committed int64 // last committed; -1 none
	inFlight  int   // dispatched, not finished (queued or running)
	running   int   // units of work workers took and have not finished
	paused    bool
	stopped   bool          // stop was called: no record starts, no offset advances after retire
	retired   bool          // abandoned or committed for the last time: finishing changes nothing
	idle      chan struct{} // closed once stopped and nothing runs
}

func newTracker(parent, abandonParent context.Context, tp kafkit.TopicPartition, maxInFlight int, pause, resume func(kafkit.TopicPartition)) *tracker {
	t := &tracker{
		tp: tp, pause: pause, resume: resume, maxInFlight: maxInFlight,
		done: make(map[int64]bool), next: -1, committed: -1,
		idle: make(chan struct{}),
	}
	t.stop, t.cancelStop = context.WithCancel(parent)
	t.abandon, t.cancelAbandon = context.WithCancel(abandonParent)
	return t
}

// dispatched records that offset was handed to the scheduler; it pauses the
// partition when too many are in flight.
func (t *tracker) dispatched(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, offset)
	t.inFlight++
	if t.inFlight >= t.maxInFlight && !t.paused && !t.stopped {
		t.paused = true
		t.pause(t.tp)
	}
}

// start claims a unit of work for a worker; false when the partition is
// stopping and the work must not start.
func (t *tracker) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.running++
	return true
}

// finish ends a unit of work started with start. finished says whether its
// records are done (handled or dead-lettered); abandoned ones are not, so
// the commit point stays below them and they are delivered again.
func (t *tracker) finish(offsets []int64, finished bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running--
	t.inFlight -= len(offsets)
	if finished && !t.retired {
		for _, o := range offsets {
			t.done[o] = true
		}
		for len(t.pending) > 0 && t.done[t.pending[0]] {
			delete(t.done, t.pending[0])
			t.next = t.pending[0] + 1
			t.pending = t.pending[1:]
		}
	}
	if t.paused && !t.stopped && t.inFlight <= t.maxInFlight/2 {
		t.paused = false
		t.resume(t.tp)
	}
	if t.stopped && t.running == 0 {
		closeOnce(t.idle)
	}
}

// toCommit returns the offset to commit, or false when it was committed
// already (or nothing finished yet).
func (t *tracker) toCommit() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next, t.next > t.committed
}

func (t *tracker) setCommitted(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.committed = max(t.committed, offset)
}

// stopWork stops new work and retry waits; idle closes once running work
// finished.
func (t *tracker) stopWork() {
	t.cancelStop()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.running == 0 {
		closeOnce(t.idle)
	}
}

// retire freezes the commit point (what finishes later is ignored) and
// cancels the handlers still running.
func (t *tracker) retire() {
	t.mu.Lock()
	t.retired = true
	t.mu.Unlock()
	t.cancelStop()
	t.cancelAbandon()
}

// closeOnce closes ch unless it is closed; callers hold the lock that
// guards ch.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
