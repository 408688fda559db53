package consumer

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Consumer reads records from Kafka. Poll is meant to be called from one
// goroutine; every other method is safe for concurrent use.
type Consumer struct {
	cfg  Config
	cl   *client.Client
	log  *slog.Logger
	icpt interceptorChain

	ctx    context.Context // cancelled by Close: stops the fetcher and the group goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup // the fetcher, the group goroutine, asynchronous commits

	mu              sync.Mutex // guards every field below
	closed          bool
	subTopics       []string                              // Subscribe
	subPattern      *regexp.Regexp                        // SubscribePattern
	manual          bool                                  // Assign
	parts           map[kafkit.TopicPartition]*partState  // the current assignment
	events          []*pollEvent                          // group work waiting for Poll
	running         *pollEvent                            // the group work Poll is running now
	lastPoll        time.Time                             // when Poll was last entered, or woke from waiting, for max.poll.interval.ms
	polling         bool                                  // Poll is waiting for records: the application is not busy elsewhere (callbacks are)
	lastAuto        time.Time                             // last automatic commit
	lastAutoOffsets map[kafkit.TopicPartition]offsetEpoch // what it committed
	fatal           error                                 // the consumer can no longer work (fenced)
	groupErr        error                                 // a membership failure for the next Poll, once
	rrNext          int                                   // round-robin start among partitions in Poll
	pollOrder       []kafkit.TopicPartition               // Poll's sorted partitions, rebuilt each Poll in the same array
	pollRuns        [][]kafkit.Record                     // Poll's runs of records, cleared after each Poll
	commitTail      chan struct{}                         // closed once the last commit asked for is done

	wake      chan struct{} // capacity 1: wakes Poll (records, events, errors)
	fetchWake chan struct{} // capacity 1: wakes the fetcher (a partition became fetchable)

	group *group // nil without group.id

	lastConns map[int32]*brokerConns // the fetcher's connections once it stopped, for Close
}

// partState is one assigned partition; guarded by Consumer.mu.
type partState struct {
	needPosition bool            // position unknown: committed offset or auto.offset.reset decides
	polled       bool            // a Poll ran since assignment: only then may the fetcher resolve a missing position (as Java's poll() does), so that a Seek right after Assign never races a reset
	validate     bool            // KIP-320: the position must be checked with OffsetForLeaderEpoch before fetching
	lookup       bool            // a position lookup or validation is under way in the background
	position     int64           // next offset Poll returns
	fetchOffset  int64           // next offset to fetch; buffered records fill [position, fetchOffset)
	epoch        int32           // leader epoch of the last returned record (or of the position's source), for commits and validation
	fetchEpoch   int32           // leader epoch of the last fetched batch: Fetch's LastFetchedEpoch
	leaderEpoch  int32           // the leader epoch the last Fetch was sent with; -1 before the first
	buf          []kafkit.Record // decoded, not yet returned: the rest of one chunk's slab
	ahead        *decodeJob      // the records after buf, being decoded in the background
	dec          *recordDecoder  // the batch ahead's records came from, while it has more (rest); owned by ahead while that runs
	rest         int             // records of dec not yet in a decode job
	pending      []rawBatch      // fetched, not yet decoded, after dec
	bufBytes     int             // wire size of pending and of the batches not yet taken into buf: the fetcher keeps it below max.partition.fetch.bytes
	inflight     bool            // a Fetch for this partition is outstanding
	paused       bool
	resetting    bool            // reset per auto.offset.reset, ignoring the commit (OFFSET_OUT_OF_RANGE, unknown epoch)
	err          error           // returned by every Poll until Seek (auto.offset.reset=none, fatal fetch errors); blocks fetching
	retryAt      time.Time       // after a partition error, no lookup or fetch before this
	bo           backoff.BackOff // this partition's back-off after consecutive failures; nil after a success
	highWater    int64           // from the last fetch, for Lag; -1 unknown
	lastStable   int64           // likewise, under read_committed
}

// pollEvent is group work that must run on the goroutine calling Poll
// (rebalance callbacks, commits on revoke).
type pollEvent struct {
	fn        func(ctx context.Context)
	done      chan struct{} // closed once it ran or was abandoned
	started   bool          // guarded by Consumer.mu
	abandoned bool          // guarded by Consumer.mu: the membership it was for ended; it never runs
}

// New creates a consumer and connects to the cluster (bootstrap). It neither
// subscribes nor joins a group until Subscribe, SubscribePattern or Assign.
func New(ctx context.Context, cfg Config) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cl, err := client.New(ctx, cfg.clientConfig())
	if err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg:       cfg,
		cl:        cl,
		log:       cfg.Logger,
		icpt:      interceptorChain(slices.DeleteFunc(slices.Clone(cfg.Interceptors), func(i Interceptor) bool { return i == nil })),
		parts:     make(map[kafkit.TopicPartition]*partState),
		wake:      make(chan struct{}, 1),
		fetchWake: make(chan struct{}, 1),
		lastPoll:  time.Now(),
		lastAuto:  time.Now(),
	}
	c.commitTail = make(chan struct{})
	close(c.commitTail)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.GroupID != "" {
		c.group, err = newGroup(c)
		if err != nil {
			cl.Close()
			return nil, err
		}
	}
	c.wg.Go(c.fetchLoop)
	return c, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Subscribe joins the consumer group (group.id is required) with a fixed
// list of topics, replacing any earlier subscription.
func (c *Consumer) Subscribe(topics ...string) error {
	return c.subscribe(slices.Clone(topics), nil)
}

// SubscribePattern subscribes to every topic whose name matches re, checked
// again on every metadata refresh (metadata.max.age.ms).
func (c *Consumer) SubscribePattern(re *regexp.Regexp) error {
	return c.subscribe(nil, re)
}

func (c *Consumer) subscribe(topics []string, re *regexp.Regexp) error {
	if c.group == nil {
		return fmt.Errorf("%w: Subscribe needs group.id", ErrNoGroup)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.manual {
		return fmt.Errorf("%w: already assigned manually", ErrSubscription)
	}
	c.subTopics, c.subPattern = topics, re
	c.group.start()
	return nil
}

// Assign takes partitions manually, without group management, replacing any
// earlier assignment. Positions start at the committed offset (when group.id
// is set) or per auto.offset.reset, unless Seek sets them.
func (c *Consumer) Assign(partitions ...kafkit.TopicPartition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.subTopics != nil || c.subPattern != nil {
		return fmt.Errorf("%w: already subscribed", ErrSubscription)
	}
	c.manual = true
	keep := make(map[kafkit.TopicPartition]*partState, len(partitions))
	for _, tp := range partitions {
		if ps, ok := c.parts[tp]; ok {
			keep[tp] = ps
		} else {
			keep[tp] = newPartState()
		}
	}
	c.parts = keep
	signal(c.fetchWake)
	return nil
}

// Unsubscribe drops the subscription or the manual assignment. A group
// member first commits (with enable.auto.commit), runs OnRevoked and leaves
// the group, as Close does. The consumer may Subscribe or Assign again.
func (c *Consumer) Unsubscribe(ctx context.Context) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var err error
	if c.group != nil {
		err = c.group.stop(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subTopics, c.subPattern, c.manual = nil, nil, false
	c.parts = make(map[kafkit.TopicPartition]*partState)
	c.events = nil // work for the old membership, whose goroutine has stopped
	if c.group != nil {
		c.group.reset()
	}
	return err
}

func newPartState() *partState {
	return &partState{needPosition: true, epoch: -1, fetchEpoch: -1, leaderEpoch: -1, highWater: -1, lastStable: -1}
}

// Assignment returns the partitions currently assigned, sorted.
func (c *Consumer) Assignment() []kafkit.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assignedLocked()
}

func (c *Consumer) assignedLocked() []kafkit.TopicPartition {
	return c.appendAssignedLocked(make([]kafkit.TopicPartition, 0, len(c.parts)))
}

// appendAssignedLocked appends the assigned partitions, sorted, to tps.
func (c *Consumer) appendAssignedLocked(tps []kafkit.TopicPartition) []kafkit.TopicPartition {
	for tp := range c.parts {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	return tps
}

// Poll returns the next records, at most max.poll.records, waiting until some
// arrive or ctx ends (then it returns ctx's error). Before looking for
// records it runs pending rebalance work (callbacks, commits on revoke) and,
// with enable.auto.commit, commits the records earlier Polls returned once
// auto.commit.interval.ms has passed. A partition whose offset cannot be
// determined under auto.offset.reset=none makes Poll return ErrNoOffset.
// Records are spread fairly across partitions and in offset order within one.
// Fetched record batches are decoded as Poll needs records, one batch per
// partition ahead in the background (the fetcher only checks their CRCs),
// each into storage of its own: the records returned stay valid however long
// the application keeps them.
func (c *Consumer) Poll(ctx context.Context) ([]*kafkit.Record, error) {
	c.polled()
	defer c.polled()
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		c.mu.Unlock()
		c.runEvents(ctx)
		nextAuto := c.maybeAutoCommit()

		c.mu.Lock()
		if err := c.fatal; err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if err := c.groupErr; err != nil {
			c.groupErr = nil
			c.mu.Unlock()
			return nil, err
		}
		records, decoding, err := c.takeLocked()
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if len(records) > 0 {
			c.icpt.OnConsume(ctx, records)
			return records, nil
		}
		if err := c.waitForWork(ctx, nextAuto, decoding); err != nil {
			return nil, err
		}
	}
}

// polled restarts the max.poll.interval.ms timer: the application called
// Poll, or Poll stopped waiting.
func (c *Consumer) polled() {
	c.mu.Lock()
	c.polling, c.lastPoll = false, time.Now()
	c.mu.Unlock()
}

// pollExpired reports whether the application has not called Poll within
// max.poll.interval.ms. Time spent in rebalance callbacks counts, as in
// Java's consumer; time waiting inside Poll does not.
func (c *Consumer) pollExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.polling && time.Since(c.lastPoll) > c.cfg.MaxPollInterval
}

// waitForWork blocks Poll until records, group work or Close arrive, the
// chunk being decoded is (decoding, unless nil), or the next automatic
// commit is due (after autoCommit, unless zero).
func (c *Consumer) waitForWork(ctx context.Context, autoCommit time.Duration, decoding <-chan struct{}) error {
	c.mu.Lock()
	c.polling = true
	c.mu.Unlock()
	defer c.polled()
	var autoC <-chan time.Time
	if autoCommit > 0 {
		t := time.NewTimer(autoCommit)
		defer t.Stop()
		autoC = t.C
	}
	select {
	case <-c.wake:
	case <-decoding:
	case <-autoC:
	case <-c.ctx.Done(): // Close; the next loop returns ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// runEvents runs group work on the Poll goroutine, one event at a time: an
// event is taken and marked started under one lock, so the membership
// goroutine can abandon any it has not started. Commits on revoke must not
// fail because Poll was called with a short ctx, so the work gets its own
// default.api.timeout.ms, keeping ctx's values.
func (c *Consumer) runEvents(ctx context.Context) {
	var cancel context.CancelFunc
	for {
		c.mu.Lock()
		var ev *pollEvent
		for ev == nil && len(c.events) > 0 {
			ev = c.events[0]
			c.events = c.events[1:]
			if ev.abandoned {
				ev = nil
			}
		}
		if ev == nil {
			c.mu.Unlock()
			if cancel != nil {
				cancel()
			}
			return
		}
		ev.started, c.running = true, ev
		c.mu.Unlock()
		if cancel == nil {
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.cfg.DefaultAPITimeout)
		}
		ev.fn(ctx)
		c.mu.Lock()
		c.running = nil
		c.mu.Unlock()
		close(ev.done)
	}
}

// abandon drops ev unless Poll has started it: the membership it was for
// ended.
func (c *Consumer) abandon(ev *pollEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ev.started && !ev.abandoned {
		ev.abandoned = true
		close(ev.done)
	}
}

// abandonEvents drops the group work no Poll has started and waits (until
// ctx ends) for the one Poll is running, if any. Called once the membership
// goroutine has stopped.
func (c *Consumer) abandonEvents(ctx context.Context) error {
	c.mu.Lock()
	events, running := c.events, c.running
	c.events = nil
	c.mu.Unlock()
	for _, ev := range events {
		c.abandon(ev)
	}
	if running != nil {
		select {
		case <-running.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// takeLocked moves up to max.poll.records buffered records out, starting at a
// rotating partition so that none starves. A partition whose next chunk is
// still being decoded is passed over; when nothing was taken, decoding is
// the first such chunk's done, for Poll to wait on without c.mu (which the
// fetcher needs meanwhile). Called with c.mu held.
func (c *Consumer) takeLocked() (_ []*kafkit.Record, decoding <-chan struct{}, _ error) {
	c.pollOrder = c.appendAssignedLocked(c.pollOrder[:0]) // not handed out: no copy per Poll
	tps := c.pollOrder
	// The records go out as runs of decoded chunks first, and the pointers
	// into one array sized to them at the end: sized to what was buffered
	// it was mostly unused (records still to decode wait for the next
	// Poll), and appending tens of thousands of pointers would regrow it
	// over and over.
	runs, n := c.pollRuns[:0], 0
	refill := false
	for _, ps := range c.parts {
		if !ps.polled {
			ps.polled = true
			if ps.needPosition {
				signal(c.fetchWake)
			}
		}
	}
	for i := range tps {
		tp := tps[(c.rrNext+i)%len(tps)]
		ps := c.parts[tp]
		if ps.err != nil {
			if n > 0 {
				break // the error comes with the next Poll
			}
			return nil, nil, ps.err
		}
		if ps.paused {
			continue
		}
		had := ps.buffered()
		for n < c.cfg.MaxPollRecords {
			if len(ps.buf) == 0 {
				ok, d := c.nextBatchLocked(tp, ps)
				if !ok {
					decoding = cmp.Or(decoding, d)
					break
				}
			}
			k := min(len(ps.buf), c.cfg.MaxPollRecords-n)
			runs, n = append(runs, ps.buf[:k]), n+k
			last := &ps.buf[k-1]
			ps.position, ps.epoch = last.Offset+1, last.LeaderEpoch
			ps.buf = ps.buf[k:]
		}
		if had && !ps.buffered() && ps.err == nil {
			// Drained: move past whatever followed the last record in
			// the fetch (transaction markers, aborted batches).
			ps.buf, ps.position = nil, ps.fetchOffset
			refill = true
		}
		if n >= c.cfg.MaxPollRecords {
			break
		}
	}
	if len(tps) > 0 {
		c.rrNext = (c.rrNext + 1) % len(tps)
	}
	if refill {
		signal(c.fetchWake)
	}
	var out []*kafkit.Record
	if n > 0 {
		out, decoding = make([]*kafkit.Record, 0, n), nil
		for _, run := range runs {
			for j := range run {
				out = append(out, &run[j])
			}
		}
	}
	clear(runs) // kept for the next Poll, without holding on to the records
	c.pollRuns = runs
	return out, decoding, nil
}

// rawBatch is a fetched record batch not decoded yet. Batches are decoded
// as Poll needs records (as Java's consumer does), a chunk of at most
// decodeChunk records at a time, with the next chunk decoded in the
// background meanwhile, so a large fetch is never materialized at once: the
// garbage collector scans only the few chunks alive (a decoded record holds
// pointers; the fetched bytes hold none), and the records an application
// has dropped are reclaimed while it consumes the rest.
type rawBatch struct {
	raw     []byte // wire bytes, CRC already checked
	records int32  // from the batch header
}

type recordDecoder = recordbatch.RecordDecoder

// decodeChunk is how many records one decode job turns out at most: a few
// polls' worth at max.poll.records' default, a small part of a large batch
// (a 1 MiB batch holds ~9,000 records of 100 bytes).
const decodeChunk = 1000

// decodeJob is one chunk being decoded by its own goroutine (or at once),
// which sets records and err and then closes done (decoded when at once);
// it takes no lock.
type decodeJob struct {
	done    chan struct{}
	count   int            // records in the chunk
	size    int            // wire size of the batch when this is its first chunk, else 0
	dec     *recordDecoder // the chunk's batch; decv for a first chunk
	decv    recordDecoder  // a first chunk's decoder, in the job's allocation
	records []kafkit.Record
	err     error
}

func (ps *partState) buffered() bool {
	return len(ps.buf) > 0 || ps.ahead != nil || ps.rest > 0 || len(ps.pending) > 0
}

// dropBuffered forgets fetched records; a decode under way finishes into a
// job nobody reads.
func (ps *partState) dropBuffered() {
	ps.buf, ps.ahead, ps.dec, ps.rest, ps.pending, ps.bufBytes = nil, nil, nil, 0, nil, 0
}

// rewind drops what was fetched beyond the position, to fetch it again.
func (ps *partState) rewind() {
	ps.dropBuffered()
	ps.fetchOffset, ps.fetchEpoch = ps.position, ps.epoch
}

// decodeAheadLocked starts decoding ps's next chunk of records (the rest of
// the batch under way, else the next pending batch) unless one is under way
// already. Called with c.mu held.
func (c *Consumer) decodeAheadLocked(tp kafkit.TopicPartition, ps *partState) {
	if ps.ahead != nil || c.closed { // Close waits for c.wg
		return
	}
	dec := ps.dec
	ps.dec = nil // the job holds it until it is taken
	var rb rawBatch
	if dec == nil || ps.rest == 0 {
		if len(ps.pending) == 0 {
			return
		}
		rb = ps.pending[0]
		ps.pending[0] = rawBatch{}
		if len(ps.pending) == 1 {
			ps.pending = ps.pending[:0] // the next Fetch's batches go in the same array
		} else {
			ps.pending = ps.pending[1:]
		}
		dec, ps.rest = nil, int(rb.records)
	}
	n := min(ps.rest, decodeChunk)
	ps.rest -= n
	job := &decodeJob{count: n, size: len(rb.raw), dec: dec}
	ps.ahead = job
	if len(rb.raw) <= inlineDecodeBytes && n <= inlineDecodeRecords {
		job.done = decoded
		job.decode(rb, tp)
		return
	}
	job.done = make(chan struct{})
	c.wg.Go(func() {
		defer close(job.done)
		job.decode(rb, tp)
	})
}

// decoded is the done of every job decoded at once.
var decoded = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// decode decodes the job's chunk, the first of rb when it has no decoder.
func (job *decodeJob) decode(rb rawBatch, tp kafkit.TopicPartition) {
	if job.dec == nil {
		d := &job.decv
		err := d.Reset(rb.raw, recordbatch.ReadOptions{Topic: tp.Topic, Partition: tp.Partition})
		switch {
		case err != nil:
			job.err = err
			return
		case d.Len() != int(rb.records):
			job.err = recordbatch.ErrCorrupt // scan read the same header
			return
		}
		job.dec = d
	}
	job.records = make([]kafkit.Record, job.count)
	job.err = job.dec.Decode(job.records)
}

// inlineDecodeBytes and inlineDecodeRecords bound a chunk decoded at once
// rather than on a goroutine of its own: a few records take less time than
// the hand-over, which a consumer reading as records arrive pays per batch.
const (
	inlineDecodeBytes   = 4 << 10 // of a batch's first chunk, which decompresses it
	inlineDecodeRecords = 64
)

// nextBatchLocked moves ps's next decoded chunk holding records at or after
// its position into ps.buf and starts decoding the one after. It reports
// whether there was one, or else the done of the chunk still being decoded,
// if any; a batch that does not decode fails the partition. Called with
// c.mu held. Each chunk decodes into a slab of its own, handed out by
// pointer, never reused.
func (c *Consumer) nextBatchLocked(tp kafkit.TopicPartition, ps *partState) (bool, <-chan struct{}) {
	for {
		c.decodeAheadLocked(tp, ps)
		job := ps.ahead
		if job == nil {
			return false, nil
		}
		select {
		case <-job.done:
		default:
			return false, job.done
		}
		ps.ahead, ps.dec = nil, job.dec
		if job.size > 0 {
			ps.bufBytes -= job.size
			signal(c.fetchWake) // the buffer shrank: the partition may be fetchable again
		}
		if job.err != nil {
			ps.err = fmt.Errorf("fetch %s[%d] at offset %d: %w", tp.Topic, tp.Partition, ps.position, job.err)
			ps.dropBuffered()
			signal(c.wake)
			return false, nil
		}
		c.decodeAheadLocked(tp, ps) // while the application works on this one
		// A fetch starts at the batch holding the position: skip the
		// records before it (offsets ascend within a batch).
		recs := job.records
		for len(recs) > 0 && recs[0].Offset < ps.position {
			recs = recs[1:]
		}
		if len(recs) > 0 {
			ps.buf = recs
			return true, nil
		}
	}
}

// runOnPoll hands fn to the goroutine calling Poll and returns a channel
// closed once it ran.
func (c *Consumer) runOnPoll(fn func(ctx context.Context)) *pollEvent {
	ev := &pollEvent{fn: fn, done: make(chan struct{})}
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
	signal(c.wake)
	return ev
}

// Pause stops fetching and returning records for partitions until Resume;
// their positions are kept.
func (c *Consumer) Pause(partitions ...kafkit.TopicPartition) error {
	return c.setPaused(true, partitions)
}

// GroupMetadata identifies this member for a transactional producer's
// SendOffsetsToTransaction (Java's consumer.groupMetadata()): the group, the
// current generation and member id (-1 and "" before the first join or
// without a group), and the static instance id.
func (c *Consumer) GroupMetadata() kafkit.GroupMetadata {
	md := kafkit.GroupMetadata{GroupID: c.cfg.GroupID, GenerationID: -1}
	if c.group != nil {
		md.GenerationID, md.MemberID, md.GroupInstanceID = c.group.identity()
	}
	return md
}

// Resume undoes Pause.
func (c *Consumer) Resume(partitions ...kafkit.TopicPartition) error {
	return c.setPaused(false, partitions)
}

func (c *Consumer) setPaused(paused bool, partitions []kafkit.TopicPartition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range partitions {
		ps, ok := c.parts[tp]
		if !ok {
			return fmt.Errorf("%w: %s[%d]", ErrNotAssigned, tp.Topic, tp.Partition)
		}
		ps.paused = paused
	}
	signal(c.fetchWake)
	if !paused {
		// Records buffered before the pause are ready at once: a Poll
		// waiting now must see them, not only the next fetch.
		signal(c.wake)
	}
	return nil
}

// Paused returns the paused partitions, sorted.
func (c *Consumer) Paused() []kafkit.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []kafkit.TopicPartition
	for _, tp := range c.assignedLocked() {
		if c.parts[tp].paused {
			out = append(out, tp)
		}
	}
	return out
}

// Seek sets the next offset Poll returns for an assigned partition. offset
// may be kafkit.OffsetEarliest or kafkit.OffsetLatest, resolved with
// ListOffsets before returning.
func (c *Consumer) Seek(ctx context.Context, tp kafkit.TopicPartition, offset int64) error {
	if offset < 0 {
		offsets, err := c.listOffsets(ctx, map[kafkit.TopicPartition]int64{tp: offset})
		if err != nil {
			return err
		}
		offset = offsets[tp].offset
	}
	return c.setPosition(tp, offset)
}

// SeekToBeginning moves partitions to their log start offsets.
func (c *Consumer) SeekToBeginning(ctx context.Context, partitions ...kafkit.TopicPartition) error {
	return c.seekAll(ctx, partitions, kafkit.OffsetEarliest)
}

// SeekToEnd moves partitions to their end offsets (the high watermark, or the
// last stable offset under read_committed).
func (c *Consumer) SeekToEnd(ctx context.Context, partitions ...kafkit.TopicPartition) error {
	return c.seekAll(ctx, partitions, kafkit.OffsetLatest)
}

// SeekToTimestamp moves each partition to the earliest offset whose timestamp
// is at or after ts, or to its end if there is none.
func (c *Consumer) SeekToTimestamp(ctx context.Context, ts time.Time, partitions ...kafkit.TopicPartition) error {
	return c.seekAll(ctx, partitions, ts.UnixMilli())
}

func (c *Consumer) seekAll(ctx context.Context, partitions []kafkit.TopicPartition, spec int64) error {
	req := make(map[kafkit.TopicPartition]int64, len(partitions))
	for _, tp := range partitions {
		req[tp] = spec
	}
	offsets, err := c.listOffsets(ctx, req)
	if err != nil {
		return err
	}
	for _, tp := range partitions {
		o := offsets[tp].offset
		if o < 0 { // no record at or after the timestamp: the end
			end, err := c.listOffsets(ctx, map[kafkit.TopicPartition]int64{tp: kafkit.OffsetLatest})
			if err != nil {
				return err
			}
			o = end[tp].offset
		}
		if err := c.setPosition(tp, o); err != nil {
			return err
		}
	}
	return nil
}

func (c *Consumer) setPosition(tp kafkit.TopicPartition, offset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.parts[tp]
	if !ok {
		return fmt.Errorf("%w: %s[%d]", ErrNotAssigned, tp.Topic, tp.Partition)
	}
	ps.setPosition(offsetEpoch{offset, -1})
	ps.err, ps.bo = nil, nil
	signal(c.fetchWake)
	return nil
}

// Position returns the next offset Poll will return for tp, resolving it
// (committed offset or auto.offset.reset) if it is not known yet.
func (c *Consumer) Position(ctx context.Context, tp kafkit.TopicPartition) (int64, error) {
	var bo backoff.BackOff
	for {
		c.mu.Lock()
		ps, ok := c.parts[tp]
		if !ok {
			c.mu.Unlock()
			return -1, fmt.Errorf("%w: %s[%d]", ErrNotAssigned, tp.Topic, tp.Partition)
		}
		if err := ps.err; err != nil {
			c.mu.Unlock()
			return -1, err
		}
		if !ps.needPosition {
			pos := ps.position
			c.mu.Unlock()
			return pos, nil
		}
		c.mu.Unlock()
		err := c.resolvePositions(ctx, []kafkit.TopicPartition{tp})[tp]
		if err == nil {
			continue
		}
		if !client.IsRetriable(err) {
			return -1, err
		}
		if bo == nil {
			bo = client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax)
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("position of %s[%d]: %w (last error: %w)", tp.Topic, tp.Partition, ctx.Err(), err)
		case <-c.ctx.Done():
			return -1, ErrClosed
		case <-timerC(bo.NextBackOff()):
		}
	}
}

// Lag returns, for each assigned partition with a known position, its end
// offset minus its position. The end offset is the high watermark (the last
// stable offset under read_committed) from the partition's latest fetch, or
// from ListOffsets when it has not been fetched yet.
func (c *Consumer) Lag(ctx context.Context) (map[kafkit.TopicPartition]int64, error) {
	ends := make(map[kafkit.TopicPartition]int64)
	var unknown []kafkit.TopicPartition
	c.mu.Lock()
	for tp, ps := range c.parts {
		end := ps.highWater
		if c.cfg.IsolationLevel == ReadCommitted {
			end = ps.lastStable
		}
		if end >= 0 {
			ends[tp] = end
		} else {
			unknown = append(unknown, tp)
		}
	}
	c.mu.Unlock()
	if len(unknown) > 0 {
		listed, err := c.EndOffsets(ctx, unknown...)
		if err != nil {
			return nil, err
		}
		maps.Copy(ends, listed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[kafkit.TopicPartition]int64, len(ends))
	for tp, end := range ends {
		if ps, ok := c.parts[tp]; ok && !ps.needPosition {
			out[tp] = max(end-ps.position, 0)
		}
	}
	return out, nil
}

// Close stops the consumer, in this order: the group goroutine stops
// heartbeating; with enable.auto.commit the records Poll returned are
// committed; OnRevoked runs for the assignment (on this goroutine); the
// member leaves the group (dynamic members only: a static member keeps its
// assignment until session.timeout.ms); the fetcher stops; the brokers are
// asked to close its fetch sessions (waiting at most a second); connections
// close.
// ctx bounds the commit and the leave (default.api.timeout.ms when ctx has no
// deadline).
func (c *Consumer) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.DefaultAPITimeout)
		defer cancel()
	}
	var err error
	if c.group != nil {
		err = c.group.stop(ctx)
	}
	c.cancel()
	c.wg.Wait()
	c.closeFetchSessions(ctx)
	c.cl.Close()
	return err
}
