package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// maxProducerBatches is how many recent batches per producer are kept for
// duplicate detection: a client has at most 5 requests in flight.
const maxProducerBatches = 5

// batchMeta describes one appended idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
	timestamp              int64 // the batch's maxTimestamp as stored
}

// producerEntry is the state kept for one producer id.
type producerEntry struct {
	epoch            int16
	coordinatorEpoch int32 // of the producer's last transaction marker, -1 before any
	txnFirst         int64 // first offset of the ongoing transaction, -1 when none
	// lastTimestamp is the timestamp of the producer's last batch or
	// transaction marker, -1 before any: expiration counts from it (Kafka's
	// ProducerStateEntry.lastTimestamp), so a producer whose only trace is
	// a fencing marker is remembered, and its zombie refused, as long as
	// one with batches.
	lastTimestamp int64
	batches       [maxProducerBatches]batchMeta // ring buffer, oldest at head
	head, n       int
}

func newProducerEntry(epoch int16) producerEntry {
	return producerEntry{epoch: epoch, coordinatorEpoch: -1, txnFirst: -1, lastTimestamp: -1}
}

func (e *producerEntry) at(i int) *batchMeta { return &e.batches[(e.head+i)%maxProducerBatches] }

func (e *producerEntry) last() (batchMeta, bool) {
	if e.n == 0 {
		return batchMeta{}, false
	}
	return *e.at(e.n - 1), true
}

func (e *producerEntry) findDuplicate(epoch int16, firstSeq, lastSeq int32) (batchMeta, bool) {
	if epoch != e.epoch {
		return batchMeta{}, false
	}
	for i := range e.n {
		if b := e.at(i); b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return *b, true
		}
	}
	return batchMeta{}, false
}

// setEpoch moves to epoch; a new epoch forgets the old epoch's batches.
func (e *producerEntry) setEpoch(epoch int16) {
	if epoch != e.epoch {
		e.epoch, e.head, e.n = epoch, 0, 0
	}
}

// add records a data batch at base; a transactional one opens the
// producer's transaction if none is ongoing.
func (e *producerEntry) add(epoch int16, m batchMeta, transactional bool) {
	e.setEpoch(epoch)
	if transactional && e.txnFirst < 0 {
		e.txnFirst = m.baseOffset
	}
	if e.n == maxProducerBatches {
		e.head = (e.head + 1) % maxProducerBatches
		e.n--
	}
	*e.at(e.n) = m
	e.n++
	e.lastTimestamp = m.timestamp
}

// inSequence reports whether next follows last, wrapping at MaxInt32.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// producerStates is the idempotence state of a partition, owned by the
// goroutine holding Log.appendMu.
type producerStates struct {
	m map[int64]*producerEntry
	// staged holds the updates of the append being checked, so that several
	// batches of one producer in one append are checked against each other.
	staged []stagedEntry
}

type stagedEntry struct {
	pid   int64
	entry producerEntry
}

func newProducerStates() producerStates {
	return producerStates{m: make(map[int64]*producerEntry)}
}

func (p *producerStates) beginAppend() { p.staged = p.staged[:0] }

// lookup returns the producer's state as staged by this append, else as
// committed; the pointer is to a staged copy.
func (p *producerStates) lookup(pid int64) (*producerEntry, bool) {
	for i := range p.staged {
		if p.staged[i].pid == pid {
			return &p.staged[i].entry, true
		}
	}
	if e, ok := p.m[pid]; ok {
		p.staged = append(p.staged, stagedEntry{pid: pid, entry: *e})
		return &p.staged[len(p.staged)-1].entry, true
	}
	return nil, false
}

// check validates one idempotent batch that would be written at base with
// maxTimestamp ts and stages its effect. A duplicate of a recent batch returns that batch's
// metadata and dup=true, and stages nothing.
func (p *producerStates) check(h *batchHeader, base, ts int64) (dup batchMeta, isDup bool, err error) {
	lastSeq := h.lastSequence()
	e, known := p.lookup(h.producerID)
	if h.baseSequence == noSequence {
		// A coordinator's write for the producer (TxnOffsetCommit into
		// __consumer_offsets): Kafka checks only the epoch and tracks the
		// transaction; there is no sequence to deduplicate by.
		if !known {
			e = p.stageNew(h.producerID, h.producerEpoch)
		} else if h.producerEpoch < e.epoch {
			return dup, false, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.producerID, h.producerEpoch, e.epoch)
		}
		e.noteUnsequenced(h, base, ts)
		return dup, false, nil
	}
	if known {
		if m, ok := e.findDuplicate(h.producerEpoch, h.baseSequence, lastSeq); ok {
			return m, true, nil
		}
		switch last, hasLast := e.last(); {
		case h.producerEpoch < e.epoch:
			return dup, false, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.producerID, h.producerEpoch, e.epoch)
		case h.producerEpoch > e.epoch:
			if h.baseSequence != 0 {
				return dup, false, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, not %d", ErrOutOfOrderSequence, h.producerID, h.producerEpoch, h.baseSequence)
			}
		case !hasLast && h.baseSequence != 0, hasLast && !inSequence(last.lastSeq, h.baseSequence):
			return dup, false, fmt.Errorf("%w: producer %d epoch %d: sequence %d does not follow %d", ErrOutOfOrderSequence, h.producerID, h.producerEpoch, h.baseSequence, last.lastSeq)
		}
	} else {
		// An unknown producer may start anywhere (Kafka 2.8+): its earlier
		// batches may have been removed by retention.
		e = p.stageNew(h.producerID, h.producerEpoch)
	}
	e.add(h.producerEpoch, batchMeta{firstSeq: h.baseSequence, lastSeq: lastSeq,
		baseOffset: base, lastOffset: base + int64(h.lastOffsetDelta), timestamp: ts}, h.attributes&attrTransactional != 0)
	return dup, false, nil
}

// noSequence is the base sequence of batches outside idempotence.
const noSequence = -1

// noteUnsequenced applies a batch without a sequence written at base with
// maxTimestamp ts: its epoch and transaction, but no batch to deduplicate by.
func (e *producerEntry) noteUnsequenced(h *batchHeader, base, ts int64) {
	e.setEpoch(h.producerEpoch)
	e.lastTimestamp = ts
	if h.attributes&attrTransactional != 0 && e.txnFirst < 0 {
		e.txnFirst = base
	}
}

func (p *producerStates) stageNew(pid int64, epoch int16) *producerEntry {
	p.staged = append(p.staged, stagedEntry{pid: pid, entry: newProducerEntry(epoch)})
	return &p.staged[len(p.staged)-1].entry
}

// checkMarker validates a transaction marker (control batch) of h's
// producer and stages its effect: the producer's transaction ends, and a
// marker of a newer epoch (an abort after an epoch bump, KIP-360) moves the
// producer to that epoch. A marker from an older coordinator epoch than
// the producer's last one here comes from a coordinator that has been
// replaced (Kafka's checkCoordinatorEpoch). It returns the first offset of
// the transaction it ends, -1 if none was ongoing in this partition.
func (p *producerStates) checkMarker(h *batchHeader, coordinatorEpoch int32, ts int64) (first int64, err error) {
	e, known := p.lookup(h.producerID)
	switch {
	case !known:
		e = p.stageNew(h.producerID, h.producerEpoch)
	case h.producerEpoch < e.epoch:
		return -1, fmt.Errorf("%w: marker of producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.producerID, h.producerEpoch, e.epoch)
	case coordinatorEpoch < e.coordinatorEpoch:
		return -1, fmt.Errorf("%w: marker of producer %d from coordinator epoch %d, after one from epoch %d", ErrTransactionCoordinatorFenced, h.producerID, coordinatorEpoch, e.coordinatorEpoch)
	}
	return e.endTxn(h.producerEpoch, coordinatorEpoch, ts), nil
}

// endTxn applies a marker with timestamp ts.
func (e *producerEntry) endTxn(epoch int16, coordinatorEpoch int32, ts int64) (first int64) {
	e.setEpoch(epoch)
	e.coordinatorEpoch = coordinatorEpoch
	e.lastTimestamp = ts
	first, e.txnFirst = e.txnFirst, -1
	return first
}

// firstUnstable returns the smallest first offset of the ongoing
// transactions, -1 when there is none. It scans every producer, so it runs
// only when a transaction starts or ends.
func (p *producerStates) firstUnstable() int64 {
	first := int64(-1)
	for _, e := range p.m {
		if e.txnFirst >= 0 && (first < 0 || e.txnFirst < first) {
			first = e.txnFirst
		}
	}
	return first
}

// commit makes the staged updates the producers' state.
func (p *producerStates) commit() {
	for _, s := range p.staged {
		if e, ok := p.m[s.pid]; ok {
			*e = s.entry
		} else {
			e := s.entry
			p.m[s.pid] = &e
		}
	}
	p.staged = p.staged[:0]
}

// entry returns the producer's committed state, creating it.
func (p *producerStates) entry(pid int64, epoch int16) *producerEntry {
	e, ok := p.m[pid]
	if !ok {
		ne := newProducerEntry(epoch)
		e = &ne
		p.m[pid] = e
	}
	return e
}

// replay applies a data batch read back from the log, without checks.
func (p *producerStates) replay(h *batchHeader) {
	if h.baseSequence == noSequence {
		p.entry(h.producerID, h.producerEpoch).noteUnsequenced(h, h.baseOffset, h.maxTimestamp)
		return
	}
	p.entry(h.producerID, h.producerEpoch).add(h.producerEpoch, batchMeta{firstSeq: h.baseSequence, lastSeq: h.lastSequence(),
		baseOffset: h.baseOffset, lastOffset: h.lastOffset(), timestamp: h.maxTimestamp}, h.attributes&attrTransactional != 0)
}

// replayMarker applies a transaction marker read back from the log and
// returns the first offset of the transaction it ended, -1 if none.
func (p *producerStates) replayMarker(h *batchHeader, coordinatorEpoch int32) int64 {
	return p.entry(h.producerID, h.producerEpoch).endTxn(h.producerEpoch, coordinatorEpoch, h.maxTimestamp)
}

// expire forgets producers whose last batch's or marker's timestamp is at
// or before cutoff and that have no ongoing transaction (it would otherwise
// be lost with them), and returns how many.
func (p *producerStates) expire(cutoff int64) int {
	n := 0
	for pid, e := range p.m {
		if e.txnFirst >= 0 {
			continue
		}
		if e.lastTimestamp <= cutoff {
			delete(p.m, pid)
			n++
		}
	}
	return n
}

// ProducerState describes one idempotent producer of a partition, for
// DescribeProducers.
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32
	LastTimestamp int64 // maxTimestamp of the producer's last batch or marker (Kafka's lastTimestamp)
	LastOffset    int64 // last offset of the producer's last batch
	// CoordinatorEpoch is that of the producer's last transaction marker,
	// -1 before any.
	CoordinatorEpoch int32
	// CurrentTxnStartOffset is the first offset of the producer's ongoing
	// transaction, -1 when none.
	CurrentTxnStartOffset int64
}

func (p *producerStates) list() []ProducerState {
	out := make([]ProducerState, 0, len(p.m))
	for pid, e := range p.m {
		s := ProducerState{ProducerID: pid, ProducerEpoch: e.epoch, LastSequence: -1, LastTimestamp: e.lastTimestamp, LastOffset: -1,
			CoordinatorEpoch: e.coordinatorEpoch, CurrentTxnStartOffset: e.txnFirst}
		if b, ok := e.last(); ok {
			s.LastSequence, s.LastOffset = b.lastSeq, b.lastOffset
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return int(min(max(a.ProducerID-b.ProducerID, -1), 1)) })
	return out
}

// Snapshot file layout (big-endian), see doc.go:
//
//	version int16 (3) | crc uint32 (CRC-32C of what follows) | count int32
//	count × { producerId int64 | epoch int16 | coordinatorEpoch int32 | txnFirstOffset int64 | lastTimestamp int64 | batches int8
//	          batches × { firstSeq int32 | lastSeq int32 | baseOffset int64 | lastOffset int64 | timestamp int64 } }
const (
	snapshotVersion   = 3
	snapshotHeaderLen = 10
	snapshotEntryLen  = 31
	snapshotBatchLen  = 32
)

func (p *producerStates) encode() []byte {
	n := snapshotHeaderLen
	for _, e := range p.m {
		n += snapshotEntryLen + e.n*snapshotBatchLen
	}
	b := make([]byte, snapshotHeaderLen, n)
	be := binary.BigEndian
	be.PutUint16(b, snapshotVersion)
	be.PutUint32(b[6:], uint32(len(p.m)))
	for pid, e := range p.m {
		b = be.AppendUint64(b, uint64(pid))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint32(b, uint32(e.coordinatorEpoch))
		b = be.AppendUint64(b, uint64(e.txnFirst))
		b = be.AppendUint64(b, uint64(e.lastTimestamp))
		b = append(b, byte(e.n))
		for i := range e.n {
			m := e.at(i)
			b = be.AppendUint32(b, uint32(m.firstSeq))
			b = be.AppendUint32(b, uint32(m.lastSeq))
			b = be.AppendUint64(b, uint64(m.baseOffset))
			b = be.AppendUint64(b, uint64(m.lastOffset))
			b = be.AppendUint64(b, uint64(m.timestamp))
		}
	}
	be.PutUint32(b[2:], crc32.Checksum(b[6:], castagnoli))
	return b
}

var errBadSnapshot = errors.New("bad producer snapshot")

func decodeProducerStates(b []byte) (producerStates, error) {
	be := binary.BigEndian
	if len(b) < snapshotHeaderLen || be.Uint16(b) != snapshotVersion || be.Uint32(b[2:]) != crc32.Checksum(b[6:], castagnoli) {
		return producerStates{}, fmt.Errorf("%w: header or CRC", errBadSnapshot)
	}
	p := newProducerStates()
	count := int(be.Uint32(b[6:]))
	b = b[snapshotHeaderLen:]
	for range count {
		if len(b) < snapshotEntryLen {
			return producerStates{}, fmt.Errorf("%w: truncated", errBadSnapshot)
		}
		pid := int64(be.Uint64(b))
		ne := newProducerEntry(int16(be.Uint16(b[8:])))
		e := &ne
		e.coordinatorEpoch = int32(be.Uint32(b[10:]))
		e.txnFirst = int64(be.Uint64(b[14:]))
		lastTimestamp := int64(be.Uint64(b[22:]))
		nb := int(b[30])
		if e.txnFirst < -1 {
			return producerStates{}, fmt.Errorf("%w: producer %d transaction offset %d", errBadSnapshot, pid, e.txnFirst)
		}
		b = b[snapshotEntryLen:]
		if nb > maxProducerBatches || len(b) < nb*snapshotBatchLen {
			return producerStates{}, fmt.Errorf("%w: producer %d", errBadSnapshot, pid)
		}
		for range nb {
			e.add(e.epoch, batchMeta{firstSeq: int32(be.Uint32(b)), lastSeq: int32(be.Uint32(b[4:])),
				baseOffset: int64(be.Uint64(b[8:])), lastOffset: int64(be.Uint64(b[16:])), timestamp: int64(be.Uint64(b[24:]))}, false)
			b = b[snapshotBatchLen:]
		}
		e.lastTimestamp = lastTimestamp
		p.m[pid] = e
	}
	if len(b) != 0 {
		return producerStates{}, fmt.Errorf("%w: %d trailing bytes", errBadSnapshot, len(b))
	}
	return p, nil
}
