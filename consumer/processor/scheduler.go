package processor

import (
	"sync"

	"github.com/kafkit/kafkit"
)

// scheduler hands records to workers so that each lane (a partition, or a
// key of a partition) has at most one unit of work running and runs its
// records in the order they were added. The Run goroutine adds records;
// workers take and finish work.
type scheduler struct {
	maxBatch int

	mu     sync.Mutex // guards the fields below
	wake   *sync.Cond // signals ready or closed changes; uses mu
	lanes  map[laneKey]*lane
	ready  []*lane // lanes with records and nothing running, in the order they became ready
	closed bool
}

type laneKey struct {
	t   *tracker
	key string // the record key in OrderKey mode; "" otherwise
}

type lane struct {
	key     laneKey
	recs    []*kafkit.Record // added, not yet taken
	busy    bool             // a worker runs this lane's work
	isReady bool             // in scheduler.ready
}

func newScheduler(maxBatch int) *scheduler {
	s := &scheduler{maxBatch: maxBatch, lanes: make(map[laneKey]*lane)}
	s.wake = sync.NewCond(&s.mu)
	return s
}

// add queues r on its lane.
func (s *scheduler) add(k laneKey, r *kafkit.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lanes[k]
	if !ok {
		l = &lane{key: k}
		s.lanes[k] = l
	}
	l.recs = append(l.recs, r)
	s.makeReady(l)
}

func (s *scheduler) makeReady(l *lane) {
	if !l.busy && !l.isReady && len(l.recs) > 0 {
		l.isReady = true
		s.ready = append(s.ready, l)
		s.wake.Signal()
	}
}

// take blocks until a lane has work and returns it (up to maxBatch records,
// claimed with the lane's tracker), or returns nil once the scheduler is
// closed. The caller must call done with the lane afterwards.
func (s *scheduler) take() (*lane, []*kafkit.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.ready) == 0 && !s.closed {
			s.wake.Wait()
		}
		if s.closed {
			return nil, nil
		}
		l := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		l.isReady = false
		if len(l.recs) == 0 || !l.key.t.start() {
			// Dropped since it became ready, or its partition is
			// stopping: drop removes stopped lanes.
			s.forget(l)
			continue
		}
		n := min(len(l.recs), s.maxBatch)
		batch := l.recs[:n:n]
		l.recs = l.recs[n:]
		l.busy = true
		return l, batch
	}
}

// done returns a lane taken with take.
func (s *scheduler) done(l *lane) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.busy = false
	s.makeReady(l)
	s.forget(l)
}

// forget removes an idle, empty lane.
func (s *scheduler) forget(l *lane) {
	if !l.busy && !l.isReady && len(l.recs) == 0 && s.lanes[l.key] == l {
		delete(s.lanes, l.key)
	}
}

// drop discards the queued records of t's lanes; running work continues.
func (s *scheduler) drop(t *tracker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, l := range s.lanes {
		if k.t == t {
			l.recs = nil
			s.forget(l)
		}
	}
}

// close makes take return nil to every worker.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.wake.Broadcast()
}
