package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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

	pid         recordbatch.Producer // id and epoch; BaseSequence unused
	pidReady    bool
	pidFetching bool
	resetPID    bool // an idempotence error: get a new producer id once nothing is in flight and resequence
	stopping    bool // Close: fail what is left once nothing is in flight

	writers map[int32]*brokerWriter // per-broker request writers, created on first use

	txnToAdd   map[*partQueue]struct{} // partitions waiting for AddPartitionsToTxn
	txnAdding  bool                    // an AddPartitionsToTxn is running
	txnAddDone chan struct{}           // closed when it has been handled
}

// produceReq is one Produce request being built or in flight.
type produceReq struct {
	broker  int32
	size    int
	batches []*batch
	ids     [][16]byte // topic id of each batch, for v13+ responses
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
	select {
	case <-done:
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
	blocked := s.s.idempotent && (!s.pidReady || s.resetPID)
	flushing := s.acc.flushing.Load() > 0
	needMeta := false
	for _, pq := range s.acc.parts.Load().list {
		if pq.inflight == 0 {
			pq.retrying = false
		}
		if s.expire(pq, now, soon) || blocked || (pq.inflight > 0 && pq.retrying) || !s.txnAllow(pq) {
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
			req = &produceReq{broker: leader}
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
		return nil, time.Time{} // its sealing goroutine wakes the sender
	}
	if b.size() > room && !first {
		return nil, now // the request is full; the next drain takes it
	}
	pq.batches[0] = nil
	pq.batches = pq.batches[1:]
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
// header, and (idempotence) its base sequence, which it keeps on retries.
func (s *sender) prepare(pq *partQueue, b *batch) bool {
	if b.raw == nil {
		stamp := recordbatch.NoProducer()
		if s.s.idempotent {
			b.seq = pq.nextSeq
			pq.nextSeq = addSeq(pq.nextSeq, len(b.records))
			stamp = recordbatch.Producer{ID: s.pid.ID, Epoch: s.pid.Epoch, BaseSequence: b.seq}
		}
		raw, err := s.acc.finish(b, stamp)
		if err != nil {
			s.fail(b, fmt.Errorf("producer: building batch for %s-%d: %w", pq.tp.Topic, pq.tp.Partition, err))
			return false
		}
		b.raw, b.builder = raw, nil
	}
	b.attempts++
	return true
}

func (s *sender) send(req *produceReq) {
	kreq := kmsg.NewPtrProduceRequest()
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
			t := kmsg.NewProduceRequestTopic()
			t.Topic, t.TopicID = b.pq.tp.Topic, req.ids[i]
			kreq.Topics = append(kreq.Topics, t)
			ti = len(kreq.Topics) - 1
		}
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition, p.Records = b.pq.tp.Partition, b.raw
		kreq.Topics[ti].Partitions = append(kreq.Topics[ti].Partitions, p)
		b.pq.inflight++
		b.pq.inflightBroker = req.broker
	}
	s.brokerInflight[req.broker]++
	s.totalInflight++
	s.writer(req.broker).push(func() {
		s.cl.RequestBrokerAsync(s.ctx, req.broker, kreq, func(resp kmsg.Response, err error) {
			s.post(func() { s.handleProduce(req, resp, err) })
		})
	})
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

// addSeq advances a sequence number by n records; Kafka's sequences wrap
// from math.MaxInt32 to 0.
func addSeq(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (math.MaxInt32 + 1))
}

// errNoPartitionResponse marks a batch the broker's response left out.
var errNoPartitionResponse = errors.New("producer: produce response did not mention the partition")

func (s *sender) handleProduce(req *produceReq, resp kmsg.Response, err error) {
	s.brokerInflight[req.broker]--
	s.totalInflight--
	for _, b := range req.batches {
		b.pq.inflight--
	}
	now := time.Now()
	if err != nil {
		for _, b := range req.batches {
			s.failed(b, fmt.Errorf("producing to broker %d: %w", req.broker, err), now)
		}
		return
	}
	if s.s.Acks == AcksNone {
		for _, b := range req.batches {
			s.succeeded(b, -1, -1)
		}
		return
	}
	answered := make([]bool, len(req.batches))
	for _, t := range resp.(*kmsg.ProduceResponse).Topics {
		for _, p := range t.Partitions {
			for i, b := range req.batches {
				if answered[i] || b.pq.tp.Partition != p.Partition || (b.pq.tp.Topic != t.Topic && req.ids[i] != t.TopicID) {
					continue
				}
				answered[i] = true
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && !errors.Is(err, kerr.DuplicateSequenceNumber) {
					if p.ErrorMessage != nil && *p.ErrorMessage != "" {
						err = fmt.Errorf("%w: %s", err, *p.ErrorMessage)
					}
					s.failed(b, err, now)
				} else {
					s.succeeded(b, p.BaseOffset, p.LogAppendTime)
				}
				break
			}
		}
	}
	for i, b := range req.batches {
		if !answered[i] {
			s.failed(b, errNoPartitionResponse, now)
		}
	}
}

// failed decides what a batch's failure means: retry it, renew the producer
// id, or fail its records.
func (s *sender) failed(b *batch, err error, now time.Time) {
	pq := b.pq
	txn := s.s.TransactionalID != ""
	switch {
	case s.stopping || errors.Is(err, client.ErrClosed):
		s.fail(b, fmt.Errorf("%w: %w", ErrClosed, err))
	case s.s.idempotent && errors.Is(err, kerr.OutOfOrderSequenceNumber):
		if b.seq != pq.ackedSeq {
			// An earlier batch of this partition is not acknowledged yet:
			// it failed or is being retried, so this one is out of order
			// only because of it. Retry behind it.
			s.retry(b, err, now)
			return
		}
		// The broker lost our sequence: as Java does, fail the batch and
		// continue under a new epoch (see fail).
		s.fail(b, err)
	case s.s.idempotent && errors.Is(err, kerr.UnknownProducerID) && !txn:
		// The broker forgot the producer id (its records were deleted by
		// retention): get a new one and resend under it.
		s.resetPID = true
		s.retry(b, err, now)
	case errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.ProducerFenced),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.InvalidTxnState):
		if txn {
			s.p.setFatal(err)
		}
		s.fail(b, err)
	case (errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)) && len(b.records) > 1:
		s.split(b, err)
	case client.IsRetriable(err) || errors.Is(err, errNoPartitionResponse):
		s.retry(b, err, now)
	default:
		s.fail(b, err)
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
			done:     make(chan struct{}),
			seq:      -1,
			attempts: b.attempts,
			lastErr:  err,
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
			stamp = recordbatch.Producer{ID: s.pid.ID, Epoch: s.pid.Epoch, BaseSequence: seq}
			seq = addSeq(seq, len(recs))
		}
		raw, ferr := bld.Finish(stamp)
		if ferr != nil {
			s.fail(b, ferr)
			return
		}
		nb.raw = raw
		parts = append(parts, nb)
	}
	s.log.Debug("splitting batch", "topic", pq.tp.Topic, "partition", pq.tp.Partition, "records", len(b.records), "err", err)
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
		s.fail(b, s.timeoutErr(b, now))
		return
	}
	if b.attempts > s.s.Retries {
		s.fail(b, err)
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
// reports whether pq is left empty. In-flight batches expire when their
// response comes back.
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
		s.fail(b, s.timeoutErr(b, now))
	}
	return empty
}

func (s *sender) succeeded(b *batch, baseOffset, logAppendTime int64) {
	pq := b.pq
	if b.seq >= 0 {
		pq.ackedSeq = addSeq(b.seq, len(b.records))
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

// fail completes a batch with err. A batch that was sent leaves a gap in
// its partition's sequence numbers that the broker would reject every later
// batch for, so (as Java's client does) the producer moves to a new epoch:
// a new producer id now, or for a transactional producer a bumped epoch
// once the transaction is aborted.
func (s *sender) fail(b *batch, err error) {
	if b.seq >= 0 && s.s.idempotent && !s.stopping {
		if s.s.TransactionalID == "" {
			s.resetPID = true
		} else {
			s.p.txn.bumpEpoch.Store(true)
		}
	}
	if s.s.TransactionalID != "" {
		s.p.txnFailed(err)
	}
	for i := range b.records {
		s.p.finishRecord(&b.records[i], err)
	}
	s.acc.complete(b)
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
			s.p.setPartitions(name, int32(len(t.Partitions)))
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

// maybeFetchPID starts InitProducerId for an idempotent (non-transactional)
// producer that has no producer id yet, or must replace it, once nothing is
// in flight.
func (s *sender) maybeFetchPID() {
	if !s.s.idempotent || s.s.TransactionalID != "" || s.pidFetching || s.stopping {
		return
	}
	if (s.pidReady && !s.resetPID) || s.totalInflight > 0 {
		return
	}
	s.pidFetching = true
	s.p.spawn(func() {
		id, epoch, err := s.p.initProducerID(s.ctx, nil)
		s.post(func() {
			s.pidFetching = false
			if err != nil {
				if s.ctx.Err() == nil {
					s.p.setFatal(fmt.Errorf("InitProducerId: %w", err))
					s.failQueued(err)
				}
				return
			}
			s.setPID(id, epoch)
		})
	})
}

// setPID installs a producer id and epoch and, after an idempotence error,
// renumbers the sequences of every batch already stamped (nothing is in
// flight then), as Java's client does after resetting its producer id.
func (s *sender) setPID(id int64, epoch int16) {
	s.pid = recordbatch.Producer{ID: id, Epoch: epoch}
	s.pidReady = true
	s.log.Debug("producer id", "producer_id", id, "epoch", epoch)
	if !s.resetPID {
		return
	}
	s.resetPID = false
	for _, pq := range s.acc.parts.Load().list {
		pq.mu.Lock()
		seq := int32(0)
		for _, b := range pq.batches {
			if b.raw == nil {
				continue
			}
			b.seq = seq
			recordbatch.Restamp(b.raw, recordbatch.Producer{ID: id, Epoch: epoch, BaseSequence: seq})
			seq = addSeq(seq, len(b.records))
		}
		pq.nextSeq, pq.ackedSeq = seq, 0
		pq.mu.Unlock()
	}
}
