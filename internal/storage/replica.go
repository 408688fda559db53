package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// replicated summarizes the input of AppendAsFollower.
type replicated struct {
	batches     int
	first, last int64 // first batch's base offset, last batch's last offset
	maxBatch    int32
	hasPID      bool // some batch has a producer id
}

// validateReplicated checks batches copied from a leader without changing
// them: framing, magic, CRC, offsets that increase from batch to batch
// (gaps, as compaction leaves them, are allowed) and control batches that
// are transaction markers. Records are not walked: the leader validated
// them, and compacted batches legitimately hold fewer records than their
// offset range.
func validateReplicated(b []byte) (in replicated, err error) {
	if len(b) == 0 {
		return in, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	next := int64(0)
	for pos := 0; pos < len(b); {
		h, problem, badMagic := checkFrame(b[pos:], int64(len(b)-pos))
		switch {
		case badMagic:
			return in, fmt.Errorf("%w: batch at byte %d: %s", ErrUnsupportedMagic, pos, problem)
		case problem != "":
			return in, fmt.Errorf("%w: batch at byte %d: %s", ErrCorruptMessage, pos, problem)
		case batchCRC(b[pos:pos+int(h.size)]) != h.crc:
			return in, fmt.Errorf("%w: batch at byte %d: CRC mismatch", ErrCorruptMessage, pos)
		case h.baseOffset < next || h.lastOffset() < h.baseOffset:
			return in, fmt.Errorf("%w: batch at byte %d: base offset %d is below %d", ErrInvalidRecord, pos, h.baseOffset, next)
		}
		if h.attributes&attrControl != 0 {
			if h.producerID < 0 {
				return in, fmt.Errorf("%w: control batch at offset %d without a producer id", ErrInvalidRecord, h.baseOffset)
			}
			if _, _, err := parseMarker(b[pos : pos+int(h.size)]); err != nil {
				return in, fmt.Errorf("batch at offset %d: %w", h.baseOffset, err)
			}
		}
		in.hasPID = in.hasPID || h.producerID >= 0
		if in.batches == 0 {
			in.first = h.baseOffset
		}
		in.batches++
		in.last = h.lastOffset()
		in.maxBatch = max(in.maxBatch, h.size)
		next = h.nextOffset()
		pos += int(h.size)
	}
	return in, nil
}

// AppendAsFollower appends batches copied from the leader as they are:
// base offsets, partition leader epochs, producer ids, epochs and sequences
// and timestamps stay byte for byte (the CRC is checked, nothing is
// rewritten). The first batch's base offset must not be below EndOffset()
// (else an error wrapping ErrOffsetMismatch); above it is a gap, which a
// leader's compacted log has, and Kafka's follower accepts too. The
// producers' state (idempotence, transactions, the aborted transaction
// index) and the leader epoch cache are updated from the batches, so a
// follower that becomes leader deduplicates retries of batches the old
// leader acknowledged. There is no duplicate or sequence check here: the
// leader made them. A fetch larger than segment.bytes is written in parts,
// each in one segment; a single batch larger than segment.bytes is
// ErrRecordTooLarge. max.message.bytes does not apply (as in Kafka).
func (l *Log) AppendAsFollower(batches []byte, now time.Time) (AppendResult, error) {
	in, err := validateReplicated(batches)
	if err != nil {
		return AppendResult{}, err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if end := l.end.Load(); in.first < end {
		return AppendResult{}, fmt.Errorf("%w: first batch at %d, log end offset %d", ErrOffsetMismatch, in.first, end)
	}
	if int64(in.maxBatch) > l.cfg.SegmentBytes {
		return AppendResult{}, fmt.Errorf("%w: batch of %d bytes exceeds segment.bytes %d", ErrRecordTooLarge, in.maxBatch, l.cfg.SegmentBytes)
	}
	if err := l.beforeWrite(); err != nil {
		return AppendResult{}, err
	}
	for pos := 0; pos < len(batches); {
		// The longest run of whole batches that fits one segment.
		var n int
		var nRecords, maxTs, next int64 = 0, -1, 0
		epochs := l.epochs
		end := pos
		for end < len(batches) {
			h := parseHeader(batches[end:])
			if n > 0 && int64(end-pos)+int64(h.size) > l.cfg.SegmentBytes {
				break
			}
			n++
			nRecords += int64(h.recordCount)
			maxTs = max(maxTs, h.maxTimestamp)
			next = h.nextOffset()
			epochs = withEpoch(epochs, h.leaderEpoch, h.baseOffset)
			end += int(h.size)
		}
		chunk := batches[pos:end]
		if err := l.persistEpochs(epochs); err != nil {
			return AppendResult{}, err
		}
		err := l.writeBatches(chunk, n, nRecords, maxTs, next, epochs, now, nil, func() {
			if in.hasPID {
				l.replayChunk(chunk)
			}
		})
		if err != nil {
			// The parts written before stay: they are whole batches the
			// leader has, and the follower fetches on from EndOffset.
			return AppendResult{}, err
		}
		pos = end
	}
	return AppendResult{BaseOffset: in.first, LastOffset: in.last, LogAppendTime: -1, LogStartOffset: l.start.Load()}, nil
}

// replayChunk applies replicated batches to the producers' state and the
// aborted transaction index, as the replay at Open does. The caller holds
// appendMu and mu's write lock; the batches were validated.
func (l *Log) replayChunk(b []byte) {
	txn := false
	for pos := 0; pos < len(b); {
		h := parseHeader(b[pos:])
		txn = txn || h.attributes&(attrTransactional|attrControl) != 0
		switch {
		case h.producerID < 0:
		case h.attributes&attrControl == 0:
			l.producers.replay(&h)
		default:
			commit, coordinatorEpoch, _ := parseMarker(b[pos : pos+int(h.size)])
			first := l.producers.replayMarker(&h, coordinatorEpoch)
			l.recordAborts([]completedTxn{{pid: h.producerID, first: first, marker: h.baseOffset, commit: commit}})
		}
		pos += int(h.size)
	}
	if txn {
		// Only transactions move it; the scan of every producer is not
		// for every fetch of idempotent batches.
		l.firstUnstable = l.producers.firstUnstable()
	}
}

// TruncateTo removes every batch at or above offset off, as Kafka's
// UnifiedLog.truncateTo on a follower whose log diverged from the leader's.
// Kafka truncates at batch boundaries: a batch that holds off goes whole,
// so EndOffset() afterwards is the end of the last batch kept, at most off.
// The epoch cache loses its entries from the new end on
// (truncateFromEnd), the producers' state and the aborted transaction
// index are rebuilt as of the new end, the recovery point and the cleaner
// checkpoint move back to it, and a log start above it comes down to it.
// The truncated files are fsynced before it returns, so the removed
// batches do not come back after a power loss. off at or above EndOffset()
// removes nothing, but still cuts epoch cache entries at or beyond the end
// (a leader that assigned an epoch and failed before its first append);
// off below the first segment's base is TruncateFullyAndStartAt(off).
// A running Clean finishes before it starts.
func (l *Log) TruncateTo(off int64) error {
	if off < 0 {
		return fmt.Errorf("storage: truncate to negative offset %d", off)
	}
	l.lockCleaner()
	defer l.cleanMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	end := l.end.Load()
	if off >= end {
		return l.truncateEpochsFromEnd(end)
	}
	if off < l.segments[0].base {
		return l.truncateFullyAndStartAt(off)
	}
	if err := l.beforeWrite(); err != nil {
		return err
	}
	i := l.segmentFor(off)
	s := l.segments[i]
	cut, err := s.cutAt(off)
	if err != nil {
		return fmt.Errorf("storage: truncate %s: %w", l.dir, err)
	}
	doomed := slices.Clone(l.segments[i+1:])
	l.mu.Lock()
	s.publishCut(cut)
	l.segments = l.segments[:i+1]
	newEnd := s.next
	l.end.Store(newEnd)
	if l.start.Load() > newEnd {
		l.start.Store(newEnd)
	}
	l.aborted = slices.DeleteFunc(l.aborted, func(e txnIndexEntry) bool { return e.LastOffset >= newEnd })
	l.mu.Unlock()
	// Readers no longer look past the cut. The later segments go last
	// first, and are gone for good before the cut: a crash leaves a prefix
	// of the old log that its epoch cache (still the old one) describes,
	// never a cut segment followed by old ones.
	var errs []error
	for _, d := range slices.Backward(doomed) {
		l.logger.Info("deleting segment truncated away", "segment", d.base, "end_offset", d.next)
		errs = append(errs, d.remove(l.fsys, l.dir))
	}
	errs = append(errs, l.fsys.SyncDir(l.dir), s.truncateFiles(cut))
	errs = append(errs, s.sync())
	l.unflushedMsgs, l.lastFlush = 0, time.Now()
	// The state derived from the batches follows the cut even when a file
	// operation failed: the log in memory is cut, and a Close must not
	// write a snapshot of producers it no longer has.
	errs = append(errs, l.afterTruncation(newEnd))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: truncate %s to %d: %w", l.dir, off, err)
	}
	l.logger.Info("truncated log", "target", off, "log_end_offset", newEnd, "segments_deleted", len(doomed))
	return nil
}

// afterTruncation brings the state derived from the batches back to a log
// cut at end: checkpoints, epoch cache, producers and the aborted
// transaction index. The caller holds appendMu and cut the segments.
// Each step runs even if an earlier one failed; the errors are joined.
func (l *Log) afterTruncation(end int64) error {
	var errs []error
	if start := l.start.Load(); start == end {
		// The log start came down with the end (it never exceeds it).
		errs = append(errs, writeCheckpoint(l.fsys, l.dir, logStartOffsetFile, start))
	}
	if l.recoveryPoint > end {
		// Until it is written, the recovery point stays too high: an Open
		// would trust the cut segment, which is fsynced, or find it short
		// and recover it.
		err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, end)
		if err == nil {
			l.recoveryPoint = end
		}
		errs = append(errs, err)
	}
	if l.cleanerFirstDirty() > end {
		err := writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, end)
		if err == nil {
			l.firstDirty = end
		}
		errs = append(errs, err)
	}
	errs = append(errs, l.truncateEpochsFromEnd(end), l.rebuildProducers(end))
	return errors.Join(errs...)
}

// truncateEpochsFromEnd drops the epoch cache entries starting at or
// after end. The caller holds appendMu.
func (l *Log) truncateEpochsFromEnd(end int64) error {
	c := slices.Clone(l.epochs)
	if !c.truncateFromEnd(end) {
		return nil
	}
	// Published even if the file is not written: entries past the log end
	// are wrong in memory, and the next Open cuts them from the file.
	err := l.persistEpochs(c)
	l.mu.Lock()
	l.epochs = c
	l.mu.Unlock()
	return err
}

// rebuildProducers recomputes the producers' state and the aborted
// transaction index of a log that now ends at end, from the producer
// snapshot if it lies at or below end (a later one is deleted), else from
// the first batch, as Kafka's rebuildProducerState after a truncation.
// The caller holds appendMu.
func (l *Log) rebuildProducers(end int64) error {
	from := l.segments[0].base
	producers := newProducerStates()
	if l.snapshotOffset > end {
		l.removeFile(filepath.Base(offsetFileName(l.dir, l.snapshotOffset, extSnapshot)))
		l.snapshotOffset = -1
	}
	if l.snapshotOffset >= from {
		b, err := readFile(l.fsys, offsetFileName(l.dir, l.snapshotOffset, extSnapshot))
		if err == nil {
			producers, err = decodeProducerStates(b)
		}
		if err != nil {
			l.logger.Warn("ignoring producer snapshot; replaying every batch", "snapshot", l.snapshotOffset, "err", err)
			producers = newProducerStates()
		} else {
			from = l.snapshotOffset
		}
	}
	l.mu.Lock()
	l.producers = producers
	l.aborted = slices.DeleteFunc(l.aborted, func(e txnIndexEntry) bool { return e.LastOffset >= from })
	err := l.replayProducers(from)
	l.firstUnstable = l.producers.firstUnstable()
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: rebuild producer state of %s: %w", l.dir, err)
	}
	// The cut segment is active again: its .txnindex file must not keep
	// aborts it no longer has (Open reads it below the snapshot).
	if err := l.writeTxnIndex(l.active()); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// TruncateFullyAndStartAt empties the log and restarts it at off, as
// Kafka's truncateFullyAndStartAt for a follower whose leader's log starts
// beyond its end (or a truncation below its first segment): every segment
// goes, the log start and end offsets become off, and the epoch cache,
// producers' state and aborted transaction index are cleared. The new
// state is on disk before it returns. A running Clean finishes first.
func (l *Log) TruncateFullyAndStartAt(off int64) error {
	if off < 0 {
		return fmt.Errorf("storage: restart at negative offset %d", off)
	}
	l.lockCleaner()
	defer l.cleanMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.truncateFullyAndStartAt(off)
}

func (l *Log) truncateFullyAndStartAt(off int64) error {
	if err := l.beforeWrite(); err != nil {
		return err
	}
	now := time.Now()
	cleaned := l.cleanerFirstDirty() > off
	// The log start goes first: a crash among the removals below then
	// leaves old segments under it, which Open deletes, not a mix of old
	// data and the new start. (An off below the log is no higher than the
	// start: old segments that survive a crash are then the whole old log,
	// or the suffix retention would leave.)
	if err := writeCheckpoint(l.fsys, l.dir, logStartOffsetFile, off); err != nil {
		return fmt.Errorf("storage: truncate %s fully: %w", l.dir, err)
	}
	// The producer snapshot goes before the batches it describes: Open
	// would load one below the new segment.
	if l.snapshotOffset >= 0 {
		l.removeFile(filepath.Base(offsetFileName(l.dir, l.snapshotOffset, extSnapshot)))
		l.snapshotOffset = -1
	}
	// The new segment may share the base of an old one: the old files go
	// first.
	doomed := slices.Clone(l.segments)
	l.mu.Lock()
	l.segments = nil
	var errs []error
	for _, s := range doomed {
		errs = append(errs, s.remove(l.fsys, l.dir))
	}
	s, err := openSegment(l.fsys, l.dir, off, true, now, int64(l.cfg.IndexIntervalBytes), l.logger)
	if err != nil {
		// Keep the log usable for readers: an empty segment without files
		// (as a new log's) until a retry makes them.
		s = newSegment(l.dir, off, now, int64(l.cfg.IndexIntervalBytes), l.logger)
		l.filesPending = true
		errs = append(errs, err)
	}
	l.segments = []*segment{s}
	l.start.Store(off)
	l.end.Store(off)
	l.aborted = nil
	l.firstUnstable = -1
	l.producers = newProducerStates()
	l.epochs = nil
	l.mu.Unlock()
	errs = append(errs, l.fsys.SyncDir(l.dir))
	l.unflushedMsgs, l.lastFlush = 0, now
	if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, off); err == nil {
		l.recoveryPoint = off
	} else {
		errs = append(errs, err)
	}
	if cleaned {
		if err := writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, off); err == nil {
			l.firstDirty = off
		} else {
			errs = append(errs, err)
		}
	}
	// Written even when the cache was empty: the file may hold entries a
	// failed append left beyond the log (persistEpochs).
	errs = append(errs, writeFileAtomic(l.fsys, filepath.Join(l.dir, leaderEpochFile), encodeEpochCheckpoint(nil)))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: truncate %s fully: %w", l.dir, err)
	}
	l.logger.Info("truncated log fully", "log_start_offset", off)
	return nil
}

// segmentCut is a segment's state after a truncation, computed by cutAt
// and applied by applyCut.
type segmentCut struct {
	size, next                   int64
	index                        []offsetEntry
	tindex                       []timeEntry
	maxTs, maxTsOffset, sinceIdx int64
	rollTs                       int64
}

// cutAt computes the segment's state without the batches whose last offset
// is at or above off: from the index entries kept and the batch headers
// after the last one, not the whole segment. The .timeindex entries kept
// are those written with the .index entries kept (an entry's offset is at
// most its .index entry's), so the last one's timestamp is the largest up
// to there. The caller holds appendMu.
func (s *segment) cutAt(off int64) (segmentCut, error) {
	buf := make([]byte, batchHeaderLen)
	c := segmentCut{size: s.size, next: s.next, index: s.index, tindex: s.tindex,
		maxTs: s.maxTs, maxTsOffset: s.maxTsOffset, sinceIdx: s.bytesSinceIndex, rollTs: s.rollTs}
	pos, _, found, err := s.locate(off, buf)
	if err != nil || !found {
		return c, err
	}
	c.size, c.next, c.maxTs, c.maxTsOffset = pos, s.base, -1, -1
	k := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].pos) >= pos })
	c.index = s.index[:k:k]
	scanFrom := int64(0)
	if k > 0 {
		last := s.index[k-1]
		scanFrom = int64(last.pos)
		t := sort.Search(len(s.tindex), func(i int) bool { return s.tindex[i].rel > last.rel })
		c.tindex = s.tindex[:t:t]
		if t > 0 {
			c.maxTs, c.maxTsOffset = s.tindex[t-1].ts, s.base+int64(s.tindex[t-1].rel)
		}
	} else {
		c.tindex = nil
	}
	c.sinceIdx = pos - scanFrom
	for p := scanFrom; p < pos; {
		h, problem, err := s.readFrame(p, pos, buf)
		if err != nil {
			return c, err
		}
		if problem != "" {
			return c, fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, s.logPath, p, problem)
		}
		if h.maxTimestamp > c.maxTs {
			c.maxTs, c.maxTsOffset = h.maxTimestamp, h.lastOffset()
		}
		c.next = h.nextOffset()
		p += int64(h.size)
	}
	switch {
	case pos == 0:
		c.rollTs = -1
	case c.rollTs < 0:
		// An inactive segment loaded at Open: segment.ms counts from its
		// first batch once it is active again.
		h, problem, err := s.readFrame(0, pos, buf)
		if err != nil {
			return c, err
		}
		if problem == "" {
			c.rollTs = h.maxTimestamp
		}
	}
	return c, nil
}

// publishCut makes the cut segment's state the published one. The caller
// holds appendMu and mu's write lock.
func (s *segment) publishCut(c segmentCut) {
	s.size, s.next, s.index, s.tindex = c.size, c.next, c.index, c.tindex
	s.tail = nil
	s.maxTs, s.maxTsOffset, s.bytesSinceIndex, s.rollTs = c.maxTs, c.maxTsOffset, c.sinceIdx, c.rollTs
}

// truncateFiles cuts the segment's files to the published cut c.
func (s *segment) truncateFiles(c segmentCut) error {
	return errors.Join(s.log.Truncate(c.size),
		s.idx.Truncate(int64(len(c.index))*offsetIndexEntrySize),
		s.tidx.Truncate(int64(len(c.tindex))*timeIndexEntrySize))
}

// lockCleaner takes cleanMu for a truncation, making a running Clean give
// its pass up first.
func (l *Log) lockCleaner() {
	l.truncating.Add(1)
	l.cleanMu.Lock()
	l.truncating.Add(-1)
}
