package producer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// The RecordAccumulator: per-partition deques of batches that Send appends
// to, built straight into wire bytes by recordbatch.Builder.
//
// Ownership:
//   - accumulator.parts is copy-on-write: readers load it lock-free, writers
//     hold partsMu.
//   - partQueue.batches, and the open (last) batch's builder, records and
//     full flag, are guarded by partQueue.mu: Send's goroutines append under
//     it, the sender goroutine pops and re-queues under it.
//   - Everything marked "sender-owned" (a batch once drained, the sequence
//     and in-flight bookkeeping of a partQueue) is touched only by the sender
//     goroutine.
//   - memory and incomplete have their own locks.

// pending is one record waiting for its batch's outcome.
type pending struct {
	rec *kafkit.Record
	cb  func(*kafkit.Record, error)
	ctx context.Context // what the interceptors' OnSend returned, for OnAck
}

// batch is one record batch of one partition.
type batch struct {
	pq       *partQueue
	builder  *recordbatch.Builder // non-nil until the sender finishes the batch
	records  []pending
	created  time.Time
	reserved int64         // bytes of buffer.memory held until completion
	full     bool          // no more appends; guarded by pq.mu while queued
	done     chan struct{} // closed on completion, for Flush

	// Sender-owned.
	raw      []byte // the finished wire bytes, reused by retries
	seq      int32  // base sequence, -1 until first drained (idempotence only)
	attempts int
	retryAt  time.Time
	lastErr  error

	// Idempotence, sender-owned: the producer id and epoch of the batch's
	// sequence, and whether raw must be restamped (the sequence moved to
	// close a gap, or to start over under a new producer id) before the
	// next attempt; restamping waits for the batch to be back from the
	// wire, where the client may still be writing its bytes.
	pid     recordbatch.Producer
	restamp bool
	reseq   bool // the sequence was rewritten: OUT_OF_ORDER_SEQUENCE_NUMBER for it is expected once
	onWire  bool // in a request whose response has not been handled
	maybe   bool // an attempt may have been written: its answer was lost or came after the write
	expired bool // failed by delivery.timeout.ms while on the wire; its response only settles sequences
}

func (b *batch) size() int {
	if b.raw != nil {
		return len(b.raw)
	}
	return b.builder.Len()
}

// partQueue is one partition's deque of batches, oldest first; only the
// last batch can be open for appends.
type partQueue struct {
	tp kafkit.TopicPartition

	mu      sync.Mutex // guards batches, closed and the open batch's builder, records and full
	batches []*batch
	closed  bool // the producer is closing: appends fail with ErrClosed

	// Sender-owned.
	// Idempotence, as Java's TxnPartitionEntry: the producer id and epoch
	// the partition's sequences run under (it moves to the producer's
	// current one only when none of its sequenced batches is left, or,
	// after bump, when none is on the wire and they start over from 0), the
	// sequenced batches not yet completed in sequence order, and the
	// sequence after a batch whose outcome is unknown (-1: none).
	pid            recordbatch.Producer
	seqd           []*batch
	unresolved     int32
	bump           bool  // start over at sequence 0 under a newer producer id than pid (KIP-360)
	nextSeq        int32 // sequence of the next record drained for the first time
	ackedSeq       int32 // sequence after the last acknowledged record
	inflight       int   // batches in flight
	inflightBroker int32 // where the in-flight batches went
	retrying       bool  // a batch failed; send nothing until in-flight ones return
	backoff        backoff.BackOff
	addedToTxn     bool // AddPartitionsToTxn done for the current transaction
}

// partsMap is an immutable snapshot of the partition queues.
type partsMap struct {
	byTP map[kafkit.TopicPartition]*partQueue
	list []*partQueue
}

type accumulator struct {
	batchSize int
	codec     recordbatch.Codec
	txn       bool
	wake      func() // tells the sender a batch was created or filled

	partsMu sync.Mutex // serializes writers of parts, guards closed
	parts   atomic.Pointer[partsMap]
	closed  bool // set by close: new queues start closed

	mem memory

	incMu      sync.Mutex // guards incomplete; taken after partQueue.mu, never before
	incomplete map[*batch]struct{}

	// free recycles the storage of completed uncompressed batches: the
	// sender puts, Send's goroutines take, neither ever blocks.
	free chan batchStorage

	flushing atomic.Int32 // >0 while Flush or Close wants every batch sent now
}

func newAccumulator(s *settings, wake func()) *accumulator {
	a := &accumulator{
		batchSize:  s.BatchSize,
		codec:      s.codec,
		txn:        s.TransactionalID != "",
		wake:       wake,
		incomplete: make(map[*batch]struct{}),
		free:       make(chan batchStorage, 64),
	}
	a.mem.init(s.BufferMemory, s.MaxBlock)
	a.parts.Store(&partsMap{byTP: map[kafkit.TopicPartition]*partQueue{}})
	return a
}

func (a *accumulator) queue(tp kafkit.TopicPartition) *partQueue {
	if pq := a.parts.Load().byTP[tp]; pq != nil {
		return pq
	}
	a.partsMu.Lock()
	defer a.partsMu.Unlock()
	old := a.parts.Load()
	if pq := old.byTP[tp]; pq != nil {
		return pq
	}
	pq := &partQueue{tp: tp, inflightBroker: -1, closed: a.closed, pid: recordbatch.NoProducer(), unresolved: -1}
	next := &partsMap{byTP: make(map[kafkit.TopicPartition]*partQueue, len(old.byTP)+1), list: append(old.list[:len(old.list):len(old.list)], pq)}
	for k, v := range old.byTP {
		next.byTP[k] = v
	}
	next.byTP[tp] = pq
	a.parts.Store(next)
	return pq
}

// estimate bounds the bytes a record takes in a new batch, to size the
// buffer.memory reservation and check max.request.size before building.
func estimate(r *kafkit.Record) int {
	n := recordbatch.HeaderLen + 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// append adds r to its partition's open batch, or to a new batch once
// buffer.memory has room (waiting until deadline). It runs on the caller of
// Send.
func (a *accumulator) append(ctx context.Context, deadline *blockDeadline, pq *partQueue, p pending) error {
	ts := p.rec.Timestamp.UnixMilli()
	pq.mu.Lock()
	ok, closed := a.tryAppend(pq, ts, p), pq.closed
	pq.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if ok {
		return nil
	}
	reserve := int64(max(a.batchSize, estimate(p.rec)))
	if err := a.mem.acquire(ctx, deadline.time(), reserve); err != nil {
		return err
	}
	pq.mu.Lock()
	if pq.closed || a.tryAppend(pq, ts, p) { // closing, or another Send opened a batch meanwhile
		closed := pq.closed
		pq.mu.Unlock()
		a.mem.release(reserve)
		if closed {
			return ErrClosed
		}
		return nil
	}
	st := a.storage(int(reserve))
	b := &batch{
		pq:       pq,
		builder:  recordbatch.NewBuilderBuffer(recordbatch.Options{Compression: a.codec, Transactional: a.txn}, st.buf),
		records:  st.records,
		created:  time.Now(),
		reserved: reserve,
		done:     make(chan struct{}),
		seq:      -1,
	}
	size := b.builder.Append(ts, p.rec.Key, p.rec.Value, p.rec.Headers)
	if cap(b.records) == 0 {
		b.records = make([]pending, 0, int(reserve)/size+1) // room for records like this one
	}
	a.added(b, p)
	// Register before publishing: once in pq.batches the sender may send
	// and complete the batch, and a late registration would leave Flush a
	// completed batch in incomplete forever.
	a.incMu.Lock()
	a.incomplete[b] = struct{}{}
	a.incMu.Unlock()
	pq.batches = append(pq.batches, b)
	pq.mu.Unlock()
	a.wake()
	return nil
}

// close makes every later append fail with ErrClosed and returns the
// batches still queued, per partition, for the sender to fail.
func (a *accumulator) close() [][]*batch {
	a.partsMu.Lock()
	a.closed = true
	a.partsMu.Unlock()
	var out [][]*batch
	for _, pq := range a.parts.Load().list {
		pq.mu.Lock()
		pq.closed = true
		out = append(out, pq.batches)
		pq.batches = nil
		pq.mu.Unlock()
	}
	return out
}

// tryAppend appends to the open batch if the record fits in batch.size.
// Called with pq.mu held.
func (a *accumulator) tryAppend(pq *partQueue, ts int64, p pending) bool {
	if len(pq.batches) == 0 {
		return false
	}
	b := pq.batches[len(pq.batches)-1]
	if b.full {
		return false
	}
	if !b.builder.TryAppend(a.batchSize, ts, p.rec.Key, p.rec.Value, p.rec.Headers) {
		b.full = true
		a.wake()
		return false
	}
	a.added(b, p)
	return true
}

// added records p as appended to b.
func (a *accumulator) added(b *batch, p pending) {
	b.records = append(b.records, p)
	if b.builder.Len() >= a.batchSize {
		b.full = true
		a.wake()
	}
}

// batchStorage is the reusable memory of a batch.
type batchStorage struct {
	buf     []byte
	records []pending
}

// storage returns recycled storage for a new batch of batch.size bytes, or
// a fresh buffer of size bytes.
func (a *accumulator) storage(size int) batchStorage {
	if size == a.batchSize {
		select {
		case st := <-a.free:
			return st
		default:
		}
	}
	return batchStorage{buf: make([]byte, 0, size)}
}

// recycle keeps a completed batch's storage for a later batch. Only
// uncompressed batches of batch.size qualify: their wire bytes are the
// builder's buffer, which the client no longer reads once the batch's
// request completed.
func (a *accumulator) recycle(b *batch) {
	if a.codec != recordbatch.None || cap(b.raw) != a.batchSize {
		return
	}
	clear(b.records)
	select {
	case a.free <- batchStorage{buf: b.raw[:0], records: b.records[:0]}:
	default:
	}
	b.raw, b.records = nil, nil
}

// complete releases a finished batch's memory, recycles its storage and
// wakes its Flush waiters. Sender goroutine only.
func (a *accumulator) complete(b *batch) {
	a.release(b)
	a.replace(b)
}

// release gives back a batch's buffer.memory and storage. A batch that
// expired on the wire is completed first and released when its response
// comes back, once the client no longer reads its bytes.
func (a *accumulator) release(b *batch) {
	a.recycle(b)
	a.mem.release(b.reserved)
}

// replace retires b in favour of parts (a split batch): they take over its
// place among the incomplete batches.
func (a *accumulator) replace(b *batch, parts ...*batch) {
	a.incMu.Lock()
	delete(a.incomplete, b)
	for _, p := range parts {
		a.incomplete[p] = struct{}{}
	}
	a.incMu.Unlock()
	close(b.done)
}

// incompleteBatches snapshots the batches not yet completed.
func (a *accumulator) incompleteBatches() []*batch {
	a.incMu.Lock()
	defer a.incMu.Unlock()
	out := make([]*batch, 0, len(a.incomplete))
	for b := range a.incomplete {
		out = append(out, b)
	}
	return out
}

// memory is the buffer.memory budget. Send blocks in acquire while it is
// exhausted; the sender releases a batch's bytes when the batch completes.
type memory struct {
	total    int64
	maxBlock time.Duration
	mu       sync.Mutex // guards avail and freed
	avail    int64
	freed    chan struct{} // closed (and replaced) whenever bytes are released
	waiting  atomic.Int32  // Sends blocked in acquire, for tests and metrics
}

func (m *memory) init(total int64, maxBlock time.Duration) {
	m.total, m.maxBlock, m.avail, m.freed = total, maxBlock, total, make(chan struct{})
}

func (m *memory) acquire(ctx context.Context, deadline time.Time, n int64) error {
	if n > m.total {
		return fmt.Errorf("%w: the record needs %d bytes, more than buffer.memory (%d bytes)", ErrRecordTooLarge, n, m.total)
	}
	var timer *time.Timer
	for {
		m.mu.Lock()
		if m.avail >= n {
			m.avail -= n
			m.mu.Unlock()
			return nil
		}
		freed := m.freed
		m.mu.Unlock()
		if timer == nil {
			wait := time.Until(deadline)
			if wait <= 0 {
				return m.fullErr()
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
			m.waiting.Add(1)
			defer m.waiting.Add(-1)
		}
		select {
		case <-freed:
		case <-timer.C:
			return m.fullErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *memory) fullErr() error {
	return fmt.Errorf("%w: buffer.memory (%d bytes) exhausted: waited max.block.ms=%d", ErrBufferFull, m.total, m.maxBlock.Milliseconds())
}

func (m *memory) release(n int64) {
	m.mu.Lock()
	m.avail += n
	close(m.freed)
	m.freed = make(chan struct{})
	m.mu.Unlock()
}
