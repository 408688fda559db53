package producer

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/freelist"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// The RecordAccumulator: per-partition deques of batches that Send appends
// to. Send only counts a record's wire size in (recordbatch.Sizer) and keeps
// it; the batch is encoded (recordbatch.Builder) once no more records go in:
// with compression by a goroutine of its own or by the Send that filled it
// (see compressSealed), uncompressed by the sender as it drains it.
// Encoding was a third of Send's cost, on the caller's goroutine, which is
// the producer's critical path; franz-go likewise encodes when it writes a
// request. Records must therefore not be
// modified until their callback runs, as Send documents.
//
// Ownership:
//   - accumulator.parts is copy-on-write: readers load it lock-free, writers
//     hold partsMu.
//   - partQueue.batches, and the open (last) batch's sizer, records and
//     full flag, are guarded by partQueue.mu: Send's goroutines append under
//     it, the sender goroutine pops and re-queues under it.
//   - Everything marked "sender-owned" (a batch once drained, the sequence
//     and in-flight bookkeeping of a partQueue) is touched only by the sender
//     goroutine.
//   - memory and incomplete have their own locks.

// pending is one record waiting for its batch's outcome. It is kept small
// (Send copies it down to the batch, which holds one per record until the
// outcome): with interceptors, cb also calls their OnAck (withOnAck).
type pending struct {
	rec *kafkit.Record
	cb  func(*kafkit.Record, error)
}

// batch is one record batch of one partition.
type batch struct {
	pq       *partQueue
	sizer    recordbatch.Sizer // the records' wire size, while the batch is open
	records  []pending
	created  time.Time
	reserved int64         // bytes of buffer.memory held until completion
	full     bool          // no more appends; guarded by pq.mu while queued
	done     chan struct{} // closed on completion; made by the first Flush to wait for the batch, under incMu

	// Encoding and compression started when the batch filled (see seal):
	// sealed is closed once sealedRaw and sealErr are set. sealed and
	// sealedLen are set under pq.mu; the records are then read by the
	// goroutine compressing the batch.
	sealed    chan struct{}
	sealedLen int // the uncompressed size, for size() while sealing
	sealedRaw []byte
	sealErr   error

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

	// Sequenced after a batch of its epoch the broker rejected: no attempt
	// under that epoch can have been written (see failRejected).
	behindGap bool
}

func (b *batch) size() int {
	switch {
	case b.raw != nil:
		return len(b.raw)
	case b.sealed != nil:
		return b.sealedLen
	}
	return b.sizer.Len()
}

// partQueue is one partition's deque of batches, oldest first; only the
// last batch can be open for appends.
type partQueue struct {
	tp kafkit.TopicPartition

	mu      sync.Mutex // guards batches, closed and the open batch's sizer, records and full
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
	// known: a batch under pid's id was acknowledged, so the broker holds
	// our sequence and rejects one out of order (a new epoch it takes only
	// from 0). Until then it takes any sequence as our first (Kafka 2.8+),
	// and a later batch written before an earlier one that failed unwritten
	// would leave a gap for good.
	known bool
}

// partsMap is an immutable snapshot of the partition queues.
type partsMap struct {
	byTP map[kafkit.TopicPartition]*partQueue
	list []*partQueue
}

type accumulator struct {
	batchSize int
	opts      recordbatch.Options // codec, level, transactional
	bufCap    int                 // capacity of recycled buffers: batch.size, compressed or not
	wake      func()              // tells the sender a batch was created, filled or sealed

	partsMu sync.Mutex // serializes writers of parts, guards closed
	parts   atomic.Pointer[partsMap]
	closed  bool // set by close: new queues start closed

	mem memory

	incMu      sync.Mutex // guards incomplete; taken after partQueue.mu, never before
	incomplete map[*batch]struct{}

	// Recycled storage, so that steady sending allocates no batch memory:
	// buffers of bufCap bytes serve as builders' buffers and as the
	// destinations of compression; records slices hold batches' pendings.
	// The sender and the goroutines compressing batches put and take
	// buffers; Send's goroutines take records slices.
	bufs freelist.List[[]byte]
	recs freelist.List[[]pending]

	sealSlots chan struct{} // one token per batch encoding and compressing: GOMAXPROCS at most

	flushing atomic.Int32 // >0 while Flush or Close wants every batch sent now
}

func newAccumulator(s *settings, wake func()) *accumulator {
	// Keep at most the batches buffer.memory can hold, and 64.
	keep := int(min(64, max(1, s.BufferMemory/int64(s.BatchSize))))
	a := &accumulator{
		batchSize:  s.BatchSize,
		opts:       s.batchOpts,
		bufCap:     recordbatch.HeaderLen + recordbatch.CompressedCap(s.codec, max(0, s.BatchSize-recordbatch.HeaderLen)),
		wake:       wake,
		incomplete: make(map[*batch]struct{}),
		bufs:       freelist.New[[]byte](keep),
		recs:       freelist.New[[]pending](keep),
		sealSlots:  make(chan struct{}, runtime.GOMAXPROCS(0)),
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

// append adds p's record, with timestamp ts (Unix milliseconds) and payload
// bytes of key, value and headers (recordbatch.PayloadLen), to its
// partition's open batch, or to a new batch once buffer.memory has room
// (waiting until deadline), and counts it in stint, the sticky stint it
// was sent to (nil: none). It runs on the caller of Send.
func (a *accumulator) append(ctx context.Context, deadline *blockDeadline, pq *partQueue, p pending, ts int64, payload int, stint *stickyStint) error {
	pq.mu.Lock()
	size, sealed := a.tryAppend(pq, ts, payload, p)
	closed := pq.closed
	moveOn := size > 0 && stint != nil && stint.add(size)
	pq.mu.Unlock()
	if moveOn {
		stint.moveOn()
	}
	if sealed != nil {
		a.compressSealed(ctx, sealed)
	}
	if closed {
		return ErrClosed
	}
	if size > 0 {
		return nil
	}
	reserve := int64(max(a.batchSize, estimate(p.rec)))
	if err := a.mem.acquire(ctx, deadline.time(), reserve); err != nil {
		return err
	}
	pq.mu.Lock()
	if pq.closed {
		pq.mu.Unlock()
		a.mem.release(reserve)
		return ErrClosed
	}
	if size, sealed = a.tryAppend(pq, ts, payload, p); size > 0 { // another Send opened a batch meanwhile
		moveOn = stint != nil && stint.add(size)
		pq.mu.Unlock()
		if moveOn {
			stint.moveOn()
		}
		a.compressSealed(ctx, sealed)
		a.mem.release(reserve)
		return nil
	}
	recs, _ := a.recs.Get()
	b := &batch{
		pq:       pq,
		records:  recs,
		created:  time.Now(),
		reserved: reserve,
		seq:      -1,
	}
	size = b.sizer.TryAdd(a.batchSize, ts, payload) // a batch's first record always goes in
	moveOn = stint != nil && stint.add(size)
	if cap(b.records) == 0 {
		b.records = make([]pending, 0, int(reserve)/(b.sizer.Len()-recordbatch.HeaderLen)+1) // room for records like this one
	}
	filled := a.added(b, p)
	// Register before publishing: once in pq.batches the sender may send
	// and complete the batch, and a late registration would leave Flush a
	// completed batch in incomplete forever.
	a.incMu.Lock()
	a.incomplete[b] = struct{}{}
	a.incMu.Unlock()
	pq.batches = append(pq.batches, b)
	pq.mu.Unlock()
	if moveOn {
		stint.moveOn()
	}
	a.compressSealed(ctx, sealed)
	a.compressSealed(ctx, filled)
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

// tryAppend appends to the open batch if the record fits in batch.size,
// and returns the bytes it took there (0: it did not go in). A batch it
// closes to appends is returned for compressSealed, which the caller runs
// once it released pq.mu. Called with pq.mu held.
func (a *accumulator) tryAppend(pq *partQueue, ts int64, payload int, p pending) (size int, sealed *batch) {
	if len(pq.batches) == 0 {
		return 0, nil
	}
	b := pq.batches[len(pq.batches)-1]
	if b.full {
		return 0, nil
	}
	if size = b.sizer.TryAdd(a.batchSize, ts, payload); size == 0 {
		b.full = true
		a.wake()
		return 0, a.seal(b)
	}
	return size, a.added(b, p)
}

// added records p as appended to b, and returns b if that filled it and it
// is to be compressed (see tryAppend).
func (a *accumulator) added(b *batch, p pending) *batch {
	b.records = append(b.records, p)
	if b.sizer.Len() >= a.batchSize {
		b.full = true
		a.wake()
		return a.seal(b)
	}
	return nil
}

// encode writes b's records in wire format, uncompressed, into a recycled
// buffer (or, for a batch larger than batch.size, one of its size). Called
// once no more records go into b, by whichever goroutine owns b then.
func (a *accumulator) encode(b *batch) *recordbatch.Builder {
	var buf []byte
	if size := b.sizer.Len(); size > a.bufCap {
		buf = make([]byte, 0, size)
	} else {
		buf = a.buf()
	}
	bld := recordbatch.NewBuilderBuffer(a.opts, buf)
	for _, p := range b.records {
		bld.Append(p.rec.Timestamp.UnixMilli(), p.rec.Key, p.rec.Value, p.rec.Headers)
	}
	return bld
}

// buf returns a recycled buffer, or a new one of the recycled size: a
// buffer of any other size would never be recycled.
func (a *accumulator) buf() []byte {
	if buf, ok := a.bufs.Get(); ok {
		return buf
	}
	return make([]byte, 0, a.bufCap)
}

// putBuf keeps buf for a later batch if it has the recycled size.
func (a *accumulator) putBuf(buf []byte) {
	if cap(buf) == a.bufCap {
		a.bufs.Put(buf[:0])
	}
}

// seal closes a batch that has just filled to appends as being compressed,
// and returns it for compressSealed, which its caller runs once it released
// pq.mu; nil for an uncompressed batch, which the sender encodes as it
// drains it. The producer fields are stamped when the sender drains the
// batch (finish). Called with pq.mu held.
func (a *accumulator) seal(b *batch) *batch {
	if a.opts.Compression == recordbatch.None || b.sealed != nil {
		return nil
	}
	b.sealed, b.sealedLen = make(chan struct{}), b.sizer.Len()
	return b
}

// compressSealed encodes and compresses b (nil: nothing to do), a batch the
// caller of Send has just sealed. If fewer than GOMAXPROCS batches are
// compressing, b compresses on a goroutine of its own, so that batches
// compress on every core while Send's callers fill the next ones
// (compressing in the sender, as franz-go compresses in its connection
// writer, runs every batch through one goroutine). Otherwise every core is
// already compressing: the caller waits for one of those to finish and
// compresses b itself, as Java's producer compresses on the thread that
// sends. Handing b to yet another goroutine instead let Send's callers run
// ahead of compression, filling batches that only waited: up to
// buffer.memory of records held longer, a larger heap for the garbage
// collector to mark and the kernel to fault in, and records compressed long
// after another core wrote them (issue 20, session 14 in the README). If
// ctx ends while the caller waits, b waits for its turn on a goroutine.
func (a *accumulator) compressSealed(ctx context.Context, b *batch) {
	if b == nil {
		return
	}
	select {
	case a.sealSlots <- struct{}{}:
		go a.compress(b)
		return
	default:
	}
	select {
	case a.sealSlots <- struct{}{}:
		a.compress(b)
	case <-ctx.Done():
		go a.compressWhenFree(b)
	}
}

// compressWhenFree compresses b once fewer than GOMAXPROCS batches are
// compressing.
func (a *accumulator) compressWhenFree(b *batch) {
	a.sealSlots <- struct{}{}
	a.compress(b)
}

// compress encodes and compresses b, holding one of sealSlots, which it
// gives back, and wakes the sender.
func (a *accumulator) compress(b *batch) {
	bld := a.encode(b)
	raw, spare, err := bld.FinishInto(a.buf(), recordbatch.NoProducer())
	a.putBuf(spare)
	if err == nil && cap(raw) >= shrinkCompressedCap && len(raw) <= cap(raw)/4 {
		// Keep the batch in its size, not in a recycled buffer of
		// batch.size that its request would hold for a few bytes.
		small := slices.Clone(raw)
		a.putBuf(raw)
		raw = small
	}
	<-a.sealSlots
	b.sealedRaw, b.sealErr = raw, err
	close(b.sealed)
	a.wake()
}

// shrinkCompressedCap is the size of recycled buffers from which a batch
// compressed to a quarter or less moves to a buffer of its size: below it, a
// copy per batch costs more than the memory it frees.
const shrinkCompressedCap = 256 << 10

// sealing is asked by the sender of a batch ready to drain (under pq.mu):
// it seals a batch that lingered out before filling, closing it to appends,
// so that the sender never compresses (a goroutine of the batch's own does,
// once fewer than GOMAXPROCS batches are compressing), and reports whether
// b's compression is still under way; the sender leaves such a batch
// queued until the compression wakes it.
func (a *accumulator) sealing(b *batch) bool {
	if a.opts.Compression == recordbatch.None || b.raw != nil {
		return false
	}
	if b.sealed == nil {
		b.full = true
		go a.compressWhenFree(a.seal(b))
	}
	select {
	case <-b.sealed:
		return false
	default:
		return true
	}
}

// finish returns b's wire bytes stamped with p: encoded now for an
// uncompressed batch, the sealing's result otherwise (the sender drains a
// compressed batch only once sealed). Sender goroutine only.
func (a *accumulator) finish(b *batch, p recordbatch.Producer) ([]byte, error) {
	if b.sealed == nil {
		return a.encode(b).Finish(p)
	}
	<-b.sealed
	if b.sealErr != nil {
		return nil, b.sealErr
	}
	recordbatch.Restamp(b.sealedRaw, p)
	return b.sealedRaw, nil
}

// recycle keeps a completed batch's storage for a later batch: its wire
// bytes (the builder's buffer, or compression's destination), which the
// client no longer reads once the batch's request completed, and its
// records slice.
func (a *accumulator) recycle(b *batch) {
	if b.sealed != nil {
		<-b.sealed // its compression may still be writing into its buffers
	}
	a.putBuf(b.raw)
	if b.records != nil {
		clear(b.records)
		a.recs.Put(b.records[:0])
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
	done := b.done
	a.incMu.Unlock()
	if done != nil {
		close(done)
	}
}

// incompleteBatches snapshots the batches not yet completed, each with a
// done channel to wait on. Only Flush waits for a batch: a channel made for
// every batch was an allocation per Produce request with linger.ms 0.
func (a *accumulator) incompleteBatches() []*batch {
	a.incMu.Lock()
	defer a.incMu.Unlock()
	out := make([]*batch, 0, len(a.incomplete))
	for b := range a.incomplete {
		if b.done == nil {
			b.done = make(chan struct{})
		}
		out = append(out, b)
	}
	return out
}

// memory is the buffer.memory budget. Send blocks in acquire while it is
// exhausted; the sender releases a batch's bytes when the batch completes.
type memory struct {
	total    int64
	maxBlock time.Duration
	mu       sync.Mutex // guards avail, freed and watched
	avail    int64
	freed    chan struct{} // closed (and replaced) when bytes are released while watched
	watched  bool          // an acquire waits on freed: a release without waiters need not replace it
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
		m.watched = true
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
	if m.watched {
		close(m.freed)
		m.freed, m.watched = make(chan struct{}), false
	}
	m.mu.Unlock()
}
