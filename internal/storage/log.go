package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log is the log of one partition: a directory of segments (see doc.go).
//
// It is safe for concurrent use. Writers (Append, SetConfig, ApplyRetention,
// DeleteRecordsBefore, Flush, Close, Delete) are serialized; readers (Read,
// BatchForTimestamp, MaxTimestampBatch, StartOffset, EndOffset, Size) run
// concurrently with them and with each other, and see only whole batches: an
// append becomes visible, all at once, after its bytes are written (and, in
// durable mode, fsynced). Clean runs beside the writers and takes their
// lock only briefly (cleaner.go). No method blocks on anything but file
// I/O and the log's own locks, so none takes a context.
type Log struct {
	fsys   FS
	dir    string
	logger *slog.Logger

	// cleanMu serializes Clean, which reads and rewrites closed segments
	// without appendMu and takes appendMu only to start and to swap
	// (cleaner.go).
	cleanMu sync.Mutex
	// truncating counts the truncations waiting for cleanMu: a running
	// Clean gives its pass up for them (as Kafka aborts cleaning before a
	// truncation), so a follower is not held up by a long pass.
	truncating atomic.Int32

	// appendMu serializes writers. It guards the fields from here to mu,
	// and the segment fields marked as owned by its holder.
	appendMu       sync.Mutex
	cfg            Config // defaults applied
	producers      producerStates
	unflushedMsgs  int64     // records appended since the last fsync
	lastFlush      time.Time // of the last fsync of the active segment
	recoveryPoint  int64     // offsets below it are fsynced and need no recovery
	snapshotOffset int64     // offset of the producer snapshot file on disk, -1 if none
	firstDirty     int64     // the cleaner's checkpoint, -1 until read (cleaner.go)
	cleanMarker    bool      // .kafka_cleanshutdown is on disk: nothing changed since Open (unclean)
	filesPending   bool      // a new log whose active segment's files are not created yet (createFiles)
	dirPending     bool      // with filesPending: the directory does not exist either
	pendingMeta    []byte    // partition.metadata for createFiles to write (AssignTopicID)
	tombstoneDue   int64     // when the oldest tombstone or marker a Clean kept may go (ms), 0 if none
	delta          segmentDelta
	scratch        [timeIndexEntrySize]byte

	// mu guards the published view: segments (the slice and each segment's
	// published fields) and closed. Only the appendMu holder takes it for
	// writing, briefly; readers hold it for reading while they read files,
	// so a segment is never closed under a reader.
	mu       sync.RWMutex
	segments []*segment // by base offset; the last one is active
	closed   bool
	// firstUnstable is the first offset of the oldest ongoing transaction,
	// -1 when none; aborted is the aborted transaction index of every
	// segment, ordered by marker offset. Only the appendMu holder changes
	// them (and so reads them without mu).
	firstUnstable int64
	aborted       []txnIndexEntry
	// epochs is the leader epoch cache (epoch.go), changed like aborted.
	epochs epochCache

	// start (log start offset) and end (log end offset) change under mu's
	// write lock and are atomics so that they can be read without it.
	start atomic.Int64
	end   atomic.Int64
	// hw is the high watermark a replicated log's reads stop at, -1 while
	// none was set (highwatermark.go).
	hw atomic.Int64
	// validateCfg is a copy of cfg for validateIncoming, which runs before
	// appendMu is taken.
	validateCfg atomic.Pointer[Config]
}

// AppendResult describes a successful Append.
type AppendResult struct {
	BaseOffset     int64
	LastOffset     int64
	LogAppendTime  int64 // the stamp in milliseconds under LogAppendTime, else -1
	LogStartOffset int64
	// Duplicate: the input repeats a recent batch of an idempotent producer;
	// nothing was written and the offsets are those of the original.
	Duplicate bool
}

// Open opens the log in dir, creating the directory and an empty log if
// needed. After an unclean shutdown it validates the batches written since
// the last recovery point and truncates the log at the first invalid one;
// see doc.go. logger may be nil.
func Open(fsys FS, dir string, cfg Config, logger *slog.Logger) (*Log, error) {
	if fsys == nil {
		return nil, errors.New("storage: Open: nil FS")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		fsys:           fsys,
		dir:            dir,
		logger:         logger.With("dir", dir),
		cfg:            cfg.withDefaults(),
		producers:      newProducerStates(),
		snapshotOffset: -1,
		firstDirty:     -1,
		firstUnstable:  -1,
	}
	l.hw.Store(-1)
	c := l.cfg // a copy: SetConfig writes l.cfg under appendMu only
	l.validateCfg.Store(&c)
	if err := l.load(time.Now()); err != nil {
		for _, s := range l.segments {
			s.close()
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	return l, nil
}

// parseOffsetName parses "<20 digits><ext>".
func parseOffsetName(name, ext string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ext)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	off, err := strconv.ParseInt(digits, 10, 64)
	return off, err == nil && off >= 0
}

// load reads the directory and recovers it; it runs before l is shared.
// The files it reads are those the listing names, so a restart after a
// clean shutdown costs few system calls per partition.
func (l *Log) load(now time.Time) error {
	names, err := l.fsys.ReadDirNames(l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		// A new log: createFiles makes the directory with the files.
		names, err, l.dirPending = nil, nil, true
	} else if err == nil {
		names, err = l.recoverCleaning(names)
	}
	if err != nil {
		return err
	}
	var bases, snapshots, txnIndexes []int64
	indexFiles := map[string]int64{}
	clean := slices.Contains(names, cleanShutdownFile)
	for _, name := range names {
		if strings.HasSuffix(name, extTmp) {
			// Left by an interrupted writeFileAtomic; the target is intact.
			l.removeFile(name)
			continue
		}
		for _, ext := range []string{extLog, extIndex, extTimeIndex, extTxnIndex, extSnapshot} {
			off, ok := parseOffsetName(name, ext)
			switch {
			case !ok:
			case ext == extLog:
				bases = append(bases, off)
			case ext == extSnapshot:
				snapshots = append(snapshots, off)
			default:
				indexFiles[name] = off
				if ext == extTxnIndex {
					txnIndexes = append(txnIndexes, off)
				}
			}
		}
	}
	slices.Sort(bases)
	for name, off := range indexFiles {
		if _, found := slices.BinarySearch(bases, off); !found {
			l.removeFile(name)
		}
	}

	// After a clean shutdown the recovery point is the log end offset
	// (Close wrote it before the marker) and recovery trusts everything.
	recoveryPoint := int64(0)
	if !clean && slices.Contains(names, recoveryPointFile) {
		if recoveryPoint, _, err = readCheckpoint(l.fsys, l.dir, recoveryPointFile); err != nil {
			l.logger.Warn("ignoring unreadable recovery point; recovering every segment", "err", err)
			recoveryPoint = 0
		}
	}
	logStart := int64(0)
	if slices.Contains(names, logStartOffsetFile) {
		if logStart, _, err = readCheckpoint(l.fsys, l.dir, logStartOffsetFile); err != nil {
			l.logger.Warn("ignoring unreadable log start offset", "err", err)
			logStart = 0
		}
	}
	if !clean && len(bases) > 0 {
		l.logger.Info("no clean shutdown marker; recovering segments after the recovery point", "recovery_point", recoveryPoint)
	}

	recovered, err := l.loadSegments(bases, clean, recoveryPoint, now)
	if err != nil {
		return err
	}
	if n := len(l.segments); n > 0 && !l.segments[n-1].indexReady.Load() {
		// Appends go to the last segment's index files at the positions
		// its in-memory indexes give: they must be the files' contents.
		s := l.segments[n-1]
		index, tindex, err := s.readIndexes(s.size)
		switch {
		case err == nil:
			s.index, s.tindex = index, tindex
			s.indexReady.Store(true)
		case errors.Is(err, ErrCorrupt):
			l.logger.Warn("active segment's indexes fail their checks; rebuilding them", "segment", s.base, "err", err)
			buf := make([]byte, batchHeaderLen)
			if _, _, err := s.recover(&buf); err != nil {
				return err
			}
			recovered = append(recovered, s)
		default:
			return err
		}
	}
	changed := false // a file of the log was created or rewritten
	if n := len(l.segments); n == 0 || logStart > l.segments[n-1].next {
		// Empty, or everything is below a log start offset set by
		// DeleteRecords: start over at the log start offset.
		for _, s := range l.segments {
			if err := s.remove(l.fsys, l.dir); err != nil {
				return err
			}
		}
		if len(l.segments) > 0 {
			changed = true
			if err := l.fsys.SyncDir(l.dir); err != nil {
				return err
			}
		}
		recovered = nil
		// The producers' state of deleted batches goes with them (Kafka's
		// truncateFullyAndStartAt at load).
		for _, off := range snapshots {
			l.removeFile(filepath.Base(offsetFileName(l.dir, off, extSnapshot)))
		}
		snapshots, txnIndexes = nil, nil
		l.segments = []*segment{newSegment(l.dir, logStart, now, int64(l.cfg.IndexIntervalBytes), l.logger)}
		l.filesPending = true
	}
	changed = changed || len(recovered) > 0
	last := l.segments[len(l.segments)-1]
	if clean && !changed {
		recoveryPoint = last.next
	}
	l.start.Store(max(logStart, l.segments[0].base))
	l.end.Store(last.next)

	if err := l.loadProducers(snapshots, txnIndexes); err != nil {
		return err
	}
	if err := l.loadEpochs(slices.Contains(names, leaderEpochFile), recovered); err != nil {
		return err
	}
	if len(recovered) > 0 || recoveryPoint != last.next {
		// Recovery rewrote files; make that durable so it is not redone.
		// (A new log needs no checkpoint: a missing one means offset 0.)
		for _, s := range recovered {
			if err := s.sync(); err != nil {
				return err
			}
		}
		if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, last.next); err != nil {
			return err
		}
	}
	l.recoveryPoint = last.next
	l.lastFlush = now
	// The marker stays while the log is as the clean shutdown left it, so
	// that a restart of a broker whose partitions are mostly idle fsyncs
	// nothing for them; beforeWrite removes it before the first change.
	l.cleanMarker = clean
	if changed {
		return l.unclean()
	}
	return nil
}

// createDir makes a new log's directory and writes its pending
// partition.metadata.
func (l *Log) createDir() error {
	if !l.dirPending {
		return nil
	}
	if err := l.fsys.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	if l.pendingMeta != nil {
		f, err := l.fsys.OpenFile(filepath.Join(l.dir, partitionMetaFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(l.pendingMeta, 0)
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
	}
	l.dirPending, l.pendingMeta = false, nil
	return nil
}

// untouched reports whether nothing was written since Open: the log is on
// disk as Open found it (clean-shutdown marker included), or it is new and
// its first segment's files do not exist yet.
func (l *Log) untouched() bool { return l.cleanMarker || l.filesPending }

// beforeWrite prepares the log for its first change since Open; every
// writer calls it before it touches a file. The caller holds appendMu.
func (l *Log) beforeWrite() error {
	if err := l.unclean(); err != nil {
		return err
	}
	return l.createFiles()
}

// unclean removes the clean-shutdown marker, durably: from then on a crash
// must be treated as unclean.
func (l *Log) unclean() error {
	if !l.cleanMarker {
		return nil
	}
	if err := l.fsys.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	l.cleanMarker = false
	return nil
}

// createFiles creates a new log's directory (if missing), partition.metadata
// (if assigned) and first segment files, which Open left for the first
// write so that creating a topic of many partitions creates no file (as in
// KRaft, where the metadata log records the topic and brokers make the
// logs afterwards); as for any new segment, the files' directory entries
// (and the partition directory's own) are fsynced before a batch goes in
// them, as Kafka flushes a new log's parent directory before its first
// flush. partition.metadata is not fsynced: AssignTopicID at the next
// start replaces a copy a power loss cut.
func (l *Log) createFiles() error {
	if !l.filesPending {
		return nil
	}
	if err := l.createDir(); err != nil {
		return fmt.Errorf("storage: create %s: %w", l.dir, err)
	}
	s := l.active()
	log, idx, tidx, err := s.openFiles(l.fsys, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err == nil {
		err = errors.Join(l.fsys.SyncDir(l.dir), l.fsys.SyncDir(filepath.Dir(l.dir)))
		if err != nil {
			log.Close()
			idx.Close()
			tidx.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("storage: create segment %s: %w", s.logPath, err)
	}
	// Readers look at the fields under mu (they never read an empty
	// segment's files, but the race detector cannot know that).
	l.mu.Lock()
	s.log, s.idx, s.tidx = log, idx, tidx
	l.mu.Unlock()
	l.filesPending = false
	return nil
}

// loadSegments opens the segments, trusting those wholly below the recovery
// point (or all after a clean shutdown) and recovering the others.
// It returns the segments it recovered, whose rewritten files are not yet
// fsynced.
func (l *Log) loadSegments(bases []int64, clean bool, recoveryPoint int64, now time.Time) (recovered []*segment, err error) {
	buf := make([]byte, batchHeaderLen) // recover grows it to the largest batch
	for i, base := range bases {
		if n := len(l.segments); n > 0 && base < l.segments[n-1].next {
			l.logger.Error("segment overlaps the previous one; deleting it and every later segment",
				"segment", base, "previous_end", l.segments[n-1].next)
			return recovered, l.removeSegmentFiles(bases[i:])
		}
		s, err := openSegment(l.fsys, l.dir, base, false, now, int64(l.cfg.IndexIntervalBytes), l.logger)
		if err != nil {
			return recovered, err
		}
		l.segments = append(l.segments, s)
		trusted := clean || (i+1 < len(bases) && bases[i+1] <= recoveryPoint)
		if trusted {
			err := s.load(buf, i == len(bases)-1)
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrCorrupt) {
				return recovered, err
			}
			l.logger.Warn("segment failed its checks; recovering it", "segment", base, "err", err)
		}
		dropped, reason, err := s.recover(&buf)
		if err != nil {
			return recovered, err
		}
		recovered = append(recovered, s)
		if dropped > 0 {
			l.logger.Warn("truncated invalid tail of segment", "segment", base, "bytes_dropped", dropped,
				"reason", reason, "log_end_offset", s.next)
			// A flushed segment's later segments were flushed too: like
			// Kafka, recovery cuts only the segment that failed its checks
			// (bit rot). After the recovery point, what follows a torn
			// write was never flushed and goes.
			if i+1 < len(bases) && !trusted {
				l.logger.Warn("deleting segments after the truncated one", "segments", bases[i+1:])
				return recovered, l.removeSegmentFiles(bases[i+1:])
			}
		}
	}
	return recovered, nil
}

// removeSegmentFiles deletes the files of segments that are not open.
func (l *Log) removeSegmentFiles(bases []int64) error {
	for _, base := range bases {
		for _, ext := range []string{extLog, extIndex, extTimeIndex, extTxnIndex} {
			if err := l.fsys.Remove(offsetFileName(l.dir, base, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return l.fsys.SyncDir(l.dir)
}

func (l *Log) removeFile(name string) {
	if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.logger.Warn("could not remove stale file", "file", name, "err", err)
	}
}

// loadProducers rebuilds the producers' state from the newest usable
// snapshot plus the batch headers after it (all headers without one).
// txnIndexes are the bases of the segments with a .txnindex file.
func (l *Log) loadProducers(snapshots, txnIndexes []int64) error {
	slices.Sort(snapshots)
	from := l.segments[0].base
	end := l.end.Load()
	for i := len(snapshots) - 1; i >= 0; i-- {
		off := snapshots[i]
		name := offsetFileName(l.dir, off, extSnapshot)
		if off > end || l.snapshotOffset >= 0 {
			l.removeFile(filepath.Base(name))
			continue
		}
		b, err := readFile(l.fsys, name)
		if err == nil {
			var p producerStates
			if p, err = decodeProducerStates(b); err == nil {
				l.producers, l.snapshotOffset, from = p, off, off
				continue
			}
		}
		l.logger.Warn("ignoring producer snapshot", "file", name, "err", err)
		l.removeFile(filepath.Base(name))
	}
	if err := l.loadTxnIndexes(from, txnIndexes); err != nil {
		// Start over from the first batch, which rebuilds every entry.
		l.logger.Warn("ignoring aborted transaction indexes; replaying every batch", "err", err)
		l.producers, from = newProducerStates(), l.segments[0].base
		if l.snapshotOffset >= 0 {
			l.removeFile(filepath.Base(offsetFileName(l.dir, l.snapshotOffset, extSnapshot)))
			l.snapshotOffset = -1
		}
		l.aborted = l.aborted[:0]
	}
	if err := l.replayProducers(from); err != nil {
		return err
	}
	l.firstUnstable = l.producers.firstUnstable()
	// The replayed segments that are no longer active get their
	// .txnindex files back (the active one's is written when it stops
	// being active).
	for _, s := range l.segments[l.segmentFor(from) : len(l.segments)-1] {
		if err := l.writeTxnIndex(s); err != nil {
			return err
		}
	}
	return nil
}

// replayProducers applies the batch headers from offset from to the
// producers' state, and the markers to the aborted transaction index.
func (l *Log) replayProducers(from int64) error {
	buf := make([]byte, batchHeaderLen)
	for i := l.segmentFor(from); i < len(l.segments); i++ {
		s := l.segments[i]
		var markerErr error
		err := s.scan(from, buf, func(pos int64, h *batchHeader) bool {
			switch {
			case h.producerID < 0 || h.baseOffset < from:
			case h.attributes&attrControl == 0:
				l.producers.replay(h)
			default:
				commit, coordinatorEpoch, err := markerOf(s, pos, h)
				if err != nil {
					markerErr = err
					return false
				}
				first := l.producers.replayMarker(h, coordinatorEpoch)
				l.recordAborts([]completedTxn{{pid: h.producerID, first: first, marker: h.baseOffset, commit: commit}})
			}
			return true
		})
		if err = errors.Join(err, markerErr); err != nil {
			return err
		}
	}
	return nil
}

// segmentFor returns the index of the segment that holds offset: the last
// one whose base is at or below it (0 if none). The caller holds mu.
func (l *Log) segmentFor(offset int64) int {
	return max(sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset })-1, 0)
}

// SetConfig changes the configuration; it applies from the next append or
// retention check.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("storage: %s: %w", l.dir, err)
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.cfg = cfg.withDefaults()
	c := l.cfg
	l.validateCfg.Store(&c)
	return nil
}

// StartOffset returns the log start offset: the first offset readable.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset returns the log end offset: the offset the next record gets.
// On a single node it is also the high watermark.
func (l *Log) EndOffset() int64 { return l.end.Load() }

// Size returns the bytes of all segment .log files (DescribeLogDirs).
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.sizeLocked()
}

func (l *Log) sizeLocked() int64 {
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// ProducerStates lists the idempotent producers known to the partition,
// ordered by producer id (DescribeProducers).
func (l *Log) ProducerStates() []ProducerState {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.producers.list()
}

// ExpireProducers forgets the idempotent producers whose last batch's
// timestamp is at least expiration older than now (Kafka's
// producer.id.expiration.ms, default one day, checked every
// producer.id.expiration.check.interval.ms): without it every client ever
// connected would be remembered forever. A forgotten producer's next batch
// is accepted at any sequence, as a new producer's is. It returns how many
// were forgotten.
func (l *Log) ExpireProducers(now time.Time, expiration time.Duration) int {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.producers.expire(now.Add(-expiration).UnixMilli())
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// Append writes the v2 record batches in records (the Records field of one
// partition of a Produce request) and returns the offsets they got. It
// validates every batch (ErrCorruptMessage, ErrUnsupportedMagic,
// ErrInvalidRecord, ErrRecordTooLarge, and under CreateTime the records'
// timestamps against the clock now: ErrInvalidTimestamp) and every idempotent producer's
// epoch and sequence (ErrInvalidProducerEpoch, ErrOutOfOrderSequence); a
// failed validation writes nothing. It rewrites the headers in records in
// place (base offset, leader epoch, and under LogAppendTime the timestamp
// and CRC), so records must not be used concurrently. now is the broker's
// clock (LogAppendTime, segment.ms, flush.ms). Appends are serialized; in
// durable mode (flush.messages=1) the batches are fsynced before it returns.
func (l *Log) Append(records []byte, now time.Time, leaderEpoch int32) (AppendResult, error) {
	tb := anyTimestamp
	if c := l.validateCfg.Load(); !c.LogAppendTime {
		tb = timestampBoundsAt(now.UnixMilli(), c.TimestampBeforeMaxMs, c.TimestampAfterMaxMs)
	}
	in, err := validateIncoming(records, tb)
	if err != nil {
		return AppendResult{}, err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	cfg := &l.cfg
	if cfg.CleanupPolicy&CleanupCompact != 0 && in.keylessDelta >= 0 {
		// Kafka's "Compacted topic cannot accept message without key".
		return AppendResult{}, fmt.Errorf("%w: compacted topic cannot accept a record without a key (batch at byte %d, offset delta %d)",
			ErrInvalidRecord, in.keylessBatch, in.keylessDelta)
	}
	if in.maxBatch > cfg.MaxMessageBytes {
		return AppendResult{}, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrRecordTooLarge, in.maxBatch, cfg.MaxMessageBytes)
	}
	if int64(len(records)) > cfg.SegmentBytes {
		return AppendResult{}, fmt.Errorf("%w: append of %d bytes exceeds segment.bytes %d", ErrRecordTooLarge, len(records), cfg.SegmentBytes)
	}
	appendTime := int64(-1)
	if cfg.LogAppendTime {
		appendTime = now.UnixMilli()
	}

	// Check the producers and compute the offsets before touching anything.
	base := l.end.Load()
	next, maxTs := base, int64(-1)
	l.producers.beginAppend()
	var completed []completedTxn
	txnData := false
	for pos := 0; pos < len(records); {
		h := parseHeader(records[pos:])
		ts := h.maxTimestamp
		if appendTime >= 0 {
			ts = appendTime
		}
		if h.attributes&attrControl != 0 {
			commit, coordinatorEpoch, err := parseMarker(records[pos : pos+int(h.size)])
			if err == nil && h.producerID < 0 {
				err = fmt.Errorf("%w: transaction marker without a producer id", ErrInvalidRecord)
			}
			if err != nil {
				return AppendResult{}, err
			}
			first, err := l.producers.checkMarker(&h, coordinatorEpoch, ts)
			if err != nil {
				return AppendResult{}, err
			}
			completed = append(completed, completedTxn{pid: h.producerID, first: first, marker: next, commit: commit})
		} else if h.producerID >= 0 {
			txnData = txnData || h.attributes&attrTransactional != 0
			dup, isDup, err := l.producers.check(&h, next, ts)
			if err != nil {
				return AppendResult{}, err
			}
			if isDup {
				res := AppendResult{BaseOffset: dup.baseOffset, LastOffset: dup.lastOffset, LogAppendTime: -1,
					LogStartOffset: l.start.Load(), Duplicate: true}
				if cfg.LogAppendTime {
					res.LogAppendTime = dup.timestamp
				}
				return res, nil
			}
		}
		maxTs = max(maxTs, ts)
		next += int64(h.lastOffsetDelta) + 1
		pos += int(h.size)
	}

	if err := l.beforeWrite(); err != nil {
		return AppendResult{}, err
	}
	epochs := withEpoch(l.epochs, leaderEpoch, base)
	if err := l.persistEpochs(epochs); err != nil {
		return AppendResult{}, err
	}
	stamp := func(b []byte, off int64) { assignOffsets(b, off, leaderEpoch, appendTime) }
	err = l.writeBatches(records, in.batches, in.records, maxTs, next, epochs, now, stamp, func() {
		l.producers.commit()
		// The stable offset moves with the end offset, under one lock, so
		// a reader never sees uncommitted data as stable. A transaction
		// that starts now comes after every open one: it matters only when
		// none is open.
		if len(completed) > 0 || (txnData && l.firstUnstable < 0) {
			l.firstUnstable = l.producers.firstUnstable()
			l.recordAborts(completed)
		}
	})
	if err != nil {
		return AppendResult{}, err
	}
	return AppendResult{BaseOffset: base, LastOffset: next - 1, LogAppendTime: appendTime, LogStartOffset: l.start.Load()}, nil
}

// writeBatches writes whole batches (records: n of them, with nRecords
// records, the largest timestamp maxTs, ending before offset next) at the
// end of the log, rolling first if the active segment cannot take them.
// stamp, if not nil, rewrites each batch's header in place before it is
// indexed, given the batch's base offset (records' own base offsets are
// used when stamp is nil). publish runs under mu's write lock after the
// write, with the segment published and before the end offset moves, to
// update the state that goes with the batches; epochs becomes the
// published epoch cache there too. The caller holds appendMu and called
// beforeWrite.
func (l *Log) writeBatches(records []byte, n int, nRecords, maxTs, next int64, epochs epochCache, now time.Time, stamp func([]byte, int64), publish func()) error {
	active := l.active()
	if l.shouldRoll(active, int64(len(records)), n, maxTs, next-1, now) {
		if err := l.roll(now); err != nil {
			return err
		}
		active = l.active()
	}
	pos := active.size
	d := &l.delta
	d.start(active)
	off := l.end.Load()
	for p := 0; p < len(records); {
		b := records[p:]
		size := int(binary.BigEndian.Uint32(b[offBatchLength:])) + logOverhead
		if stamp != nil {
			stamp(b[:size], off)
		}
		h := parseHeader(b)
		if !active.holds(&h) {
			// Only a replicated gap of 2^31 offsets gets here: the new
			// segment starts at the end offset, not at the batch.
			return fmt.Errorf("%w: batch at offset %d does not fit a segment starting at %d", ErrInvalidRecord, h.baseOffset, active.base)
		}
		d.addBatch(active, &h, pos+int64(p), int64(l.cfg.IndexIntervalBytes))
		off = h.nextOffset()
		p += size
	}
	if err := l.write(active, records, pos, nRecords, now); err != nil {
		return err
	}
	l.mu.Lock()
	active.publish(d, pos+int64(len(records)), next)
	l.epochs = epochs
	publish()
	l.end.Store(next)
	l.mu.Unlock()
	if pos == 0 {
		active.rollTs = int64(binary.BigEndian.Uint64(records[offMaxTimestamp:]))
	}
	return nil
}

// write puts an append's bytes and index entries (l.delta) into the active
// segment's files at pos and fsyncs if the flush policy says so. On failure
// it cuts the files back to their published sizes.
func (l *Log) write(s *segment, records []byte, pos, nRecords int64, now time.Time) error {
	err := func() error {
		if _, err := s.log.WriteAt(records, pos); err != nil {
			return fmt.Errorf("storage: append to %s: %w", s.logPath, err)
		}
		if err := s.writeIndexes(&l.delta, l.scratch[:]); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		l.unflushedMsgs += nRecords
		if (l.cfg.FlushMessages > 0 && l.unflushedMsgs >= l.cfg.FlushMessages) ||
			(l.cfg.FlushMs > 0 && (now.Sub(l.lastFlush).Milliseconds() >= l.cfg.FlushMs.Milliseconds() || now.Before(l.lastFlush))) {
			// Kafka counts flush.ms in whole milliseconds; a clock that went
			// backwards errs on the durable side.
			if err := s.log.Sync(); err != nil {
				return fmt.Errorf("storage: fsync %s: %w", s.logPath, err)
			}
			l.unflushedMsgs, l.lastFlush = 0, now
		}
		return nil
	}()
	if err != nil {
		if uerr := errors.Join(s.log.Truncate(pos), s.truncateIndexes()); uerr != nil {
			l.logger.Error("could not undo a failed append; recovery will truncate it at the next open", "err", uerr)
		}
	}
	return err
}

// shouldRoll applies Kafka's roll rules to an append of n bytes in batches
// batches with the given largest timestamp and last offset.
func (l *Log) shouldRoll(s *segment, n int64, batches int, maxTs, lastOffset int64, now time.Time) bool {
	if s.size == 0 {
		return false
	}
	cfg := &l.cfg
	// segment.ms counts from the first batch's timestamp to the incoming
	// one's, or from the segment's creation when timestamps are missing.
	waited := now.Sub(s.created).Milliseconds()
	if s.rollTs >= 0 && maxTs >= 0 {
		waited = maxTs - s.rollTs
	}
	return s.size+n > cfg.SegmentBytes ||
		waited > cfg.rollMs() ||
		len(s.index)+batches > int(cfg.SegmentIndexBytes/offsetIndexEntrySize) ||
		len(s.tindex)+batches > int(cfg.SegmentIndexBytes/timeIndexEntrySize) ||
		lastOffset-s.base > math.MaxInt32
}

// roll finishes the active segment (final time index entry, fsync) and
// starts a new one at the log end offset. Everything below the new segment
// is then on disk, which moves the recovery point and is a good moment for a
// producer snapshot.
func (l *Log) roll(now time.Time) error {
	old := l.active()
	d := &l.delta
	d.start(old)
	d.finalTimeEntry(old)
	if err := old.writeIndexes(d, l.scratch[:]); err != nil {
		return fmt.Errorf("storage: roll: %w", err)
	}
	if err := l.writeTxnIndex(old); err != nil {
		return fmt.Errorf("storage: roll: %w", err)
	}
	if err := old.sync(); err != nil {
		return fmt.Errorf("storage: roll: fsync %s: %w", old.logPath, err)
	}
	s, err := openSegment(l.fsys, l.dir, old.next, true, now, int64(l.cfg.IndexIntervalBytes), l.logger)
	if err != nil {
		return fmt.Errorf("storage: roll: %w", err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		s.remove(l.fsys, l.dir)
		return fmt.Errorf("storage: roll: %w", err)
	}
	l.mu.Lock()
	old.publish(d, old.size, old.next)
	old.tail = nil // reads at the end of the log go to s now
	l.segments = append(l.segments, s)
	l.mu.Unlock()
	l.unflushedMsgs, l.lastFlush = 0, now
	l.logger.Debug("rolled segment", "segment", s.base)
	l.checkpointRecoveryPoint(s.base)
	l.snapshotProducers(s.base)
	return nil
}

// checkpointRecoveryPoint records that offsets below off are on disk. A
// failure only means a longer recovery after a crash, so it is logged.
func (l *Log) checkpointRecoveryPoint(off int64) {
	if off == l.recoveryPoint {
		return
	}
	if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, off); err != nil {
		l.logger.Warn("could not write the recovery point", "err", err)
		return
	}
	l.recoveryPoint = off
}

// snapshotProducers writes the producers' state as of offset off (the log
// end offset) and removes the previous snapshot. A failure only means a
// longer scan at the next open, so it is logged.
func (l *Log) snapshotProducers(off int64) {
	if off == l.snapshotOffset {
		return
	}
	if err := writeFileAtomic(l.fsys, offsetFileName(l.dir, off, extSnapshot), l.producers.encode()); err != nil {
		l.logger.Warn("could not write a producer snapshot", "err", err)
		return
	}
	if l.snapshotOffset >= 0 {
		l.removeFile(filepath.Base(offsetFileName(l.dir, l.snapshotOffset, extSnapshot)))
	}
	l.snapshotOffset = off
}

// Read appends to dst the stored batches starting with the one that holds
// offset, as many whole batches as fit in maxBytes, and returns the extended
// slice. With minOne the first batch is returned even if it is larger
// (KIP-74). A read never spans segments. offset == EndOffset returns dst
// unchanged; an offset below StartOffset or above EndOffset is
// ErrOffsetOutOfRange. The first batch may start below offset; Kafka clients
// skip the records before the offset they asked for.
func (l *Log) Read(offset int64, maxBytes int32, minOne bool, dst []byte) ([]byte, error) {
	return l.read(offset, false, maxBytes, minOne, dst)
}

// ReadCommitted is Read for a read_committed consumer: it returns only
// batches below the last stable offset, so an offset at or above it (and
// at most EndOffset) returns dst unchanged. It also returns the aborted
// transactions with records in the batches it returned
// (AbortedTransactions from offset to the end of the last one), collected
// under the same lock as the data, as Kafka collects both from one read:
// retention or DeleteRecords in between would drop entries of records
// already read.
func (l *Log) ReadCommitted(offset int64, maxBytes int32, minOne bool, dst []byte) ([]byte, []Aborted, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	start := len(dst)
	dst, err := l.readLocked(offset, l.readLimitLocked(true), maxBytes, minOne, dst)
	if err != nil || len(dst) == start {
		return dst, nil, err
	}
	return dst, l.abortedLocked(offset, nextOffsetAfter(dst[start:])), nil
}

func (l *Log) read(offset int64, committed bool, maxBytes int32, minOne bool, dst []byte) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.readLocked(offset, l.readLimitLocked(committed), maxBytes, minOne, dst)
}

// nextOffsetAfter is the offset after the last of whole batches.
func nextOffsetAfter(batches []byte) int64 {
	var next int64
	for pos := 0; pos+batchHeaderLen <= len(batches); {
		h := parseHeader(batches[pos:])
		next = h.nextOffset()
		pos += int(h.size)
	}
	return next
}

// readLocked is read up to limit; the caller holds mu for reading.
func (l *Log) readLocked(offset, limit int64, maxBytes int32, minOne bool, dst []byte) ([]byte, error) {
	if l.closed {
		return dst, ErrClosed
	}
	if start, end := l.start.Load(), l.end.Load(); offset < start || offset > end {
		return dst, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
	} else if offset >= limit {
		return dst, nil
	}
	// The header scratch lives in dst's spare capacity, where the data goes.
	dst = slices.Grow(dst, batchHeaderLen)
	scratch := dst[len(dst) : len(dst)+batchHeaderLen]
	for i := l.segmentFor(offset); i < len(l.segments); i++ {
		s := l.segments[i]
		b, found, err := s.findBatch(offset, scratch)
		if err != nil {
			return dst, err
		}
		if found {
			if b.base >= limit {
				// offset lies in a gap compaction left right below the
				// limit: the first batch after it is not stable yet.
				return dst, nil
			}
			return readBatches(s, b.pos, b.size, limit, maxBytes, minOne, dst)
		}
	}
	return dst, nil
}

// readBatches reads the whole batches from pos that fit in maxBytes (at
// least the first, of firstSize bytes, if minOne) with one ReadAt, stopping
// at the first batch at or above limit.
func readBatches(s *segment, pos int64, firstSize int32, limit int64, maxBytes int32, minOne bool, dst []byte) ([]byte, error) {
	n := min(s.size-pos, int64(max(maxBytes, 0)))
	if n < int64(firstSize) {
		if !minOne {
			return dst, nil
		}
		n = int64(firstSize)
	}
	dst = slices.Grow(dst, int(n))
	buf := dst[len(dst) : len(dst)+int(n)]
	if _, err := s.log.ReadAt(buf, pos); err != nil {
		return dst, fmt.Errorf("storage: read %s at %d: %w", s.logPath, pos, err)
	}
	whole := 0
	for whole+logOverhead <= len(buf) {
		size := int(int32(binary.BigEndian.Uint32(buf[whole+offBatchLength:]))) + logOverhead
		if size < batchHeaderLen {
			return dst, fmt.Errorf("%w: %s at %d: batch length %d", ErrCorrupt, s.logPath, pos+int64(whole), size-logOverhead)
		}
		if whole+size > len(buf) || (whole > 0 && int64(binary.BigEndian.Uint64(buf[whole:])) >= limit) {
			break
		}
		whole += size
	}
	return dst[:len(dst)+whole], nil
}

// readBatch returns a copy of the batch at pos.
func readBatch(s *segment, pos int64, h *batchHeader) ([]byte, error) {
	b := make([]byte, h.size)
	if _, err := s.log.ReadAt(b, pos); err != nil {
		return nil, fmt.Errorf("storage: read %s at %d: %w", s.logPath, pos, err)
	}
	return b, nil
}

// BatchForTimestamp returns the first batch at or above the log start offset
// whose maxTimestamp is at or above ts, found through the .timeindex, so the
// caller can pick the first record with a timestamp at or above ts
// (ListOffsets by timestamp). ok is false when no batch qualifies.
func (l *Log) BatchForTimestamp(ts int64) (batch []byte, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, false, ErrClosed
	}
	start := l.start.Load()
	buf := make([]byte, batchHeaderLen)
	for _, s := range l.segments {
		if s.maxTs < ts || s.next <= start {
			continue
		}
		// Every record up to the last .timeindex entry below ts is older
		// than ts: scan from the batch after it.
		if err := s.ensureIndexes(); err != nil {
			return nil, false, err
		}
		from := max(s.base, start)
		if rel, ok := lookupBelowTimestamp(s.tindex, ts); ok {
			from = max(from, s.base+int64(rel)+1)
		}
		var hit *batchHeader
		var hitPos int64
		err := s.scan(from, buf, func(pos int64, h *batchHeader) bool {
			if h.maxTimestamp >= ts && h.lastOffset() >= start {
				hit, hitPos = h, pos
				return false
			}
			return true
		})
		if err != nil {
			return nil, false, err
		}
		if hit != nil {
			b, err := readBatch(s, hitPos, hit)
			return b, err == nil, err
		}
	}
	return nil, false, nil
}

// MaxTimestampBatch returns the first batch carrying the largest timestamp
// in the log (ListOffsets with timestamp -3). ok is false when no batch has
// a timestamp.
func (l *Log) MaxTimestampBatch() (batch []byte, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, false, ErrClosed
	}
	var best *segment
	for _, s := range l.segments {
		if s.size > 0 && s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		return nil, false, nil
	}
	buf := make([]byte, batchHeaderLen)
	pos, h, found, err := best.locate(best.maxTsOffset, buf)
	if err != nil || !found {
		return nil, false, err
	}
	b, err := readBatch(best, pos, &h)
	return b, err == nil, err
}

// DeleteRecordsBefore moves the log start offset up to offset (DeleteRecords)
// and deletes the segments wholly below it. The new start offset is on disk
// before it returns. An offset at or below the start offset changes nothing;
// one above the end offset is ErrOffsetOutOfRange.
func (l *Log) DeleteRecordsBefore(offset int64) (newStart int64, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if end := l.end.Load(); offset < 0 || offset > end {
		return l.start.Load(), fmt.Errorf("%w: offset %d, log end offset %d", ErrOffsetOutOfRange, offset, end)
	}
	if offset <= l.start.Load() {
		return l.start.Load(), nil
	}
	if err := l.beforeWrite(); err != nil {
		return l.start.Load(), err
	}
	if err := writeCheckpoint(l.fsys, l.dir, logStartOffsetFile, offset); err != nil {
		return l.start.Load(), fmt.Errorf("storage: %w", err)
	}
	l.mu.Lock()
	l.start.Store(offset)
	l.mu.Unlock()
	l.truncateEpochsFromStart(offset)
	_, err = l.deleteOldSegments(time.Now(), startOffsetBreached(offset))
	return offset, err
}

// startOffsetBreached selects the segments wholly below the start offset.
func startOffsetBreached(start int64) func(s, next *segment) bool {
	return func(_, next *segment) bool { return next != nil && next.base <= start }
}

// ApplyRetention deletes the oldest segments that retention.ms or
// retention.bytes no longer keep, and those wholly below the log start
// offset, and returns how many it deleted. The broker calls it on its
// log.retention.check.interval.ms tick. As in Kafka, time retention looks at
// each segment's largest timestamp, size retention deletes while the rest
// stays at or above retention.bytes, and when every segment is to go the
// active one is rolled first so the log keeps an (empty) segment.
func (l *Log) ApplyRetention(now time.Time) (deletedSegments int, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	cfg := l.cfg
	if cfg.RetentionMs >= 0 && cfg.CleanupPolicy&CleanupDelete != 0 {
		limit := cfg.RetentionMs.Milliseconds()
		n, err := l.deleteOldSegments(now, func(s, _ *segment) bool {
			return now.UnixMilli()-s.largestTimestamp() > limit
		})
		deletedSegments += n
		if err != nil {
			return deletedSegments, err
		}
	}
	if cfg.RetentionBytes > 0 && cfg.CleanupPolicy&CleanupDelete != 0 {
		excess := l.sizeLocked() - cfg.RetentionBytes
		n, err := l.deleteOldSegments(now, func(s, _ *segment) bool {
			if excess-s.size < 0 {
				return false
			}
			excess -= s.size
			return true
		})
		deletedSegments += n
		if err != nil {
			return deletedSegments, err
		}
	}
	n, err := l.deleteOldSegments(now, startOffsetBreached(l.start.Load()))
	l.evictIndexes()
	return deletedSegments + n, err
}

// evictIndexes drops the in-memory indexes of inactive segments that were
// not looked up since the last call (the previous retention check), so that
// a consumer reading an old part of the log once does not pin its indexes.
// They are read again on the next lookup. The caller holds appendMu; the
// write lock keeps readers away while the slices go.
func (l *Log) evictIndexes() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segments[:len(l.segments)-1] {
		if !s.indexUsed.Swap(false) && s.indexReady.Load() {
			s.index, s.tindex = nil, nil
			s.indexReady.Store(false)
		}
	}
}

// deleteOldSegments deletes the longest run of oldest segments that
// deletable accepts (called once per segment, in order), never counting an
// empty active segment, and moves the start offset to the first remaining
// segment. The caller holds appendMu.
func (l *Log) deleteOldSegments(now time.Time, deletable func(s, next *segment) bool) (int, error) {
	count := 0
	for i, s := range l.segments {
		var next *segment
		if i+1 < len(l.segments) {
			next = l.segments[i+1]
		}
		if (next == nil && s.size == 0) || !deletable(s, next) {
			break
		}
		count++
	}
	if count == 0 {
		return 0, nil
	}
	if err := l.beforeWrite(); err != nil {
		return 0, err
	}
	if count == len(l.segments) {
		if err := l.roll(now); err != nil {
			return 0, err
		}
	}
	doomed := slices.Clone(l.segments[:count])
	l.mu.Lock()
	l.segments = slices.Delete(l.segments, 0, count)
	l.start.Store(max(l.start.Load(), l.segments[0].base))
	l.aborted = slices.Delete(l.aborted, 0, len(abortedIn(l.aborted, 0, l.segments[0].base)))
	l.mu.Unlock()
	l.truncateEpochsFromStart(l.start.Load())
	var errs []error
	for _, s := range doomed {
		l.logger.Info("deleting segment", "segment", s.base, "end_offset", s.next, "bytes", s.size)
		errs = append(errs, s.remove(l.fsys, l.dir))
	}
	// Without this a crash could bring deleted segments back.
	errs = append(errs, l.fsys.SyncDir(l.dir))
	if err := errors.Join(errs...); err != nil {
		return count, fmt.Errorf("storage: delete segments: %w", err)
	}
	return count, nil
}

// Flush fsyncs what has been appended and moves the recovery point to the
// log end offset. The broker calls it on its flush.ms tick; Close calls it.
func (l *Log) Flush() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.flush(time.Now())
}

func (l *Log) flush(now time.Time) error {
	if l.untouched() {
		return nil // nothing to make durable
	}
	s := l.active()
	if err := s.sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", s.logPath, err)
	}
	l.unflushedMsgs, l.lastFlush = 0, now
	l.checkpointRecoveryPoint(l.end.Load())
	return nil
}

// Close flushes the log, writes the producer snapshot, the recovery point
// and the clean-shutdown marker (so the next Open skips validation), and
// closes the files, in that order. It waits for running reads. Later calls
// return ErrClosed, except Close, which returns nil.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil
	}
	if l.untouched() {
		// Unchanged since the clean shutdown that wrote the marker, or
		// new and empty: a restart finds it as it is.
		return l.closeFiles()
	}
	err := l.finish()
	if err == nil {
		err = writeFileAtomic(l.fsys, filepath.Join(l.dir, cleanShutdownFile), nil)
	}
	return errors.Join(err, l.closeFiles())
}

// finish makes the active segment final on disk, as a roll does.
func (l *Log) finish() error {
	s := l.active()
	d := &l.delta
	d.start(s)
	d.finalTimeEntry(s)
	if err := s.writeIndexes(d, l.scratch[:]); err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	if err := l.writeTxnIndex(s); err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	l.mu.Lock()
	s.publish(d, s.size, s.next)
	l.mu.Unlock()
	if err := s.sync(); err != nil {
		return fmt.Errorf("storage: close: fsync %s: %w", s.logPath, err)
	}
	end := l.end.Load()
	l.snapshotProducers(end)
	if l.snapshotOffset != end {
		return fmt.Errorf("storage: close: producer snapshot at %d not written", end)
	}
	l.checkpointRecoveryPoint(end)
	if l.recoveryPoint != end {
		return fmt.Errorf("storage: close: recovery point %d not written", end)
	}
	return nil
}

// closeFiles marks the log closed and closes every segment, waiting for
// running reads. The caller holds appendMu.
func (l *Log) closeFiles() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var errs []error
	for _, s := range l.segments {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// Delete closes the log and removes its directory (topic deletion).
func (l *Log) Delete() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	var err error
	if !l.closed {
		err = l.closeFiles()
	}
	return errors.Join(err, l.fsys.RemoveAll(l.dir))
}

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }
