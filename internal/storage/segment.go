package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File name suffixes inside a partition directory (see doc.go).
const (
	extLog       = ".log"
	extIndex     = ".index"
	extTimeIndex = ".timeindex"
	extSnapshot  = ".snapshot"
	extTmp       = ".tmp"
)

// offsetFileName names the files of a segment or snapshot by their offset,
// zero-padded to 20 digits as Kafka does so that names sort by offset.
func offsetFileName(dir string, offset int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", offset, ext))
}

// segment is one .log file and its two indexes.
type segment struct {
	base           int64
	log, idx, tidx File
	logPath        string

	// Published state: written under Log.mu's write lock by the goroutine
	// holding Log.appendMu, read by readers under Log.mu's read lock.
	size        int64 // bytes of whole batches readers may see
	next        int64 // offset after the last batch; base when empty
	index       []offsetEntry
	tindex      []timeEntry
	maxTs       int64        // largest batch maxTimestamp, -1 when none
	maxTsOffset int64        // last offset of the first batch carrying maxTs
	tail        *tailBatches // the last batches published by appends; nil until the first

	// A segment loaded at Open reads its index files on first use; while
	// indexReady is unset, index and tindex are nil and only ensureIndexes,
	// holding indexMu, may set them. evictIndexes unsets it again, under
	// Log.mu's write lock, for idle inactive segments. New and recovered
	// segments are ready from the start.
	indexMu    sync.Mutex
	indexReady atomic.Bool
	indexUsed  atomic.Bool // looked up since the last Log.evictIndexes
	interval   int64       // index.interval.bytes when opened, to check and rebuild indexes
	logger     *slog.Logger

	// Owned by the goroutine holding Log.appendMu.
	bytesSinceIndex int64
	rollTs          int64     // maxTimestamp of the first batch, -1 when unknown (segment.ms)
	created         time.Time // when this process created or opened the segment
}

// openSegment opens (create: creates, truncating leftovers) a segment's
// three files. The caller fills the published state by load, recover or, for
// a new segment, nothing.
func openSegment(fsys FS, dir string, base int64, create bool, now time.Time, interval int64, logger *slog.Logger) (*segment, error) {
	s := newSegment(dir, base, now, interval, logger)
	s.indexReady.Store(create)
	flag := os.O_RDWR | os.O_CREATE
	if create {
		flag |= os.O_TRUNC
	}
	var err error
	s.log, s.idx, s.tidx, err = s.openFiles(fsys, flag)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newSegment returns an empty segment whose files do not exist yet (a new
// log's: see Log.beforeWrite); its files are nil until createFiles.
func newSegment(dir string, base int64, now time.Time, interval int64, logger *slog.Logger) *segment {
	s := &segment{base: base, next: base, maxTs: -1, maxTsOffset: -1, rollTs: -1, created: now,
		logPath: offsetFileName(dir, base, extLog), interval: interval, logger: logger}
	s.indexReady.Store(true)
	return s
}

// openFiles opens the segment's .log, .index and .timeindex with flag.
func (s *segment) openFiles(fsys FS, flag int) (log, idx, tidx File, err error) {
	dir := filepath.Dir(s.logPath)
	if log, err = fsys.OpenFile(s.logPath, flag, 0o644); err != nil {
		return nil, nil, nil, err
	}
	if idx, err = fsys.OpenFile(offsetFileName(dir, s.base, extIndex), flag, 0o644); err != nil {
		log.Close()
		return nil, nil, nil, err
	}
	if tidx, err = fsys.OpenFile(offsetFileName(dir, s.base, extTimeIndex), flag, 0o644); err != nil {
		log.Close()
		idx.Close()
		return nil, nil, nil, err
	}
	return log, idx, tidx, nil
}

func (s *segment) close() error {
	if s.log == nil {
		return nil // never created
	}
	return errors.Join(s.log.Close(), s.idx.Close(), s.tidx.Close())
}

// remove closes and deletes the segment's files.
func (s *segment) remove(fsys FS, dir string) error {
	errs := []error{s.close()}
	for _, ext := range []string{extLog, extIndex, extTimeIndex, extTxnIndex} {
		if err := fsys.Remove(offsetFileName(dir, s.base, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *segment) sync() error {
	if s.log == nil {
		return nil
	}
	return errors.Join(s.log.Sync(), s.idx.Sync(), s.tidx.Sync())
}

// largestTimestamp is what time retention compares: the largest record
// timestamp, or the file's modification time when no batch has one. An
// empty segment (only cleaning leaves one that is not active) keeps nothing
// and counts as infinitely old.
func (s *segment) largestTimestamp() int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	if s.size == 0 {
		return 0
	}
	if fi, err := s.log.Stat(); err == nil {
		return fi.ModTime().UnixMilli()
	}
	return -1
}

// readFrame reads the header of the batch at pos of a file holding size
// bytes into buf (at least batchHeaderLen long) and checks its frame.
func (s *segment) readFrame(pos, size int64, buf []byte) (h batchHeader, problem string, err error) {
	n := min(batchHeaderLen, size-pos)
	if _, err := s.log.ReadAt(buf[:n], pos); err != nil {
		return h, "", fmt.Errorf("read %s at %d: %w", s.logPath, pos, err)
	}
	h, problem, _ = checkFrame(buf[:n], size-pos)
	return h, problem, nil
}

// locate returns the position and header of the first published batch whose
// last offset is at or above offset; found is false when there is none.
// Callers hold Log.mu (either way). buf is scratch of batchHeaderLen bytes.
func (s *segment) locate(offset int64, buf []byte) (pos int64, h batchHeader, found bool, err error) {
	if err := s.ensureIndexes(); err != nil {
		return 0, h, false, err
	}
	if !s.indexUsed.Load() {
		s.indexUsed.Store(true)
	}
	// The batch at an entry's position must end at the entry's offset: an
	// index that lies (damage its checks missed) must not send a reader to
	// the wrong batch.
	wantLast := int64(-1)
	if rel := offset - s.base; rel > 0 {
		if e, ok := lookupEntry(s.index, uint32(min(rel, math.MaxInt32))); ok {
			pos, wantLast = int64(e.pos), s.base+int64(e.rel)
		}
	}
	for pos < s.size {
		h, problem, err := s.readFrame(pos, s.size, buf)
		if err != nil {
			return 0, h, false, err
		}
		if problem == "" && wantLast >= 0 && h.lastOffset() != wantLast {
			problem = fmt.Sprintf("index says last offset %d, batch says %d", wantLast, h.lastOffset())
		}
		wantLast = -1
		if problem != "" {
			return 0, h, false, fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, s.logPath, pos, problem)
		}
		if h.lastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += int64(h.size)
	}
	return 0, h, false, nil
}

// holds reports whether the batch's offsets fit the segment: at or above its
// base, with relative offsets that fit the indexes' uint32.
func (s *segment) holds(h *batchHeader) bool {
	rel := h.baseOffset - s.base
	return rel >= 0 && rel <= math.MaxInt32-int64(h.lastOffsetDelta)
}

// tailBatches are where a segment's last few published batches are, so
// that a read at the end of the log (a consumer reading records as they
// arrive) finds its batch at once. locate walks batch headers from the last
// index entry at or before the offset, a pread each: index.interval.bytes
// (4096) spans ~25 batches of one 100-byte record, ~12 preads per Fetch on
// average, under the read lock that appends wait for to publish.
type tailBatches struct {
	n int
	b [tailLen]tailBatch // oldest first; contiguous, the last ending at the segment's size
}

// tailLen is how many batches tailBatches keeps: a consumer reading as
// records arrive is a few batches behind at most.
const tailLen = 8

// tailBatch is where one batch is and which offsets it holds.
type tailBatch struct {
	pos       int64
	base      int64
	lastDelta int32
	size      int32
}

func (b *tailBatch) end() int64 { return b.pos + int64(b.size) }

// noteTail records the batches a publish adds (add, in order) to a segment
// that then holds size bytes, keeping tail contiguous up to size or
// dropping what no longer is. Called under Log.mu's write lock.
func (s *segment) noteTail(add []tailBatch, size int64) {
	t := s.tail
	if t != nil && t.n > 0 {
		end := t.b[t.n-1].end()
		if len(add) > 0 && end != add[0].pos || len(add) == 0 && end != size {
			t.n = 0
		}
	}
	if len(add) == 0 {
		return
	}
	if add[len(add)-1].end() != size {
		if t != nil {
			t.n = 0
		}
		return
	}
	if t == nil {
		t = new(tailBatches)
		s.tail = t
	}
	for _, b := range add {
		if t.n == tailLen {
			copy(t.b[:], t.b[1:])
			t.n--
		}
		t.b[t.n] = b
		t.n++
	}
}

// findBatch is locate for the reads of Fetch, which need only where the
// batch is, its base offset and size: through tail when offset is among
// the segment's last batches, through the index and a header walk
// otherwise, with buf as locate's scratch (nil: one of its own). Callers
// hold Log.mu (either way).
func (s *segment) findBatch(offset int64, buf []byte) (b tailBatch, found bool, err error) {
	if t := s.tail; t != nil && t.n > 0 && offset >= t.b[0].base {
		// The batches before the first kept one end below its base.
		for _, b := range t.b[:t.n] {
			if b.base+int64(b.lastDelta) >= offset {
				return b, true, nil
			}
		}
		return b, false, nil
	}
	if buf == nil {
		buf = make([]byte, batchHeaderLen)
	}
	pos, h, found, err := s.locate(offset, buf)
	return tailBatch{pos: pos, base: h.baseOffset, lastDelta: h.lastOffsetDelta, size: h.size}, found, err
}

// segmentDelta is what one append (or a recovery scan) adds to a segment's
// indexes and timestamps, computed before it is written and published.
type segmentDelta struct {
	index           []offsetEntry
	tindex          []timeEntry
	maxTs           int64
	maxTsOffset     int64
	bytesSinceIndex int64
	batches         []tailBatch // the last tailLen batches added, for segment.tail
}

func (d *segmentDelta) start(s *segment) {
	d.index, d.tindex, d.batches = d.index[:0], d.tindex[:0], d.batches[:0]
	d.maxTs, d.maxTsOffset, d.bytesSinceIndex = s.maxTs, s.maxTsOffset, s.bytesSinceIndex
}

// lastIndexedTs is the timestamp of the last .timeindex entry, -1 if none.
func (d *segmentDelta) lastIndexedTs(s *segment) int64 {
	switch {
	case len(d.tindex) > 0:
		return d.tindex[len(d.tindex)-1].ts
	case len(s.tindex) > 0:
		return s.tindex[len(s.tindex)-1].ts
	}
	return -1
}

// addBatch accounts for the batch h written at pos. As in Kafka, a batch gets
// an .index entry once more than interval bytes were written since the last
// entry, and the .timeindex gets the largest timestamp so far at the same
// moment if it grew.
func (d *segmentDelta) addBatch(s *segment, h *batchHeader, pos int64, interval int64) {
	if h.maxTimestamp > d.maxTs {
		d.maxTs, d.maxTsOffset = h.maxTimestamp, h.lastOffset()
	}
	if d.bytesSinceIndex > interval {
		d.index = append(d.index, offsetEntry{rel: uint32(h.lastOffset() - s.base), pos: uint32(pos)})
		if d.maxTs > d.lastIndexedTs(s) {
			d.tindex = append(d.tindex, timeEntry{ts: d.maxTs, rel: uint32(d.maxTsOffset - s.base)})
		}
		d.bytesSinceIndex = 0
	}
	d.bytesSinceIndex += int64(h.size)
	if len(d.batches) == tailLen {
		d.batches = append(d.batches[:0], d.batches[1:]...)
	}
	d.batches = append(d.batches, tailBatch{pos: pos, base: h.baseOffset, lastDelta: h.lastOffsetDelta, size: h.size})
}

// finalTimeEntry adds the .timeindex entry Kafka writes when a segment stops
// being active, so the file alone gives the segment's largest timestamp.
func (d *segmentDelta) finalTimeEntry(s *segment) {
	if d.maxTs > d.lastIndexedTs(s) {
		d.tindex = append(d.tindex, timeEntry{ts: d.maxTs, rel: uint32(d.maxTsOffset - s.base)})
	}
}

// writeIndexes appends the delta's entries to the index files. scratch holds
// at least timeIndexEntrySize bytes.
func (s *segment) writeIndexes(d *segmentDelta, scratch []byte) error {
	for i, e := range d.index {
		e.put(scratch)
		if _, err := s.idx.WriteAt(scratch[:offsetIndexEntrySize], int64(len(s.index)+i)*offsetIndexEntrySize); err != nil {
			return fmt.Errorf("write index of %s: %w", s.logPath, err)
		}
	}
	for i, e := range d.tindex {
		e.put(scratch)
		if _, err := s.tidx.WriteAt(scratch[:timeIndexEntrySize], int64(len(s.tindex)+i)*timeIndexEntrySize); err != nil {
			return fmt.Errorf("write time index of %s: %w", s.logPath, err)
		}
	}
	return nil
}

// truncateIndexes drops index file entries beyond the published ones, after
// a failed append.
func (s *segment) truncateIndexes() error {
	return errors.Join(
		s.idx.Truncate(int64(len(s.index))*offsetIndexEntrySize),
		s.tidx.Truncate(int64(len(s.tindex))*timeIndexEntrySize))
}

// publish makes an append visible; the caller holds Log.mu's write lock.
func (s *segment) publish(d *segmentDelta, size, next int64) {
	s.index = append(s.index, d.index...)
	s.tindex = append(s.tindex, d.tindex...)
	s.maxTs, s.maxTsOffset, s.bytesSinceIndex = d.maxTs, d.maxTsOffset, d.bytesSinceIndex
	s.noteTail(d.batches, size)
	s.size, s.next = size, next
}

// readWhole reads a whole (index) file.
func readWhole(f File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && len(b) == 0) {
		return nil, err
	}
	return b, nil
}

// load trusts the segment's files after cheap checks, reading only the last
// entry of each index and the batch headers after the last .index entry (to
// find the end); the whole index files are read on first use
// (ensureIndexes), so Open stays fast and cold segments cost no memory. The
// active segment's are read whole at once (appends need them), which also
// gives their last entries. Those headers must agree with the indexes: no
// batch that the interval rule would have indexed may lack its .index
// entry, and the .timeindex must end with the segment's largest timestamp
// (the entry written when a segment stops being active), so a lost or cut
// index file is noticed. Any inconsistency is returned (wrapping
// ErrCorrupt) so the caller can recover the segment instead. It runs before
// the Log is shared.
func (s *segment) load(buf []byte, active bool) error {
	fi, err := s.log.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size > math.MaxInt32 {
		return fmt.Errorf("%w: %s: %d bytes exceed a segment's limit", ErrCorrupt, s.logPath, size)
	}
	var idx []offsetEntry
	var tidx []timeEntry
	if active {
		if idx, tidx, err = s.readIndexes(size); err != nil {
			return err
		}
		s.index, s.tindex = idx, tidx
		s.indexReady.Store(true)
		idx, tidx = idx[max(len(idx)-1, 0):], tidx[max(len(tidx)-1, 0):]
	} else if idx, tidx, err = s.readLastEntries(size, buf); err != nil {
		return err
	}
	hasIdx := len(idx) > 0
	if len(tidx) > 0 {
		s.maxTs, s.maxTsOffset = tidx[0].ts, s.base+int64(tidx[0].rel)
	}
	var pos int64
	next := s.base
	wantLast := int64(-1)
	if hasIdx {
		pos, wantLast = int64(idx[0].pos), s.base+int64(idx[0].rel)
	}
	for pos < size {
		h, problem, err := s.readFrame(pos, size, buf)
		if err != nil {
			return err
		}
		if problem == "" && (h.baseOffset < next || !s.holds(&h)) {
			problem = fmt.Sprintf("offsets %d+%d do not follow %d", h.baseOffset, h.lastOffsetDelta, next)
		}
		if problem == "" && wantLast >= 0 && h.lastOffset() != wantLast {
			problem = fmt.Sprintf("index says last offset %d, batch says %d", wantLast, h.lastOffset())
		}
		if problem == "" && s.bytesSinceIndex > s.interval {
			problem = "the index lacks an entry for this batch"
		}
		if problem == "" && h.maxTimestamp > s.maxTs {
			problem = "the time index lacks the segment's largest timestamp"
		}
		if problem != "" {
			return fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, s.logPath, pos, problem)
		}
		if pos == 0 {
			s.rollTs = h.maxTimestamp
		}
		wantLast = -1
		s.bytesSinceIndex += int64(h.size)
		next = h.nextOffset()
		pos += int64(h.size)
	}
	if hasIdx && next == s.base {
		return fmt.Errorf("%w: %s: index entries but no batch at the last one", ErrCorrupt, s.logPath)
	}
	s.size, s.next = size, next
	if !hasIdx {
		return nil // the scan started at the first batch
	}
	return s.loadRollTs(buf)
}

// readLastEntries reads and checks the last entry of each index file (none
// for an empty file) of a segment whose .log holds logSize bytes.
func (s *segment) readLastEntries(logSize int64, buf []byte) ([]offsetEntry, []timeEntry, error) {
	last, err := readLastEntry(s.idx, offsetIndexEntrySize, buf)
	if err != nil {
		return nil, nil, fmt.Errorf("index of %s: %w", s.logPath, err)
	}
	idx, err := decodeOffsetIndex(last, logSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: index of %s: %v", ErrCorrupt, s.logPath, err)
	}
	if last, err = readLastEntry(s.tidx, timeIndexEntrySize, buf); err != nil {
		return nil, nil, fmt.Errorf("time index of %s: %w", s.logPath, err)
	}
	tidx, err := decodeTimeIndex(last)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: time index of %s: %v", ErrCorrupt, s.logPath, err)
	}
	return idx, tidx, nil
}

// readLastEntry returns the last entry of an index file (nil if empty);
// a size that is not a multiple of the entry size wraps ErrCorrupt.
func readLastEntry(f File, entrySize int64, buf []byte) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size%entrySize != 0 {
		return nil, fmt.Errorf("%w: size %d is not a multiple of %d", ErrCorrupt, size, entrySize)
	}
	if size == 0 {
		return nil, nil
	}
	b := buf[:entrySize]
	if _, err := f.ReadAt(b, size-entrySize); err != nil {
		return nil, err
	}
	return b, nil
}

// ensureIndexes reads the index files of a segment that load left unread.
// Readers call it under Log.mu's read lock; indexMu makes the first one do
// the work, and indexReady publishes the result. If the files fail the full
// checks (load only checked their last entries) the indexes are rebuilt in
// memory from the batch headers, and the files are left for the next
// recovery to fix: the segment is inactive, so nothing appends to them.
func (s *segment) ensureIndexes() error {
	if s.indexReady.Load() {
		return nil
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if s.indexReady.Load() {
		return nil
	}
	index, tindex, err := s.readIndexes(s.size)
	if errors.Is(err, ErrCorrupt) {
		s.logger.Warn("index files fail their checks; using indexes rebuilt in memory", "segment", s.base, "err", err)
		index, tindex, err = s.scanIndexes()
	}
	if err != nil {
		return err
	}
	s.index, s.tindex = index, tindex
	s.indexReady.Store(true)
	return nil
}

// readIndexes reads and fully checks both index files of a segment whose
// .log holds logSize bytes.
func (s *segment) readIndexes(logSize int64) ([]offsetEntry, []timeEntry, error) {
	b, err := readWhole(s.idx)
	if err != nil {
		return nil, nil, fmt.Errorf("read index of %s: %w", s.logPath, err)
	}
	index, err := decodeOffsetIndex(b, logSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: index of %s: %v", ErrCorrupt, s.logPath, err)
	}
	if b, err = readWhole(s.tidx); err != nil {
		return nil, nil, fmt.Errorf("read time index of %s: %w", s.logPath, err)
	}
	tindex, err := decodeTimeIndex(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: time index of %s: %v", ErrCorrupt, s.logPath, err)
	}
	return index, tindex, nil
}

// scanIndexes computes both indexes from the batch headers, as appends
// would have written them.
func (s *segment) scanIndexes() ([]offsetEntry, []timeEntry, error) {
	d := segmentDelta{maxTs: -1, maxTsOffset: -1}
	buf := make([]byte, batchHeaderLen)
	for pos := int64(0); pos < s.size; {
		h, problem, err := s.readFrame(pos, s.size, buf)
		if err != nil {
			return nil, nil, err
		}
		if problem != "" {
			return nil, nil, fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, s.logPath, pos, problem)
		}
		d.addBatch(s, &h, pos, s.interval)
		pos += int64(h.size)
	}
	d.finalTimeEntry(s)
	return d.index, d.tindex, nil
}

// loadRollTs reads the first batch's timestamp, the segment.ms reference.
func (s *segment) loadRollTs(buf []byte) error {
	if s.size == 0 {
		return nil
	}
	h, problem, err := s.readFrame(0, s.size, buf)
	if err != nil {
		return err
	}
	if problem != "" {
		return fmt.Errorf("%w: %s at 0: %s", ErrCorrupt, s.logPath, problem)
	}
	s.rollTs = h.maxTimestamp
	return nil
}

// recover validates every batch (frame, CRC, increasing offsets), truncates
// the .log at the first invalid one and rebuilds both index files. It returns
// how many bytes were dropped and why. It runs before the Log is shared;
// *buf is scratch that grows to the largest batch.
func (s *segment) recover(buf *[]byte) (dropped int64, reason string, err error) {
	fi, err := s.log.Stat()
	if err != nil {
		return 0, "", err
	}
	size := fi.Size()
	s.index, s.tindex, s.maxTs, s.maxTsOffset, s.bytesSinceIndex, s.rollTs = nil, nil, -1, -1, 0, -1
	var d segmentDelta
	d.start(s)
	var pos int64
	next := s.base
	for pos < size {
		h, problem, err := s.readFrame(pos, size, *buf)
		if err != nil {
			return 0, "", err
		}
		switch {
		case problem != "":
		case h.baseOffset < next:
			problem = fmt.Sprintf("base offset %d is below %d", h.baseOffset, next)
		case !s.holds(&h):
			problem = fmt.Sprintf("offsets %d+%d do not fit the segment", h.baseOffset, h.lastOffsetDelta)
		case pos+int64(h.size) > math.MaxInt32:
			problem = "segment exceeds 2 GiB"
		default:
			if int(h.size) > cap(*buf) {
				*buf = make([]byte, h.size)
			}
			batch := (*buf)[:h.size]
			if _, err := s.log.ReadAt(batch, pos); err != nil {
				return 0, "", fmt.Errorf("read %s at %d: %w", s.logPath, pos, err)
			}
			if batchCRC(batch) != h.crc {
				problem = "CRC mismatch"
			}
		}
		if problem != "" {
			reason = fmt.Sprintf("at byte %d: %s", pos, problem)
			break
		}
		if pos == 0 {
			s.rollTs = h.maxTimestamp
		}
		d.addBatch(s, &h, pos, s.interval)
		next = h.nextOffset()
		pos += int64(h.size)
	}
	if pos < size {
		if err := s.log.Truncate(pos); err != nil {
			return 0, "", fmt.Errorf("truncate %s: %w", s.logPath, err)
		}
		dropped = size - pos
	}
	if err := s.idx.Truncate(0); err != nil {
		return 0, "", err
	}
	if err := s.tidx.Truncate(0); err != nil {
		return 0, "", err
	}
	var scratch [timeIndexEntrySize]byte
	if err := s.writeIndexes(&d, scratch[:]); err != nil {
		return 0, "", err
	}
	s.publish(&d, pos, next)
	s.indexReady.Store(true)
	return dropped, reason, nil
}

// scan calls fn for each published batch header from the batch holding
// offset on, until fn returns false. The caller holds Log.mu (either way).
func (s *segment) scan(offset int64, buf []byte, fn func(pos int64, h *batchHeader) bool) error {
	pos, _, found, err := s.locate(offset, buf)
	if err != nil || !found {
		return err
	}
	for pos < s.size {
		h, problem, err := s.readFrame(pos, s.size, buf)
		if err != nil {
			return err
		}
		if problem != "" {
			return fmt.Errorf("%w: %s at %d: %s", ErrCorrupt, s.logPath, pos, problem)
		}
		if !fn(pos, &h) {
			return nil
		}
		pos += int64(h.size)
	}
	return nil
}
