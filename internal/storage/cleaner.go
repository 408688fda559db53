package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Log compaction (cleanup.policy=compact), as Kafka's log cleaner does it;
// doc.go specifies the files.

// File names of the cleaner (see doc.go).
const (
	cleanerCheckpointFile = "cleaner-offset-checkpoint"
	extCleaned            = ".cleaned"
	extSwap               = ".swap"
)

// swapExts are the files of a cleaned segment, in the order they are
// renamed: the .log last, so a .log.swap means the others are there too.
var swapExts = []string{extIndex, extTimeIndex, extTxnIndex, extLog}

// CleanStats describes what one Clean did.
type CleanStats struct {
	Segments         int   // segments read (and rewritten into fewer)
	BytesRead        int64 // their size before cleaning
	BytesWritten     int64 // their size after
	RecordsRemoved   int64 // records, tombstones and markers dropped
	FirstUncleanable int64 // the log was cleaned up to this offset
}

// rollMs is segment.ms, or max.compaction.lag.ms when that is shorter in a
// compacted log, so that the active segment becomes cleanable in time
// (KIP-354).
func (c *Config) rollMs() int64 {
	if c.CleanupPolicy&CleanupCompact != 0 {
		return min(c.SegmentMs, c.MaxCompactionLagMs).Milliseconds()
	}
	return c.SegmentMs.Milliseconds()
}

// Cleanable reports the share of the cleanable bytes that were not cleaned
// yet (Kafka's dirty ratio) and whether the log is due for Clean: its
// cleanup.policy has compact and the ratio reaches min.cleanable.dirty.ratio,
// a dirty segment is older than max.compaction.lag.ms, or the delete
// horizon of a tombstone (or transaction marker) that the last Clean kept
// has passed (as with KIP-534, so that deletes complete without new
// writes; kafkit does not persist that time, so after a restart the next
// Clean has to be triggered by dirt). The broker's
// cleaner cleans the dirtiest due log first.
func (l *Log) Cleanable(now time.Time) (dirtyRatio float64, due bool) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed || l.cfg.CleanupPolicy&CleanupCompact == 0 {
		return 0, false
	}
	firstDirty := l.cleanerFirstDirty()
	k := l.cleanableSegments(now)
	var clean, dirty int64
	overdue := false
	for _, s := range l.segments[:k] {
		if s.base < firstDirty {
			clean += s.size
			continue
		}
		dirty += s.size
		ts := s.rollTs
		if ts < 0 {
			ts = s.largestTimestamp()
		}
		overdue = overdue || (s.size > 0 && now.UnixMilli()-ts > l.cfg.MaxCompactionLagMs.Milliseconds())
	}
	expired := k > 0 && l.tombstoneDue > 0 && now.UnixMilli() >= l.tombstoneDue
	if dirty == 0 {
		return 0, expired
	}
	dirtyRatio = float64(dirty) / float64(clean+dirty)
	return dirtyRatio, dirtyRatio >= l.cfg.MinCleanableDirtyRatio || overdue || expired
}

// cleanerFirstDirty returns the offset below which the log was cleaned,
// read from cleaner-offset-checkpoint on first use. The caller holds
// appendMu.
func (l *Log) cleanerFirstDirty() int64 {
	if l.firstDirty < 0 {
		off, _, err := readCheckpoint(l.fsys, l.dir, cleanerCheckpointFile)
		if err != nil {
			l.logger.Warn("ignoring unreadable cleaner checkpoint; the whole log is dirty", "err", err)
		}
		l.firstDirty = off
	}
	return max(l.firstDirty, l.segments[0].base)
}

// cleanableSegments returns how many of the oldest segments lie wholly below
// the first uncleanable offset: the active segment's base, the last stable
// offset (which the high watermark bounds, as in Kafka's
// LogCleanerManager.cleanableOffsets: a replica's records above it may
// still be truncated, and cleaning a key's committed record away for a
// newer one that is then truncated would lose the key), and the base of
// the first segment younger than min.compaction.lag.ms, whichever is
// lowest. The caller holds appendMu.
func (l *Log) cleanableSegments(now time.Time) int {
	limit := min(l.active().base, l.lastStableLocked())
	lag := l.cfg.MinCompactionLagMs.Milliseconds()
	k := 0
	for k+1 < len(l.segments) && l.segments[k+1].base <= limit {
		if lag > 0 && now.UnixMilli()-l.segments[k].largestTimestamp() < lag {
			break
		}
		k++
	}
	return k
}

// Clean compacts the closed segments below the first uncleanable offset
// (see cleanableSegments), whatever the dirty ratio: it keeps the latest
// record of each key, drops tombstones and transaction markers whose
// delete horizon (delete.retention.ms after the Clean that first kept
// them) has passed, drops aborted
// transactional records, and regroups the segments into as few as
// segment.bytes allows, keeping every offset (compaction leaves gaps). Each
// group is written to new files and swapped in atomically (see doc.go);
// readers see the old segments or the new one. Appends and reads go on
// while it reads and writes; it takes the writers' lock only to start and
// to swap each group in. Segments that retention or DeleteRecords removes
// meanwhile are left alone. A log whose cleanup.policy lacks compact is left
// alone.
func (l *Log) Clean(now time.Time) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	p, err := l.beginClean(now)
	if err != nil || p == nil {
		return CleanStats{}, err
	}
	err = p.run(now)
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return p.stats, ErrClosed
	}
	if err != nil {
		return p.stats, fmt.Errorf("storage: clean %s: %w", l.dir, err)
	}
	l.tombstoneDue = 0
	if p.firstHorizon < math.MaxInt64 {
		l.tombstoneDue = max(p.firstHorizon, 1)
	}
	l.mu.Lock()
	l.aborted = slices.DeleteFunc(l.aborted, func(e txnIndexEntry) bool { return p.droppedAbort[e.LastOffset] })
	l.mu.Unlock()
	// The first uncleanable offset can fall below the checkpoint (a raised
	// min.compaction.lag.ms): the segments in between stay clean. After an
	// abandoned group the checkpoint stays.
	firstDirty := p.firstDirty
	if !p.abandoned {
		firstDirty = max(firstDirty, p.stats.FirstUncleanable)
	}
	if err := writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, firstDirty); err != nil {
		// The next pass cleans the same segments again; nothing is lost.
		l.logger.Warn("could not write the cleaner checkpoint", "err", err)
	} else {
		l.firstDirty = firstDirty
	}
	l.logger.Info("cleaned log", "segments", p.stats.Segments, "bytes_before", p.stats.BytesRead,
		"bytes_after", p.stats.BytesWritten, "records_removed", p.stats.RecordsRemoved)
	return p.stats, nil
}

// beginClean takes what a pass needs from the log under the writers' lock;
// it returns nil when there is nothing to clean.
func (l *Log) beginClean(now time.Time) (*cleanPass, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.cfg.CleanupPolicy&CleanupCompact == 0 {
		return nil, nil
	}
	k := l.cleanableSegments(now)
	if k == 0 {
		return nil, nil
	}
	if err := l.beforeWrite(); err != nil {
		return nil, err
	}
	p := &cleanPass{
		l:            l,
		cfg:          l.cfg,
		segs:         slices.Clone(l.segments[:k+1]),
		firstDirty:   l.cleanerFirstDirty(),
		now:          now.UnixMilli(),
		latest:       map[string]int64{},
		lastBatch:    map[int64]int64{},
		txnData:      map[int64]bool{},
		droppedAbort: map[int64]bool{},
		stats:        CleanStats{FirstUncleanable: l.segments[k].base},
		firstHorizon: math.MaxInt64,
		abortIndex:   slices.Clone(l.aborted),
	}
	for _, e := range p.abortIndex {
		p.abortedBy = appendAborted(p.abortedBy, e)
	}
	for pid, e := range l.producers.m {
		if last, ok := e.last(); ok {
			p.lastBatch[pid] = last.baseOffset
		}
	}
	return p, nil
}

func appendAborted(m map[int64][]txnIndexEntry, e txnIndexEntry) map[int64][]txnIndexEntry {
	if m == nil {
		m = map[int64][]txnIndexEntry{}
	}
	m[e.ProducerID] = append(m[e.ProducerID], e)
	return m
}

// run maps the dirty segments, then cleans and swaps in group after group.
// Failing to read a segment that retention deleted meanwhile, or a
// truncation waiting, abandons the pass without an error (the groups
// swapped in stay); any other failure is returned.
func (p *cleanPass) run(now time.Time) error {
	k := len(p.segs) - 1
	err := p.mapLatest(p.segs[:k])
	failed := p.segs[:k]
	for i := 0; i < k && err == nil; {
		j := p.groupEnd(i, k)
		err = p.cleanGroup(p.segs[i:j], p.segs[j].base, i == 0, now)
		failed = p.segs[i:j]
		i = j
	}
	// Only the failed group's segments tell whether retention took them:
	// those of the groups already swapped in are gone from the log anyway.
	if errors.Is(err, errCleanGivenUp) || err != nil && !p.l.stillHolds(failed) {
		p.abandoned = true
		return nil
	}
	return err
}

// stillHolds reports whether every one of segs is still a segment of the
// open log.
func (l *Log) stillHolds(segs []*segment) bool {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return !l.closed && !slices.ContainsFunc(segs, func(s *segment) bool { return !slices.Contains(l.segments, s) })
}

// groupEnd returns the end (exclusive) of the group of segments from i (below
// k) that one cleaned segment can hold: at most segment.bytes before
// cleaning, offsets that fit the indexes, and index entries that fit
// segment.index.bytes, as Kafka groups them.
func (p *cleanPass) groupEnd(i, k int) int {
	base := p.segs[i].base
	size := p.segs[i].size
	maxEntries := int64(p.cfg.SegmentIndexBytes / timeIndexEntrySize)
	j := i + 1
	for ; j < k; j++ {
		s := p.segs[j]
		if size+s.size > p.cfg.SegmentBytes || p.segs[j+1].base-1-base > math.MaxInt32 ||
			(size+s.size)/int64(p.cfg.IndexIntervalBytes) >= maxEntries {
			break
		}
		size += s.size
	}
	return j
}

// cleanPass is the state of one Clean, owned by its goroutine. The segments
// it reads are closed ones, which only the cleaner (under cleanMu) and
// retention change; it checks under the writers' lock that a group is
// still there before swapping it.
type cleanPass struct {
	l          *Log
	cfg        Config
	segs       []*segment // the cleanable segments, then the first uncleanable one
	firstDirty int64      // below it, segments were cleaned before
	now        int64      // the pass's time (ms)
	// latest is the offset of the latest record of each key in the dirty
	// segments.
	latest map[string]int64
	// abortIndex is the log's aborted transaction index as the pass began,
	// abortedBy the same by producer id.
	abortIndex []txnIndexEntry
	abortedBy  map[int64][]txnIndexEntry
	// lastBatch is the base offset of each producer's latest batch.
	lastBatch map[int64]int64
	// txnData marks the producers whose current transaction (in the pass's
	// order) kept records: its marker must stay.
	txnData map[int64]bool
	// droppedAbort holds the offsets of the abort markers dropped.
	droppedAbort map[int64]bool
	// firstHorizon is the earliest delete horizon of the batches kept
	// with tombstones or markers that may go, math.MaxInt64 if none.
	firstHorizon int64
	// abandoned: a group was gone (retention) when its swap came.
	abandoned bool
	stats     CleanStats
	batch     recordbatch.Batch
	buf       []byte
}

func (p *cleanPass) aborted(h *batchHeader) bool {
	if h.attributes&attrTransactional == 0 {
		return false
	}
	for _, e := range p.abortedBy[h.producerID] {
		if e.FirstOffset <= h.baseOffset && h.baseOffset < e.LastOffset {
			return true
		}
	}
	return false
}

// errCleanGivenUp ends a pass that a truncation is waiting for.
var errCleanGivenUp = errors.New("clean given up for a truncation")

// eachBatch calls fn for every batch of s with a copy of its bytes. It
// gives up (errCleanGivenUp) when a truncation waits.
func (p *cleanPass) eachBatch(s *segment, fn func(h *batchHeader, raw []byte) error) error {
	hdr := make([]byte, batchHeaderLen)
	for pos := int64(0); pos < s.size; {
		if p.l.truncating.Load() > 0 {
			return errCleanGivenUp
		}
		h, problem, err := s.readFrame(pos, s.size, hdr)
		if err != nil {
			return err
		}
		if problem != "" {
			return fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, s.logPath, pos, problem)
		}
		p.buf = slices.Grow(p.buf[:0], int(h.size))[:h.size]
		if _, err := s.log.ReadAt(p.buf, pos); err != nil {
			return fmt.Errorf("read %s at %d: %w", s.logPath, pos, err)
		}
		if err := fn(&h, p.buf); err != nil {
			return err
		}
		pos += int64(h.size)
	}
	return nil
}

// records decodes the records of a data batch.
func (p *cleanPass) records(raw []byte) ([]kafkit.Record, error) {
	r := recordbatch.NewReader(raw, recordbatch.ReadOptions{})
	if !r.Next(&p.batch) {
		return nil, fmt.Errorf("%w: batch at %d: %v", ErrCorrupt, binary.BigEndian.Uint64(raw), r.Err())
	}
	return p.batch.Records, nil
}

// mapLatest records the latest offset of each key in the dirty segments;
// aborted records and control batches do not count.
func (p *cleanPass) mapLatest(segs []*segment) error {
	for _, s := range segs {
		if s.next <= p.firstDirty {
			continue
		}
		err := p.eachBatch(s, func(h *batchHeader, raw []byte) error {
			if h.attributes&attrControl != 0 || p.aborted(h) || h.lastOffset() < p.firstDirty {
				return nil
			}
			recs, err := p.records(raw)
			if err != nil {
				return err
			}
			for i := range recs {
				if recs[i].Key != nil {
					p.latest[string(recs[i].Key)] = recs[i].Offset
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// keepRecord applies the compaction rules to one record of a committed (or
// non-transactional) batch whose delete horizon is horizon (-1 if unset):
// a tombstone stays until the horizon has passed.
func (p *cleanPass) keepRecord(r *kafkit.Record, horizon int64) bool {
	if r.Key == nil {
		return false
	}
	if latest, ok := p.latest[string(r.Key)]; ok && latest > r.Offset {
		return false
	}
	return r.Value != nil || horizon < 0 || horizon > p.now
}

// deleteHorizon returns the delete horizon of a batch (KIP-534): when a
// pass first keeps a tombstone or a marker that may go, it stamps the
// batch with attributes bit 6 and firstTimestamp = the pass's time plus
// delete.retention.ms, and they go once that time has passed. It returns
// -1 for a batch not stamped yet.
func deleteHorizon(h *batchHeader) int64 {
	if h.attributes&attrDeleteHorizon == 0 {
		return -1
	}
	return h.firstTimestamp
}

// keepUntilHorizon notes that the batch keeps something that goes at its
// delete horizon, and returns the horizon to stamp it with (-1 if it has
// one).
func (p *cleanPass) keepUntilHorizon(h *batchHeader) (stamp int64) {
	horizon := deleteHorizon(h)
	if horizon < 0 {
		horizon = p.now + p.cfg.DeleteRetentionMs.Milliseconds()
		stamp = horizon
	} else {
		stamp = -1
	}
	p.firstHorizon = min(p.firstHorizon, horizon)
	return stamp
}

// filter returns the batch as the cleaned segment keeps it, or nil to drop
// it.
func (p *cleanPass) filter(h *batchHeader, raw []byte) ([]byte, error) {
	if h.attributes&attrControl != 0 {
		commit, _, err := parseMarker(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: marker at %d: %v", ErrCorrupt, h.baseOffset, err)
		}
		hasData := p.txnData[h.producerID]
		delete(p.txnData, h.producerID)
		if hasData {
			return raw, nil
		}
		if horizon := deleteHorizon(h); horizon < 0 || horizon > p.now {
			stamp := p.keepUntilHorizon(h)
			if stamp < 0 {
				return raw, nil
			}
			recs, err := p.records(raw)
			if err != nil {
				return nil, err
			}
			return rewriteBatch(raw, h, recs, stamp)
		}
		if !commit {
			p.droppedAbort[h.baseOffset] = true
		}
		p.stats.RecordsRemoved++
		return nil, nil
	}
	recs, err := p.records(raw)
	if err != nil {
		return nil, err
	}
	aborted := p.aborted(h)
	horizon := deleteHorizon(h)
	kept := recs[:0]
	tombstones := false
	for i := range recs {
		if !aborted && p.keepRecord(&recs[i], horizon) {
			kept = append(kept, recs[i])
			tombstones = tombstones || recs[i].Value == nil
		}
	}
	p.stats.RecordsRemoved += int64(len(recs) - len(kept))
	stamp := int64(-1)
	if tombstones {
		stamp = p.keepUntilHorizon(h)
	}
	if len(kept) == 0 && !p.lastOfProducer(h) {
		return nil, nil
	}
	if h.attributes&attrTransactional != 0 {
		// The marker stays while any batch of its transaction does, an
		// emptied one included (Kafka's cleaner): a replay of the batch
		// without its marker would reopen the transaction for good.
		p.txnData[h.producerID] = true
	}
	if len(kept) == len(recs) && stamp < 0 {
		return raw, nil
	}
	return rewriteBatch(raw, h, kept, stamp)
}

// lastOfProducer reports whether the batch is its producer's latest, which
// Kafka keeps (empty if need be) so that the producer's state can be rebuilt
// from the log.
func (p *cleanPass) lastOfProducer(h *batchHeader) bool {
	if h.producerID < 0 {
		return false
	}
	last, ok := p.lastBatch[h.producerID]
	return ok && last == h.baseOffset
}

// rewriteBatch encodes the kept records of a batch with their offset and
// timestamp deltas, compressed with the batch's codec as Kafka's cleaner does
// (an empty batch, kept for its producer, is written uncompressed as Kafka
// writes it); maxTimestamp becomes the kept records' largest, and the
// header keeps everything else (base offset, lastOffsetDelta, first
// timestamp, producer fields, transactional and control bits).
func rewriteBatch(raw []byte, h *batchHeader, kept []kafkit.Record, horizon int64) ([]byte, error) {
	base := h.firstTimestamp
	if horizon >= 0 {
		// Record timestamps stay as they were: deltas from the horizon.
		base = horizon
	}
	var records []byte
	var hdrs []kmsg.Header
	maxTs := h.maxTimestamp // an emptied batch keeps its header's
	for i := range kept {
		r := &kept[i]
		if i == 0 {
			maxTs = -1
		}
		maxTs = max(maxTs, r.Timestamp.UnixMilli())
		hdrs = hdrs[:0]
		for _, hd := range r.Headers {
			hdrs = append(hdrs, kmsg.Header{Key: hd.Key, Value: hd.Value})
		}
		rec := kmsg.Record{
			TimestampDelta64: r.Timestamp.UnixMilli() - base,
			OffsetDelta:      int32(r.Offset - h.baseOffset),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          hdrs,
		}
		// The length prefix counts the bytes after it: encode once with a
		// one-byte zero prefix to measure.
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		records = rec.AppendTo(records)
	}
	attributes := uint16(h.attributes)
	if horizon >= 0 {
		attributes |= attrDeleteHorizon
	}
	codec := recordbatch.Codec(attributes & 0x07)
	if len(kept) == 0 {
		attributes &^= 0x07
		codec = recordbatch.None
	}
	out, err := recordbatch.Compress(codec, append(make([]byte, 0, len(raw)), raw[:batchHeaderLen]...), records)
	if err != nil {
		return nil, fmt.Errorf("recompressing a cleaned batch with %s: %w", codec, err)
	}
	be := binary.BigEndian
	be.PutUint32(out[offBatchLength:], uint32(len(out)-logOverhead))
	be.PutUint16(out[offAttributes:], attributes)
	be.PutUint32(out[offRecordCount:], uint32(len(kept)))
	// The dropped records may have held the largest timestamp: the header
	// gets the kept ones' (Kafka's cleaner rebuilds it), so that a lookup by
	// timestamp moves on to a later batch.
	be.PutUint64(out[offMaxTimestamp:], uint64(maxTs))
	be.PutUint64(out[offFirstTimestamp:], uint64(base))
	be.PutUint32(out[offCRC:], batchCRC(out))
	return out, nil
}

// cleanGroup cleans the segments of group, which end where the segment
// based at next starts, into one segment and swaps it in. A group left
// without batches is deleted, unless it is the first.
func (p *cleanPass) cleanGroup(group []*segment, next int64, first bool, now time.Time) (err error) {
	l := p.l
	base := group[0].base
	files := make(map[string]File, len(swapExts))
	committed := false
	defer func() {
		if err != nil && !committed {
			err = errors.Join(err, p.removeCleaned(base, files))
		}
		for _, f := range files {
			f.Close()
		}
	}()
	for _, ext := range swapExts {
		f, err := l.fsys.OpenFile(offsetFileName(l.dir, base, ext+extCleaned), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		files[ext] = f
	}
	out := &segment{base: base, next: base, maxTs: -1, maxTsOffset: -1, rollTs: -1, created: now,
		logPath: offsetFileName(l.dir, base, extLog), interval: int64(p.cfg.IndexIntervalBytes), logger: l.logger}
	d := segmentDelta{maxTs: -1, maxTsOffset: -1}
	var size int64
	for _, s := range group {
		p.stats.Segments++
		p.stats.BytesRead += s.size
		err := p.eachBatch(s, func(h *batchHeader, raw []byte) error {
			b, err := p.filter(h, raw)
			if err != nil || b == nil {
				return err
			}
			if _, err := files[extLog].WriteAt(b, size); err != nil {
				return err
			}
			nh := parseHeader(b)
			d.addBatch(out, &nh, size, out.interval)
			if size == 0 {
				out.rollTs = nh.maxTimestamp
			}
			size += int64(nh.size)
			out.next = nh.nextOffset()
			return nil
		})
		if err != nil {
			return err
		}
	}
	if size == 0 && !first {
		// The first segment stays, even empty, to keep the log start offset.
		return p.deleteGroup(group, files)
	}
	d.finalTimeEntry(out)
	p.stats.BytesWritten += size
	if err := writeIndexFiles(files, &d, p.kept(base, out.next)); err != nil {
		return err
	}
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	i, ok := l.holdsGroup(group)
	if !ok {
		p.abandoned = true
		return p.removeCleaned(base, files)
	}
	// The commit point: once the .log.swap exists, recovery finishes the
	// swap; before, it deletes the .cleaned files.
	for _, ext := range swapExts {
		if err := l.fsys.Rename(offsetFileName(l.dir, base, ext+extCleaned), offsetFileName(l.dir, base, ext+extSwap)); err != nil {
			return err
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return err
	}
	committed = true
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range group {
		errs = append(errs, s.close())
	}
	if err := errors.Join(append(errs, l.finishSwap(base, next))...); err != nil {
		// The old segments are closed: the log cannot go on with them.
		l.closed = true
		return fmt.Errorf("swap in cleaned segment %d (log closed; reopen to recover): %w", base, err)
	}
	s, err := openSegment(l.fsys, l.dir, base, false, now, out.interval, l.logger)
	if err != nil {
		l.closed = true
		return fmt.Errorf("open cleaned segment %d (log closed; reopen to recover): %w", base, err)
	}
	s.publish(&d, size, out.next)
	s.rollTs = out.rollTs
	s.indexReady.Store(true)
	l.segments = slices.Replace(l.segments, i, i+len(group), s)
	return nil
}

// holdsGroup returns where the log's segments still hold group, closed
// segments in a row; ok is false once retention deleted any of them. The
// caller holds appendMu.
func (l *Log) holdsGroup(group []*segment) (i int, ok bool) {
	if l.closed {
		return 0, false
	}
	i = slices.Index(l.segments, group[0])
	return i, i >= 0 && i+len(group) < len(l.segments) && slices.Equal(l.segments[i:i+len(group)], group)
}

// removeCleaned closes and deletes a group's .cleaned files (and .swap
// files of an interrupted commit).
func (p *cleanPass) removeCleaned(base int64, files map[string]File) error {
	var errs []error
	for ext, f := range files {
		errs = append(errs, f.Close())
		for _, suffix := range []string{extCleaned, extSwap} {
			if err := p.l.fsys.Remove(offsetFileName(p.l.dir, base, ext+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	clear(files)
	return errors.Join(errs...)
}

// deleteGroup deletes the segments of group, which cleaning emptied and
// which are not the first, and the .cleaned files. A crash in between
// leaves some of them, uncleaned but consistent.
func (p *cleanPass) deleteGroup(group []*segment, files map[string]File) error {
	l := p.l
	errs := []error{p.removeCleaned(group[0].base, files)}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	i, ok := l.holdsGroup(group)
	if !ok {
		p.abandoned = true
		return errors.Join(errs...)
	}
	l.mu.Lock()
	l.segments = slices.Delete(l.segments, i, i+len(group))
	l.mu.Unlock()
	for _, s := range slices.Backward(group) {
		errs = append(errs, s.remove(l.fsys, l.dir))
	}
	return errors.Join(append(errs, l.fsys.SyncDir(l.dir))...)
}

// kept returns the aborted transactions whose markers stay in [base, next).
func (p *cleanPass) kept(base, next int64) []txnIndexEntry {
	var out []txnIndexEntry
	for _, e := range abortedIn(p.abortIndex, base, next) {
		if !p.droppedAbort[e.LastOffset] {
			out = append(out, e)
		}
	}
	return out
}

// writeIndexFiles writes the cleaned segment's index files.
func writeIndexFiles(files map[string]File, d *segmentDelta, aborted []txnIndexEntry) error {
	idx := make([]byte, len(d.index)*offsetIndexEntrySize)
	for i, e := range d.index {
		e.put(idx[i*offsetIndexEntrySize:])
	}
	tidx := make([]byte, len(d.tindex)*timeIndexEntrySize)
	for i, e := range d.tindex {
		e.put(tidx[i*timeIndexEntrySize:])
	}
	for ext, b := range map[string][]byte{extIndex: idx, extTimeIndex: tidx, extTxnIndex: encodeTxnIndex(aborted)} {
		if _, err := files[ext].WriteAt(b, 0); err != nil {
			return err
		}
	}
	return nil
}

// finishSwap replaces the segments with bases in [base, next) by the
// .swap files of base: it deletes the others' files and renames the swap
// files over base's, the .log last. It is what recovery redoes after a
// crash, so every step can be repeated.
func (l *Log) finishSwap(base, next int64) error {
	names, err := l.fsys.ReadDirNames(l.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		for _, ext := range swapExts {
			if off, ok := parseOffsetName(name, ext); ok && off > base && off < next {
				if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
	}
	for _, ext := range swapExts {
		err := l.fsys.Rename(offsetFileName(l.dir, base, ext+extSwap), offsetFileName(l.dir, base, ext))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return l.fsys.SyncDir(l.dir)
}

// recoverCleaning undoes or finishes a Clean that a crash interrupted, before
// load lists the segments: .cleaned files (not yet committed) are deleted,
// and a .log.swap (committed) replaces the segments its batches cover. Index
// .swap files without their .log.swap are never committed ones, since the
// .log is renamed last. It returns the directory's names afterwards.
func (l *Log) recoverCleaning(names []string) ([]string, error) {
	changed := false
	var swaps []int64
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, extCleaned):
			l.removeFile(name)
			changed = true
		case strings.HasSuffix(name, extLog+extSwap):
			if off, ok := parseOffsetName(strings.TrimSuffix(name, extSwap), extLog); ok {
				swaps = append(swaps, off)
			}
		}
	}
	for _, base := range swaps {
		next, err := l.swapEnd(base)
		if err != nil {
			return nil, err
		}
		l.logger.Warn("finishing a log cleaning interrupted by a crash", "segment", base, "end_offset", next)
		if err := l.finishSwap(base, next); err != nil {
			return nil, err
		}
		changed = true
	}
	for _, name := range names {
		if strings.HasSuffix(name, extSwap) && !slices.ContainsFunc(swaps, func(base int64) bool {
			return strings.HasPrefix(name, filepath.Base(offsetFileName("", base, "")))
		}) {
			l.removeFile(name)
			changed = true
		}
	}
	if !changed {
		return names, nil
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return nil, err
	}
	return l.fsys.ReadDirNames(l.dir)
}

// swapEnd returns the offset after the last batch of a .log.swap file,
// which was fsynced whole before it got its name.
func (l *Log) swapEnd(base int64) (int64, error) {
	name := offsetFileName(l.dir, base, extLog+extSwap)
	f, err := l.fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	s := &segment{log: f, logPath: name}
	buf := make([]byte, batchHeaderLen)
	next := base + 1
	for pos, size := int64(0), fi.Size(); pos < size; {
		h, problem, err := s.readFrame(pos, size, buf)
		if err != nil {
			return 0, err
		}
		if problem != "" {
			return 0, fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, name, pos, problem)
		}
		next = h.nextOffset()
		pos += int64(h.size)
	}
	return next, nil
}
