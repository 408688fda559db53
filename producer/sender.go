package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// sender is the producer's one I/O goroutine: it drains ready batches into
// one Produce request per broker, pipelines up to
// max.in.flight.requests.per.connection requests per broker, and handles the
// responses (acks, retries, idempotence errors, metadata refreshes).
//
// Every field below evMu's block is owned by the run goroutine. Other
// goroutines (connection readers delivering responses, metadata and producer
// id fetches, Close, transactions) hand it work through post, which runs a
// function on the run goroutine.
type sender struct {
	p   *Producer
	s   *settings
	cl  *client.Client
	acc *accumulator
	log *slog.Logger
	ctx context.Context // canceled when the producer is closed

	evMu   sync.Mutex // guards evs
	evs    []func()
	signal chan struct{} // capacity 1: new events, batches, flushes
	done   chan struct{} // closed when run returns

	meta        *client.Metadata
	metaAt      time.Time // when meta was fetched
	metaRunning bool
	metaAgain   bool      // a refresh was asked for while one ran
	metaNotTill time.Time // no refresh before this: leaders were missing at the last one

	brokerInflight map[int32]int
	totalInflight  int
	reqs           map[int32]*produceReq // scratch for drain
	spare          []*produceReq         // handled requests for newReq

	pid         recordbatch.Producer // id and epoch; BaseSequence unused
	pidReady    bool
	pidFetching bool
	needPID     bool                     // a partition must start over under a newer epoch (KIP-360, non-transactional)
	stopping    bool                     // Close: fail what is left once nothing is in flight
	onWire      map[*produceReq]struct{} // requests whose responses are not handled yet
	settling    []chan struct{}          // closed once nothing is on the wire (see settle)

	writers map[int32]*brokerWriter // per-broker request writers, created on first use

	txnToAdd   map[*partQueue]struct{} // partitions waiting for AddPartitionsToTxn
	txnAdding  bool                    // an AddPartitionsToTxn is running
	txnAddDone chan struct{}           // closed when it has been handled
}

// produceReq is one Produce request being built or in flight. Once its
// response is handled it serves a later request (newReq): with linger.ms 0
// a request carries a record or two, and building its parts afresh cost
// more allocations than the record's own.
type produceReq struct {
	broker  int32
	size    int
	batches []*batch
	ids     [][16]byte // topic id of each batch, for v13+ responses

	kreq     *kmsg.ProduceRequest // the wire request, the client's until the response
	answered []bool               // handleProduce's scratch
	// resp and err are the client's answer, set by done for handle.
	resp kmsg.Response
	err  error
	// The request's steps, made once with the request: write hands it to
	// the client (on the broker's writer), done takes the answer (on the
	// connection's reader), handle handles it (on the sender).
	write, handle func()
	done          func(kmsg.Response, error)
}

// spareReqs bounds the produce requests kept for reuse.
const spareReqs = 16

// newReq returns a produce request to broker, a handled one if any.
func (s *sender) newReq(broker int32) *produceReq {
	var req *produceReq
	if n := len(s.spare); n > 0 {
		req, s.spare = s.spare[n-1], s.spare[:n-1]
	} else {
		req = &produceReq{}
		req.write = func() { s.cl.RequestBrokerAsync(s.ctx, req.broker, req.kreq, req.done) }
		req.done = func(resp kmsg.Response, err error) {
			req.resp, req.err = resp, err
			s.post(req.handle)
		}
		req.handle = func() { s.handleProduce(req, req.resp, req.err) }
	}
	req.broker = broker
	return req
}

// reuse keeps a handled request for newReq: neither the client nor a batch
// refers to it any more.
func (s *sender) reuse(req *produceReq) {
	if len(s.spare) == spareReqs {
		return
	}
	clear(req.batches)
	req.batches, req.ids, req.size = req.batches[:0], req.ids[:0], 0
	req.resp, req.err = nil, nil
	s.spare = append(s.spare, req)
}

// newSender returns the sender of p; its accumulator is set by New, which
// creates the accumulator with the sender's wake.
func newSender(ctx context.Context, p *Producer) *sender {
	return &sender{
		p:              p,
		s:              &p.s,
		cl:             p.cl,
		log:            p.s.Logger,
		ctx:            ctx,
		signal:         make(chan struct{}, 1),
		done:           make(chan struct{}),
		brokerInflight: make(map[int32]int),
		reqs:           make(map[int32]*produceReq),
		onWire:         make(map[*produceReq]struct{}),
		pid:            recordbatch.NoProducer(),
	}
}

// wake makes the run goroutine look at the queues again. Any goroutine.
func (s *sender) wake() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// post runs fn on the run goroutine. Any goroutine; never blocks.
func (s *sender) post(fn func()) {
	s.evMu.Lock()
	s.evs = append(s.evs, fn)
	s.evMu.Unlock()
	s.wake()
}

// call runs fn on the run goroutine and waits for it, or for ctx, or for
// the sender to stop.
func (s *sender) call(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	s.post(func() {
		fn()
		close(done)
	})
	return s.await(ctx, done)
}

// await waits for ch to close, or for ctx, or for the sender to stop.
func (s *sender) await(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return ErrClosed
	}
}

func (s *sender) run() {
	defer close(s.done)
	var timer *time.Timer
	var events []func()
	for {
		s.evMu.Lock()
		events, s.evs = s.evs, events[:0]
		s.evMu.Unlock()
		for i, fn := range events {
			fn()
			events[i] = nil
		}
		if s.stopping && s.totalInflight == 0 {
			s.failQueued(ErrClosed)
			return
		}
		if len(s.settling) > 0 && s.totalInflight == 0 {
			s.resolveAll()
			for _, ch := range s.settling {
				close(ch)
			}
			s.settling = nil
		}
		next := s.drain(time.Now())
		s.maybeFetchPID()

		var tc <-chan time.Time
		if !next.IsZero() {
			d := time.Until(next)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tc = timer.C
		}
		select {
		case <-s.signal:
		case <-tc:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// drain moves every ready batch whose leader can take another request into
// one Produce request per broker and sends them. It returns when it next
// needs to run without being woken (linger, backoff, expiry); zero if never.
func (s *sender) drain(now time.Time) time.Time {
	var next time.Time
	soon := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.stopping {
		return next // Close gave up on what is still queued
	}
	s.expireOnWire(now, soon)
	flushing := s.acc.flushing.Load() > 0
	needMeta := false
	for _, pq := range s.acc.parts.Load().list {
		if pq.inflight == 0 {
			pq.retrying = false
		}
		s.maybeResolve(pq)
		if s.expire(pq, now, soon) || (pq.inflight > 0 && pq.retrying) || !s.seqReady(pq) || !s.txnAllow(pq) {
			continue
		}
		leader := s.leader(pq.tp)
		if leader < 0 {
			pq.mu.Lock()
			needMeta = needMeta || len(pq.batches) > 0
			pq.mu.Unlock()
			continue
		}
		if pq.inflight > 0 && pq.inflightBroker != leader {
			continue // keep one partition's batches on one connection, in order
		}
		if pq.inflight > 0 && s.s.idempotent && !pq.known {
			// One batch at a time until the broker knows our producer:
			// requests to a broker are not tied to one connection, so a
			// later one may be written on a new connection after an
			// earlier one failed before it was (a refused dial while the
			// broker restarts), and a broker that does not know the
			// producer yet would take the later sequence as the first.
			continue
		}
		req := s.reqs[leader]
		if req == nil && s.brokerInflight[leader] >= s.s.MaxInFlight {
			continue
		}
		room := s.s.MaxRequestSize
		if req != nil {
			room -= req.size
		}
		b, wait := s.takeReady(pq, now, flushing, room, req == nil)
		if b == nil {
			if !wait.IsZero() {
				soon(wait)
			}
			continue
		}
		if !s.prepare(pq, b) {
			continue
		}
		if req == nil {
			req = s.newReq(leader)
			s.reqs[leader] = req
		}
		req.size += len(b.raw)
		req.batches = append(req.batches, b)
		req.ids = append(req.ids, s.meta.Topics[pq.tp.Topic].ID)
	}
	// Refresh every metadata.max.age.ms anyway, so partitions added to a
	// topic reach the partitioner and moved leaders are found before a
	// request fails.
	if s.meta != nil && !needMeta {
		if due := s.metaAt.Add(s.s.MetadataMaxAge); now.Before(due) {
			soon(due)
		} else {
			needMeta = true
		}
	}
	if needMeta {
		if now.Before(s.metaNotTill) {
			soon(s.metaNotTill)
		} else {
			s.refreshMeta()
		}
	}
	for id, req := range s.reqs {
		delete(s.reqs, id)
		s.send(req)
	}
	return next
}

// takeReady pops pq's first batch if it is ready: full, followed by another
// batch, lingered long enough, or flushing. Otherwise it returns when it
// will be.
func (s *sender) takeReady(pq *partQueue, now time.Time, flushing bool, room int, first bool) (*batch, time.Time) {
	pq.mu.Lock()
	defer pq.mu.Unlock()
	if len(pq.batches) == 0 {
		return nil, time.Time{}
	}
	b := pq.batches[0]
	if b.retryAt.After(now) {
		return nil, b.retryAt
	}
	if !b.full && len(pq.batches) == 1 && !flushing && now.Sub(b.created) < s.s.Linger {
		return nil, b.created.Add(s.s.Linger)
	}
	if s.acc.sealing(b) {
		return nil, time.Time{} // its compression wakes the sender
	}
	if b.size() > room && !first {
		return nil, now // the request is full; the next drain takes it
	}
	pq.batches[0] = nil
	if len(pq.batches) == 1 {
		// Emptied: the next batch goes in the same array (with linger.ms
		// 0 a queue holds one batch at a time; popping from the front
		// left no room for it).
		pq.batches = pq.batches[:0]
	} else {
		pq.batches = pq.batches[1:]
	}
	b.full = true
	return b, time.Time{}
}

// requeue puts a batch back at the front of its queue, before the batches
// that were never sent and after any retried batch with a lower sequence, so
// retries keep sequence order.
func (s *sender) requeue(b *batch) {
	pq := b.pq
	pq.mu.Lock()
	defer pq.mu.Unlock()
	i := 0
	for i < len(pq.batches) {
		o := pq.batches[i]
		if o.raw == nil || (b.seq >= 0 && o.seq > b.seq) {
			break
		}
		i++
	}
	pq.batches = append(pq.batches, nil)
	copy(pq.batches[i+1:], pq.batches[i:])
	pq.batches[i] = b
}

// prepare finishes a batch the first time it is drained: compression,
// header, and (idempotence) its base sequence, which it keeps on retries
// unless a gap before it closed or its partition started over.
func (s *sender) prepare(pq *partQueue, b *batch) bool {
	if b.raw == nil && s.s.TransactionalID != "" {
		// Nothing new goes out in a transaction that can only abort
		// (Java's abortUndrainedBatches): dropUnsent is on its way, and a
		// sequence numbered now may follow a gap the broker never saw
		// filled, to be retried out of order until delivery.timeout.ms.
		if e := s.p.txn.abortErr.Load(); e != nil {
			s.fail(b, fmt.Errorf("%w: %w", ErrAbortableTransaction, *e))
			return false
		}
	}
	if b.raw == nil {
		stamp := recordbatch.NoProducer()
		if s.s.idempotent {
			b.pid, b.seq = pq.pid, pq.nextSeq
			pq.nextSeq = addSeq(pq.nextSeq, len(b.records))
			pq.seqd = append(pq.seqd, b)
			stamp = b.stamp()
		}
		raw, err := s.acc.finish(b, stamp)
		if err != nil {
			s.failRejected(b, fmt.Errorf("producer: building batch for %s-%d: %w", pq.tp.Topic, pq.tp.Partition, err))
			return false
		}
		b.raw = raw
	} else if b.restamp {
		recordbatch.Restamp(b.raw, b.stamp())
	}
	b.restamp = false
	b.attempts++
	return true
}

func (b *batch) stamp() recordbatch.Producer {
	return recordbatch.Producer{ID: b.pid.ID, Epoch: b.pid.Epoch, BaseSequence: b.seq}
}

func (s *sender) send(req *produceReq) {
	kreq := req.kreq
	if kreq == nil {
		kreq = kmsg.NewPtrProduceRequest()
		req.kreq = kreq
	}
	kreq.Topics = kreq.Topics[:0]
	kreq.Acks = s.s.Acks.wire()
	kreq.TimeoutMillis = int32(s.s.RequestTimeout.Milliseconds())
	if s.s.TransactionalID != "" {
		kreq.TransactionID = &s.s.TransactionalID
	}
	for i, b := range req.batches {
		ti := len(kreq.Topics) - 1
		for ti >= 0 && kreq.Topics[ti].Topic != b.pq.tp.Topic {
			ti--
		}
		if ti < 0 {
			// A reused request's topics keep their partitions' arrays.
			ti = len(kreq.Topics)
			kreq.Topics = slices.Grow(kreq.Topics, 1)[:ti+1]
			parts := kreq.Topics[ti].Partitions[:0]
			kreq.Topics[ti] = kmsg.NewProduceRequestTopic()
			kreq.Topics[ti].Topic, kreq.Topics[ti].TopicID, kreq.Topics[ti].Partitions = b.pq.tp.Topic, req.ids[i], parts
		}
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition, p.Records = b.pq.tp.Partition, b.raw
		kreq.Topics[ti].Partitions = append(kreq.Topics[ti].Partitions, p)
		b.pq.inflight++
		b.pq.inflightBroker = req.broker
		b.onWire = true
	}
	s.onWire[req] = struct{}{}
	s.brokerInflight[req.broker]++
	s.totalInflight++
	s.writer(req.broker).push(req.write)
}

// brokerWriter hands one broker's Produce requests to the client, in order,
// on a goroutine of its own: RequestBrokerAsync waits while the connection
// dials or backs off, and the sender must keep serving the other brokers
// meanwhile.
type brokerWriter struct {
	mu     sync.Mutex // guards queue
	queue  []func()
	signal chan struct{} // capacity 1
}

func (w *brokerWriter) push(fn func()) {
	w.mu.Lock()
	w.queue = append(w.queue, fn)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// writer returns broker id's writer, starting it on first use. Its
// goroutine runs until the producer's ctx ends and its queue is empty; the
// sender stops only once every request came back, so nothing is left
// behind.
func (s *sender) writer(id int32) *brokerWriter {
	if w := s.writers[id]; w != nil {
		return w
	}
	w := &brokerWriter{signal: make(chan struct{}, 1)}
	if s.writers == nil {
		s.writers = make(map[int32]*brokerWriter)
	}
	s.writers[id] = w
	run := func() {
		var q []func()
		for {
			w.mu.Lock()
			q, w.queue = w.queue, q[:0]
			w.mu.Unlock()
			for i, fn := range q {
				fn()
				q[i] = nil
			}
			if len(q) > 0 {
				continue
			}
			select {
			case <-w.signal:
			case <-s.ctx.Done():
				w.mu.Lock()
				idle := len(w.queue) == 0
				w.mu.Unlock()
				if idle {
					return
				}
			}
		}
	}
	s.p.spawn(run) // cannot fail: Close stops spawning only after the sender exited
	return w
}

// addSeq advances a sequence number by n records (n may be negative);
// Kafka's sequences wrap from math.MaxInt32 to 0.
func addSeq(seq int32, n int) int32 {
	const span = math.MaxInt32 + 1
	return int32(((int64(seq)+int64(n))%span + span) % span)
}

// errNoPartitionResponse marks a batch the broker's response left out.
var errNoPartitionResponse = errors.New("producer: produce response did not mention the partition")

// errUnacked is the abortable error of a transaction in which records sent
// to the broker expired unacknowledged: whether they were written is
// unknown, so only an abort can settle it (Java's
// TransactionAbortableException for unresolved sequences).
var errUnacked = errors.New("producer: records sent to the broker were neither acknowledged nor rejected before they expired")

func (s *sender) handleProduce(req *produceReq, resp kmsg.Response, err error) {
	defer s.reuse(req)
	s.brokerInflight[req.broker]--
	s.totalInflight--
	delete(s.onWire, req)
	for _, b := range req.batches {
		b.pq.inflight--
		b.onWire = false
	}
	now := time.Now()
	if err != nil {
		for _, b := range req.batches {
			s.answered(b, fmt.Errorf("producing to broker %d: %w", req.broker, err), -1, -1, now)
		}
		return
	}
	if s.s.Acks == AcksNone {
		for _, b := range req.batches {
			s.answered(b, nil, -1, -1, now)
		}
		return
	}
	answered := slices.Grow(req.answered[:0], len(req.batches))[:len(req.batches)]
	clear(answered)
	req.answered = answered
	for _, t := range resp.(*kmsg.ProduceResponse).Topics {
		for _, p := range t.Partitions {
			for i, b := range req.batches {
				if answered[i] || b.pq.tp.Partition != p.Partition || !topicMatches(&t, b.pq.tp.Topic, req.ids[i]) {
					continue
				}
				answered[i] = true
				err := kerr.ErrorForCode(p.ErrorCode)
				if errors.Is(err, kerr.DuplicateSequenceNumber) {
					err = nil
				} else if err != nil && p.ErrorMessage != nil && *p.ErrorMessage != "" {
					err = fmt.Errorf("%w: %s", err, *p.ErrorMessage)
				}
				s.answered(b, err, p.BaseOffset, p.LogAppendTime, now)
				break
			}
		}
	}
	for i, b := range req.batches {
		if !answered[i] {
			s.answered(b, errNoPartitionResponse, -1, -1, now)
		}
	}
}

// topicMatches reports whether a response topic is the one a batch was
// sent to: by name when the response names topics (v12 and older, where
// every topic id is zero), by id otherwise (v13+). The broker may list the
// topics in any order.
func topicMatches(t *kmsg.ProduceResponseTopic, name string, id [16]byte) bool {
	if t.Topic != "" {
		return t.Topic == name
	}
	return id != [16]byte{} && t.TopicID == id
}

// answered handles one batch's outcome. A batch that already expired on
// the wire has had its callbacks; its answer only settles its partition's
// sequences and frees its memory.
func (s *sender) answered(b *batch, err error, baseOffset, logAppendTime int64, now time.Time) {
	if s.log.Enabled(s.ctx, slog.LevelDebug) {
		s.log.Debug("produce answered", "topic", b.pq.tp.Topic, "partition", b.pq.tp.Partition, "producer_id", b.pid.ID,
			"epoch", b.pid.Epoch, "sequence", b.seq, "records", len(b.records), "attempt", b.attempts, "offset", baseOffset, "err", err)
	}
	if b.expired {
		if err == nil && b.seq >= 0 {
			s.acked(b)
		}
		s.acc.release(b)
		return
	}
	if err != nil {
		s.failed(b, err, now)
	} else {
		s.succeeded(b, baseOffset, logAppendTime)
	}
}

// failed decides what a batch's failure means: retry it, start its
// partition over under a new producer id, or fail its records. The
// idempotence errors depend on the partition's sequences; classify decides
// the rest.
func (s *sender) failed(b *batch, err error, now time.Time) {
	txn := s.s.TransactionalID != ""
	if s.stopping || errors.Is(err, client.ErrClosed) {
		s.failUnknown(b, fmt.Errorf("%w: %w", ErrClosed, err))
		return
	}
	if s.s.idempotent {
		switch {
		case errors.Is(err, kerr.OutOfOrderSequenceNumber):
			s.outOfOrder(b, err, now)
			return
		case errors.Is(err, kerr.UnknownProducerID) && txn:
			// The broker has no state for us: the transaction must abort
			// and the next one starts under a bumped epoch.
			s.p.txn.bumpEpoch.Store(true)
			s.failRejected(b, err)
			return
		case errors.Is(err, kerr.UnknownProducerID), errors.Is(err, kerr.InvalidProducerEpoch) && !txn:
			// KIP-360: the partition starts over under a new producer id;
			// UNKNOWN_PRODUCER_ID's batch was not written, so it is resent.
			s.requestBump(b.pq)
			if errors.Is(err, kerr.UnknownProducerID) {
				s.retry(b, err, now)
			} else {
				s.failRejected(b, err)
			}
			return
		}
	}
	b.maybe = b.maybe || mayHaveWritten(err)
	switch classify(err, fromProduce, txn) {
	case errFatal:
		s.p.setFatal(err)
		s.failRejected(b, err)
	case errRetriable:
		s.retry(b, err, now)
	default:
		switch {
		case (errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)) && len(b.records) > 1:
			s.split(b, err)
		case errors.Is(err, errNoPartitionResponse):
			s.retry(b, err, now)
		default:
			s.failRejected(b, err) // an abortable error fails the transaction in fail
		}
	}
}

// mayHaveWritten reports errors that leave open whether the broker wrote
// the batch.
func mayHaveWritten(err error) bool {
	return errors.Is(err, kerr.RequestTimedOut) || errors.Is(err, kerr.NotEnoughReplicasAfterAppend) ||
		errors.Is(err, errNoPartitionResponse) || errors.Is(err, client.ErrConnectionClosed) ||
		errors.Is(err, client.ErrRequestTimeout) || errors.Is(err, client.ErrCorrelationMismatch)
}

// outOfOrder handles OUT_OF_ORDER_SEQUENCE_NUMBER as Java's
// TransactionManager.canRetry does.
func (s *sender) outOfOrder(b *batch, err error, now time.Time) {
	pq := b.pq
	reseq := b.reseq
	b.reseq = false
	switch {
	case pq.unresolved < 0 && (reseq || b.seq != pq.ackedSeq):
		// An earlier batch failed or is being retried, or this one was
		// renumbered while on the wire: out of order only because of it.
		s.retry(b, err, now)
	case s.s.TransactionalID != "":
		// The broker lost our sequence: the transaction must abort and
		// the next one starts under a bumped epoch.
		s.p.txn.bumpEpoch.Store(true)
		s.failRejected(b, err)
	case pq.unresolved < 0 || b.seq == pq.unresolved:
		// KIP-360: the broker lost our sequence, or a batch whose outcome
		// we do not know left a gap: start over under a new producer id.
		s.requestBump(pq)
		s.retry(b, err, now)
	default:
		s.retry(b, err, now) // wait for the unresolved sequence to resolve
	}
}

// split rebuilds a batch the broker found too large as two halves and
// queues them in its place, as Java's client does. The halves take over the
// batch's sequence range (nothing of it was written), so the sequences of
// later batches stay valid.
func (s *sender) split(b *batch, err error) {
	pq := b.pq
	half := len(b.records) / 2
	parts := make([]*batch, 0, 2)
	seq := b.seq
	for i, recs := range [][]pending{b.records[:half:half], b.records[half:]} {
		nb := &batch{
			pq:       pq,
			records:  recs,
			full:     true, // never appended to again
			created:  b.created,
			seq:      -1,
			attempts: b.attempts,
			lastErr:  err,
			pid:      b.pid,
			reseq:    b.reseq,
		}
		if i == 0 {
			nb.reserved = b.reserved // buffer.memory moves with the records
		}
		bld := recordbatch.NewBuilder(s.s.batchOpts, 0)
		for _, p := range recs {
			bld.Append(p.rec.Timestamp.UnixMilli(), p.rec.Key, p.rec.Value, p.rec.Headers)
		}
		stamp := recordbatch.NoProducer()
		if seq >= 0 {
			nb.seq = seq
			stamp = nb.stamp()
			seq = addSeq(seq, len(recs))
		}
		raw, ferr := bld.Finish(stamp)
		if ferr != nil {
			s.failRejected(b, ferr)
			return
		}
		nb.raw = raw
		parts = append(parts, nb)
	}
	s.log.Debug("splitting batch", "topic", pq.tp.Topic, "partition", pq.tp.Partition, "records", len(b.records), "err", err)
	if i := slices.Index(pq.seqd, b); i >= 0 {
		pq.seqd = slices.Replace(pq.seqd, i, i+1, parts...)
	}
	s.acc.replace(b, parts...)
	pq.retrying = true
	for _, nb := range parts {
		s.requeue(nb)
	}
}

func (s *sender) retry(b *batch, err error, now time.Time) {
	pq := b.pq
	b.lastErr = err
	if now.Sub(b.created) >= s.s.DeliveryTimeout {
		s.failUnknown(b, s.timeoutErr(b, now))
		return
	}
	if b.attempts > s.s.Retries {
		s.failUnknown(b, err)
		return
	}
	if metadataErr(err) {
		s.cl.InvalidateMetadata(pq.tp.Topic)
		s.refreshMeta()
	}
	pq.retrying = true
	if pq.backoff == nil {
		pq.backoff = client.NewBackoff(s.s.RetryBackoff, s.s.RetryBackoffMax)
	}
	b.retryAt = now.Add(pq.backoff.NextBackOff())
	s.log.Debug("retrying batch", "topic", pq.tp.Topic, "partition", pq.tp.Partition, "attempt", b.attempts, "err", err)
	s.requeue(b)
}

// metadataErr reports errors after which the partition's leader may have
// moved, so metadata must be refetched.
func metadataErr(err error) bool {
	for _, e := range []error{kerr.NotLeaderForPartition, kerr.UnknownTopicOrPartition, kerr.LeaderNotAvailable,
		kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch, kerr.KafkaStorageError, kerr.NotEnoughReplicas,
		client.ErrConnectionClosed, client.ErrDial, client.ErrRequestTimeout, client.ErrUnknownBroker} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *sender) timeoutErr(b *batch, now time.Time) error {
	err := fmt.Errorf("%w: expiring %d record(s) for %s-%d: %d ms has passed since batch creation",
		ErrRecordTimeout, len(b.records), b.pq.tp.Topic, b.pq.tp.Partition, now.Sub(b.created).Milliseconds())
	if b.lastErr != nil {
		err = fmt.Errorf("%w (last error: %w)", err, b.lastErr)
	}
	return err
}

// expire fails the queued batches of pq older than delivery.timeout.ms and
// reports whether pq is left empty.
func (s *sender) expire(pq *partQueue, now time.Time, soon func(time.Time)) bool {
	var expired []*batch
	pq.mu.Lock()
	for len(pq.batches) > 0 {
		b := pq.batches[0]
		if now.Sub(b.created) < s.s.DeliveryTimeout {
			soon(b.created.Add(s.s.DeliveryTimeout))
			break
		}
		b.full = true
		pq.batches[0] = nil
		pq.batches = pq.batches[1:]
		expired = append(expired, b)
	}
	empty := len(pq.batches) == 0
	pq.mu.Unlock()
	for _, b := range expired {
		s.failUnknown(b, s.timeoutErr(b, now))
	}
	return empty
}

// expireOnWire fails the batches on the wire for delivery.timeout.ms
// without waiting for their responses (which may take request.timeout.ms
// more), as Java's Sender does. Their outcome is unknown: their sequences
// stay unresolved until the responses come back.
func (s *sender) expireOnWire(now time.Time, soon func(time.Time)) {
	for req := range s.onWire {
		for _, b := range req.batches {
			if b.expired {
				continue
			}
			if due := b.created.Add(s.s.DeliveryTimeout); now.Before(due) {
				soon(due)
				continue
			}
			s.failUnknown(b, s.timeoutErr(b, now))
		}
	}
}

func (s *sender) succeeded(b *batch, baseOffset, logAppendTime int64) {
	pq := b.pq
	if b.seq >= 0 {
		s.acked(b)
	}
	if pq.backoff != nil {
		pq.backoff.Reset()
	}
	for i := range b.records {
		r := b.records[i].rec
		r.Partition = pq.tp.Partition
		r.Offset = -1
		if baseOffset >= 0 {
			r.Offset = baseOffset + int64(i)
		}
		if logAppendTime >= 0 {
			r.Timestamp, r.TimestampType = time.UnixMilli(logAppendTime), kafkit.LogAppendTime
		}
		s.p.finishRecord(&b.records[i], nil)
	}
	s.acc.complete(b)
}

// failRejected fails a batch the broker did not write. Only its partition
// is touched, as in Java's TransactionManager.handleFailedBatch: a
// transaction moves the later sequences down over the rejected records
// (adjustSequencesDueToFailedBatch), so the later batches, which the broker
// rejects as out of order meanwhile, follow on without a gap; an idempotent
// producer starts the partition over under a bumped epoch instead (KIP-360).
// Moving sequences is unsafe while a request the client gave up on may still
// reach the broker: its batch, resent under a lower sequence, leaves its old
// sequence next in line, and the old request is written as well. A
// transaction's records are aborted and the epoch it ends under fences such
// requests (KIP-890); an idempotent producer has only the bump.
func (s *sender) failRejected(b *batch, err error) {
	pq := b.pq
	if b.maybe {
		// An earlier attempt may have been written: the broker checks
		// records before it recognizes a resent batch.
		s.failUnknown(b, fmt.Errorf("%w: %w", ErrUnknownOutcome, err))
		return
	}
	if i := slices.Index(pq.seqd, b); i >= 0 {
		later := pq.seqd[i+1:]
		if s.s.TransactionalID == "" {
			// Under this epoch the broker waits for b's sequence,
			// which is never sent again: the later batches' attempts
			// cannot have been written, so renumber may resend them.
			for _, o := range later {
				o.behindGap = true
			}
			s.requestBump(pq)
		} else {
			n := len(b.records)
			for _, o := range later {
				o.seq, o.restamp, o.reseq = addSeq(o.seq, -n), true, true
			}
			pq.nextSeq = addSeq(pq.nextSeq, -n)
		}
	}
	s.fail(b, err)
}

// failUnknown fails a batch that may or may not have been written (it
// expired or ran out of retries after being sent). Its partition's
// sequence stays unresolved until every batch sent before and after it is
// settled (see resolve); nothing new is sent to the partition meanwhile.
func (s *sender) failUnknown(b *batch, err error) {
	if slices.Contains(b.pq.seqd, b) {
		b.pq.unresolved = addSeq(b.seq, len(b.records))
	}
	s.fail(b, err)
}

// fail completes a batch with err; failRejected and failUnknown settle its
// sequence first. A batch still on the wire keeps its memory until its
// response comes back.
func (s *sender) fail(b *batch, err error) {
	s.forget(b)
	if s.s.TransactionalID != "" {
		s.p.txnFailed(err)
	}
	for i := range b.records {
		s.p.finishRecord(&b.records[i], err)
	}
	if b.onWire {
		b.expired = true
		s.acc.replace(b)
	} else {
		s.acc.complete(b)
	}
}

// acked records a batch's sequence as written.
func (s *sender) acked(b *batch) {
	s.forget(b)
	if b.pid.ID == b.pq.pid.ID && b.pid.Epoch == b.pq.pid.Epoch {
		b.pq.ackedSeq, b.pq.known = addSeq(b.seq, len(b.records)), true
	}
}

// forget drops b from its partition's outstanding sequenced batches.
func (s *sender) forget(b *batch) {
	if i := slices.Index(b.pq.seqd, b); i >= 0 {
		b.pq.seqd = slices.Delete(b.pq.seqd, i, i+1)
	}
}

// failQueued fails every batch still queued, and makes later appends fail
// with ErrClosed.
func (s *sender) failQueued(err error) {
	for _, pq := range s.acc.close() {
		for _, b := range pq {
			s.fail(b, err)
		}
	}
}

// seqReady reports whether pq's head batch may be sent as far as sequences
// go, moving pq to the producer's current id and epoch when it can, as
// Java's RecordAccumulator.shouldStopDrainBatchesForPartition and
// TransactionManager.maybeUpdateProducerIdAndEpoch: a batch already
// sequenced is resent under the id it was written under; a new one waits
// until nothing sequenced is outstanding if the partition is on an older
// id, or while an earlier batch's outcome is unknown.
func (s *sender) seqReady(pq *partQueue) bool {
	if !s.s.idempotent {
		return true
	}
	if !s.pidReady {
		return false
	}
	settled := len(pq.seqd) == 0 && pq.inflight == 0
	current := pq.pid.ID == s.pid.ID && pq.pid.Epoch == s.pid.Epoch
	if pq.bump {
		if current || pq.inflight > 0 {
			return false
		}
		s.renumber(pq)
		return true
	}
	pq.mu.Lock()
	headSeq := len(pq.batches) > 0 && pq.batches[0].seq >= 0
	pq.mu.Unlock()
	switch {
	case headSeq:
		return true
	case current:
		return pq.unresolved < 0
	case settled:
		s.renumber(pq)
		return true
	}
	return false
}

// maybeResolve settles a partition with an unknown outcome once nothing
// sequenced is outstanding (Java's maybeResolveSequences): if the
// acknowledgements reached the last sequence used, the batch was written
// after all; otherwise the broker has a gap we cannot fill, so the
// partition starts over under a new producer id, and a transaction must
// abort (and bump its epoch).
func (s *sender) maybeResolve(pq *partQueue) {
	if pq.unresolved < 0 || len(pq.seqd) > 0 || pq.inflight > 0 {
		return
	}
	pq.unresolved = -1
	if pq.ackedSeq == pq.nextSeq {
		return
	}
	if s.s.TransactionalID == "" {
		s.requestBump(pq)
		return
	}
	s.p.txn.bumpEpoch.Store(true)
	s.p.txnFailed(errUnacked)
}

// resolveAll settles every partition it can.
func (s *sender) resolveAll() {
	for _, pq := range s.acc.parts.Load().list {
		s.maybeResolve(pq)
	}
}

// settle waits until no produce request is on the wire, batches that
// expired there included, and their partitions' sequences are settled: a
// transaction ends only after every batch it sent was answered, or a late
// batch could land after its end marker.
func (s *sender) settle(ctx context.Context) error {
	ch := make(chan struct{})
	if err := s.call(ctx, func() { s.settling = append(s.settling, ch) }); err != nil {
		return err
	}
	return s.await(ctx, ch)
}

// requestBump makes pq start over at sequence 0 under a newer producer id
// than the one it uses now, once none of its batches is on the wire
// (KIP-360); an idempotent producer asks for one.
func (s *sender) requestBump(pq *partQueue) {
	pq.bump = true
	if pq.pid.ID == s.pid.ID && pq.pid.Epoch == s.pid.Epoch {
		s.needPID = true
	}
}

// renumber moves pq to the producer's current id and epoch and numbers its
// outstanding sequenced batches (none on the wire) from 0, in order, as
// Java's startSequencesAtBeginning. A batch an earlier attempt of which may
// have been written fails instead: under new numbers the broker could not
// recognize it and would write it twice.
func (s *sender) renumber(pq *partQueue) {
	var unsure []*batch
	pq.mu.Lock()
	pq.batches = slices.DeleteFunc(pq.batches, func(b *batch) bool {
		if b.seq >= 0 && b.maybe && !b.behindGap {
			unsure = append(unsure, b)
			return true
		}
		return false
	})
	pq.mu.Unlock()
	for _, b := range unsure {
		s.fail(b, fmt.Errorf("%w: %w", ErrUnknownOutcome, b.lastErr))
	}
	// A broker that holds our id under an older epoch takes the new
	// epoch only from sequence 0: it stays known.
	pq.known = pq.known && pq.pid.ID == s.pid.ID
	pq.pid = s.pid
	seq := int32(0)
	for _, b := range pq.seqd {
		// The epoch fences the attempts made so far.
		b.pid, b.seq, b.restamp, b.reseq, b.maybe, b.behindGap = s.pid, seq, true, true, false, false
		seq = addSeq(seq, len(b.records))
	}
	pq.nextSeq, pq.ackedSeq, pq.unresolved, pq.bump = seq, 0, -1, false
}

func (s *sender) leader(tp kafkit.TopicPartition) int32 {
	if s.meta == nil {
		return -1
	}
	t, ok := s.meta.Topics[tp.Topic]
	if !ok || t.Err != nil || int(tp.Partition) >= len(t.Partitions) {
		return -1
	}
	p := t.Partitions[tp.Partition]
	if p.Err != nil {
		return -1
	}
	return p.Leader
}

// refreshMeta fetches metadata for every topic the producer has seen, in the
// background; the result comes back through post.
func (s *sender) refreshMeta() {
	if s.metaRunning {
		s.metaAgain = true
		return
	}
	s.metaRunning = true
	topics := s.p.topicList()
	s.p.spawn(func() {
		m, err := s.cl.Metadata(s.ctx, topics...)
		s.post(func() {
			s.metaRunning = false
			if err != nil {
				s.log.Warn("metadata refresh failed", "err", err)
				s.metaNotTill = time.Now().Add(s.s.RetryBackoff)
			} else {
				s.setMeta(m)
			}
			if s.metaAgain {
				s.metaAgain = false
				s.refreshMeta()
			}
		})
	})
}

func (s *sender) setMeta(m *client.Metadata) {
	s.meta, s.metaAt = m, time.Now()
	missing := false
	for name, t := range m.Topics {
		if t.Err == nil {
			s.p.setTopicMeta(name, &t)
		}
		for _, p := range t.Partitions {
			missing = missing || p.Leader < 0 || p.Err != nil
		}
		missing = missing || t.Err != nil
	}
	if missing {
		s.metaNotTill = time.Now().Add(s.s.RetryBackoff)
	}
}

// maybeFetchPID gives an idempotent (non-transactional) producer its
// producer id, and a newer epoch when a partition must start over. As in
// Java (KIP-360) the epoch is bumped locally: the broker takes a higher
// epoch at sequence 0 and from then on rejects the old epoch, so a request
// of the old one that reaches it late cannot be written after the
// partition moved on. Only an exhausted epoch takes a new producer id from
// InitProducerId. Partitions keep the epoch they use until they can move.
func (s *sender) maybeFetchPID() {
	if !s.s.idempotent || s.s.TransactionalID != "" || s.pidFetching || s.stopping {
		return
	}
	if s.pidReady && !s.needPID {
		return
	}
	if s.pidReady && s.pid.Epoch < math.MaxInt16 {
		s.needPID = false
		s.setPID(s.pid.ID, s.pid.Epoch+1)
		s.wake() // drain again: the partitions waiting for it can move
		return
	}
	s.pidFetching = true
	s.p.spawn(func() {
		id, epoch, err := s.p.initProducerID(s.ctx, nil, -1, -1)
		s.post(func() {
			s.pidFetching = false
			if err != nil {
				if s.ctx.Err() == nil {
					s.p.setFatal(fmt.Errorf("InitProducerId: %w", err))
					s.failQueued(err)
				}
				return
			}
			s.needPID = false
			s.setPID(id, epoch)
		})
	})
}

// setPID installs a producer id and epoch; each partition moves to it when
// seqReady lets it.
func (s *sender) setPID(id int64, epoch int16) {
	s.pid = recordbatch.Producer{ID: id, Epoch: epoch, BaseSequence: -1}
	s.pidReady = true
	s.log.Debug("producer id", "producer_id", id, "epoch", epoch)
}
