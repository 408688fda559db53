package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// extTxnIndex names a segment's aborted-transaction index (see doc.go).
const extTxnIndex = ".txnindex"

// Control record key types (KIP-98).
const (
	controlAbort  = 0
	controlCommit = 1
)

// txnIndexEntry is one aborted transaction, as Kafka's .txnindex stores it:
// the transaction of ProducerID spans FirstOffset to LastOffset (the abort
// marker), and LastStableOffset is the partition's last stable offset right
// after the marker.
type txnIndexEntry struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// .txnindex entry: version int16 (0) | producerId int64 | firstOffset int64 |
// lastOffset int64 | lastStableOffset int64, big-endian.
const (
	txnIndexVersion   = 0
	txnIndexEntrySize = 34
)

func encodeTxnIndex(entries []txnIndexEntry) []byte {
	b := make([]byte, 0, len(entries)*txnIndexEntrySize)
	be := binary.BigEndian
	for _, e := range entries {
		b = be.AppendUint16(b, txnIndexVersion)
		b = be.AppendUint64(b, uint64(e.ProducerID))
		b = be.AppendUint64(b, uint64(e.FirstOffset))
		b = be.AppendUint64(b, uint64(e.LastOffset))
		b = be.AppendUint64(b, uint64(e.LastStableOffset))
	}
	return b
}

// decodeTxnIndex reads the .txnindex of the segment [base, next): entries
// must lie in it, in increasing marker order.
func decodeTxnIndex(b []byte, base, next int64) ([]txnIndexEntry, error) {
	if len(b)%txnIndexEntrySize != 0 {
		return nil, fmt.Errorf("%w: txnindex of segment %d: %d bytes is not a whole number of entries", ErrCorrupt, base, len(b))
	}
	be := binary.BigEndian
	var out []txnIndexEntry
	for ; len(b) > 0; b = b[txnIndexEntrySize:] {
		e := txnIndexEntry{ProducerID: int64(be.Uint64(b[2:])), FirstOffset: int64(be.Uint64(b[10:])),
			LastOffset: int64(be.Uint64(b[18:])), LastStableOffset: int64(be.Uint64(b[26:]))}
		switch {
		case be.Uint16(b) != txnIndexVersion:
			return nil, fmt.Errorf("%w: txnindex of segment %d: version %d", ErrCorrupt, base, be.Uint16(b))
		case e.LastOffset < base || e.LastOffset >= next || e.FirstOffset > e.LastOffset || e.LastStableOffset > e.LastOffset+1,
			len(out) > 0 && e.LastOffset <= out[len(out)-1].LastOffset:
			return nil, fmt.Errorf("%w: txnindex of segment %d: entry %+v out of place", ErrCorrupt, base, e)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseMarker reads the control record of a transaction marker batch: its
// key (version 0, type 0 abort or 1 commit) and value (version 0,
// coordinator epoch).
func parseMarker(batch []byte) (commit bool, coordinatorEpoch int32, err error) {
	if len(batch) <= batchHeaderLen || binary.BigEndian.Uint16(batch[offAttributes:])&0x07 != 0 || binary.BigEndian.Uint32(batch[offRecordCount:]) != 1 {
		return false, 0, fmt.Errorf("%w: a control batch holds exactly one uncompressed record", ErrInvalidRecord)
	}
	var r kmsg.Record
	if err := r.ReadFrom(batch[batchHeaderLen:]); err != nil {
		return false, 0, fmt.Errorf("%w: control record: %v", ErrInvalidRecord, err)
	}
	var key kmsg.ControlRecordKey
	var val kmsg.EndTxnMarker
	if err := key.ReadFrom(r.Key); err != nil || key.Version != 0 || (key.Type != controlAbort && key.Type != controlCommit) {
		return false, 0, fmt.Errorf("%w: control record key %x is not a transaction marker", ErrInvalidRecord, r.Key)
	}
	if err := val.ReadFrom(r.Value); err != nil {
		return false, 0, fmt.Errorf("%w: transaction marker value %x: %v", ErrInvalidRecord, r.Value, err)
	}
	return key.Type == controlCommit, val.CoordinatorEpoch, nil
}

// buildMarker returns a transaction marker batch for the producer.
func buildMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, now time.Time) ([]byte, error) {
	key := kmsg.ControlRecordKey{Version: 0, Type: controlAbort}
	if commit {
		key.Type = controlCommit
	}
	val := kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: coordinatorEpoch}
	b := recordbatch.NewBuilder(recordbatch.Options{Transactional: true, Control: true}, 128)
	b.Append(now.UnixMilli(), key.AppendTo(nil), val.AppendTo(nil), nil)
	return b.Finish(recordbatch.Producer{ID: producerID, Epoch: epoch, BaseSequence: -1})
}

// WriteMarker appends a transaction marker (commit or abort) for the
// producer: it ends the producer's ongoing transaction in this partition,
// which moves the last stable offset, and an abort is added to the aborted
// transaction index. epoch must be at least the producer's current epoch
// (else ErrInvalidProducerEpoch); a newer one becomes the producer's epoch.
// It returns the marker's offset. Like Append, it is serialized with the
// other writers and durable when the flush policy says so. leaderEpoch
// is stamped on the marker batch as Append does.
func (l *Log) WriteMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch, leaderEpoch int32) (int64, error) {
	now := time.Now()
	batch, err := buildMarker(producerID, epoch, commit, coordinatorEpoch, now)
	if err != nil {
		return -1, fmt.Errorf("storage: build marker: %w", err)
	}
	res, err := l.Append(batch, now, leaderEpoch)
	return res.BaseOffset, err
}

// LastStableOffset returns the last stable offset: the first offset of the
// oldest ongoing transaction, or the end offset when there is none, and never
// below the log start offset (DeleteRecords may delete the start of an open
// transaction; Kafka's UnifiedLog clamps it the same way).
// read_committed consumers read below it.
func (l *Log) LastStableOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastStableLocked()
}

// lastStableLocked is Kafka's last stable offset: the first offset of
// the oldest open transaction, never past the high watermark.
func (l *Log) lastStableLocked() int64 {
	if l.firstUnstable >= 0 {
		return min(max(l.firstUnstable, l.start.Load()), l.HighWatermark())
	}
	return l.HighWatermark()
}

// Aborted is an aborted transaction as a read_committed Fetch reports it.
type Aborted struct {
	ProducerID  int64
	FirstOffset int64
}

// AbortedTransactions lists the aborted transactions that have records in
// [fetchOffset, upperBoundOffset), ordered by their abort markers, for a
// read_committed Fetch (whose consumer drops those records).
func (l *Log) AbortedTransactions(fetchOffset, upperBoundOffset int64) []Aborted {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.abortedLocked(fetchOffset, upperBoundOffset)
}

// abortedLocked is AbortedTransactions; the caller holds mu for reading.
func (l *Log) abortedLocked(fetchOffset, upperBoundOffset int64) []Aborted {
	var out []Aborted
	i := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset >= fetchOffset })
	for _, e := range l.aborted[i:] {
		if e.FirstOffset < upperBoundOffset {
			out = append(out, Aborted{ProducerID: e.ProducerID, FirstOffset: e.FirstOffset})
		}
		// Transactions that ended later started at or after this stable
		// offset (Kafka's stopping rule).
		if e.LastStableOffset >= upperBoundOffset {
			break
		}
	}
	return out
}

// completedTxn is a transaction ended by a marker of an append.
type completedTxn struct {
	pid, first, marker int64
	commit             bool
}

// recordAborts adds the aborted ones of completed (all ending in the active
// segment) to the in-memory index. The caller holds appendMu and mu's write
// lock, after the producers' state took the markers in.
func (l *Log) recordAborts(completed []completedTxn) {
	for _, c := range completed {
		if c.commit || c.first < 0 {
			continue
		}
		lso := l.producers.firstUnstable()
		if lso < 0 {
			lso = c.marker + 1
		}
		l.aborted = append(l.aborted, txnIndexEntry{ProducerID: c.pid, FirstOffset: c.first, LastOffset: c.marker, LastStableOffset: lso})
	}
}

// abortedIn returns the entries whose markers lie in [base, next).
func abortedIn(entries []txnIndexEntry, base, next int64) []txnIndexEntry {
	lo := sort.Search(len(entries), func(i int) bool { return entries[i].LastOffset >= base })
	hi := sort.Search(len(entries), func(i int) bool { return entries[i].LastOffset >= next })
	return entries[lo:hi]
}

// writeTxnIndex writes the .txnindex of a segment that stops being active
// (roll, Close), or removes a stale one when it has no aborted transaction.
// The active segment's entries live in memory only: after a crash they are
// rebuilt from the producer snapshot and the batches after it. The caller
// holds appendMu.
func (l *Log) writeTxnIndex(s *segment) error {
	name := offsetFileName(l.dir, s.base, extTxnIndex)
	entries := abortedIn(l.aborted, s.base, s.next)
	if len(entries) == 0 {
		if err := l.fsys.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeFileAtomic(l.fsys, name, encodeTxnIndex(entries))
}

// loadTxnIndexes reads the .txnindex entries of the markers below from (the
// offset the producer state replay starts at; later ones are rebuilt by the
// replay) from the segments whose bases are in present (the files the
// directory lists). It runs in load, before l is shared.
func (l *Log) loadTxnIndexes(from int64, present []int64) error {
	l.aborted = l.aborted[:0]
	for _, s := range l.segments {
		if s.base >= from {
			break
		}
		if !slices.Contains(present, s.base) {
			continue
		}
		b, err := readFile(l.fsys, offsetFileName(l.dir, s.base, extTxnIndex))
		if err != nil {
			return err
		}
		entries, err := decodeTxnIndex(b, s.base, s.next)
		if err != nil {
			return err
		}
		l.aborted = append(l.aborted, abortedIn(entries, s.base, min(from, s.next))...)
	}
	return nil
}

// markerOf reads the marker batch at pos of s during the replay.
func markerOf(s *segment, pos int64, h *batchHeader) (commit bool, coordinatorEpoch int32, err error) {
	b, err := readBatch(s, pos, h)
	if err != nil {
		return false, 0, err
	}
	commit, coordinatorEpoch, err = parseMarker(b)
	if err != nil {
		return false, 0, fmt.Errorf("%w: %s at %d: %v", ErrCorrupt, s.logPath, pos, err)
	}
	return commit, coordinatorEpoch, nil
}
