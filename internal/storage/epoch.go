package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// leaderEpochFile is Kafka's per-partition leader epoch checkpoint.
const leaderEpochFile = "leader-epoch-checkpoint"

// epochEntry says that the batches from startOffset on (up to the next
// entry's start) were written by the leader of epoch.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// epochCache is Kafka's LeaderEpochFileCache without the file: the entries
// strictly increase in both epoch and start offset. It is owned by the
// holder of Log.appendMu; readers copy it under Log.mu.
type epochCache []epochEntry

// assign records that epoch starts at startOffset, as Kafka's assign: an
// entry of the latest epoch with a start at or below startOffset changes
// nothing; otherwise the entries that would break monotonicity (epoch or
// start at or above the new one's) go first. Negative epochs (batches
// written before leader epochs, or by a caller without one) are not
// recorded. It reports whether the cache changed.
func (c *epochCache) assign(epoch int32, startOffset int64) bool {
	if epoch < 0 || startOffset < 0 {
		return false
	}
	if n := len(*c); n > 0 && (*c)[n-1].epoch == epoch && (*c)[n-1].startOffset <= startOffset {
		return false
	}
	i := len(*c)
	for i > 0 && ((*c)[i-1].epoch >= epoch || (*c)[i-1].startOffset >= startOffset) {
		i--
	}
	*c = append((*c)[:i], epochEntry{epoch, startOffset})
	return true
}

// truncateFromEnd removes the entries starting at or after endOffset (the
// log was truncated there) and reports whether any went.
func (c *epochCache) truncateFromEnd(endOffset int64) bool {
	if endOffset < 0 {
		return false // Kafka's UNDEFINED_EPOCH_OFFSET
	}
	i := len(*c)
	for i > 0 && (*c)[i-1].startOffset >= endOffset {
		i--
	}
	changed := i < len(*c)
	*c = (*c)[:i]
	return changed
}

// truncateFromStart removes the entries wholly below startOffset (the log
// start moved there): the last entry starting at or below it is kept,
// moved to start at startOffset, as Kafka's truncateFromStart.
func (c *epochCache) truncateFromStart(startOffset int64) bool {
	i := 0
	for i < len(*c) && (*c)[i].startOffset <= startOffset {
		i++
	}
	if i == 0 {
		return false
	}
	first := epochEntry{(*c)[i-1].epoch, startOffset}
	changed := i > 1 || (*c)[0] != first
	*c = append(epochCache{first}, (*c)[i:]...)
	return changed
}

func (c epochCache) latest() int32 {
	if len(c) == 0 {
		return -1
	}
	return c[len(c)-1].epoch
}

// endOffsetFor is Kafka's LeaderEpochFileCache.endOffsetFor: the largest
// epoch at or below requested and the start offset of the first epoch above
// it, or logEnd when requested is the latest epoch. A requested epoch below
// every cached one gets itself and the first entry's start (the data of the
// epochs before was deleted; the follower truncates to the leader's start);
// the undefined epoch (-1), an epoch above the latest and an empty cache get
// (-1, -1).
func (c epochCache) endOffsetFor(requested int32, logEnd int64) (int32, int64) {
	if requested == -1 || len(c) == 0 {
		return -1, -1
	}
	if c.latest() == requested {
		return requested, logEnd
	}
	// higher is the first entry with an epoch above requested.
	higher, _ := slices.BinarySearchFunc(c, requested+1, func(e epochEntry, t int32) int { return int(e.epoch) - int(t) })
	switch {
	case higher == len(c):
		return -1, -1
	case higher == 0:
		return requested, c[0].startOffset
	}
	return c[higher-1].epoch, c[higher].startOffset
}

// epochForOffset is Kafka's LeaderEpochFileCache.epochForOffset: the
// epoch of the last entry starting at or below offset, -1 when none does.
func (c epochCache) epochForOffset(offset int64) int32 {
	i, _ := slices.BinarySearchFunc(c, offset+1, func(e epochEntry, t int64) int {
		if e.startOffset < t {
			return -1
		}
		return 1
	})
	if i == 0 {
		return -1
	}
	return c[i-1].epoch
}

// encodeEpochCheckpoint is Kafka's leader-epoch-checkpoint: version line
// 0, the entry count, then "<epoch> <startOffset>" lines.
func encodeEpochCheckpoint(c epochCache) []byte {
	b := fmt.Appendf(nil, "0\n%d\n", len(c))
	for _, e := range c {
		b = fmt.Appendf(b, "%d %d\n", e.epoch, e.startOffset)
	}
	return b
}

// decodeEpochCheckpoint parses a leader-epoch-checkpoint as Kafka's
// CheckpointFile reads it (an empty file is an empty cache; fields are
// separated by any whitespace; the count must match) and also requires
// what the cache keeps: entries strictly increasing in epoch and start
// offset, none negative.
func decodeEpochCheckpoint(b []byte) (epochCache, error) {
	lines, err := checkpointLines(b)
	if err != nil || lines == nil {
		return nil, err
	}
	c := make(epochCache, 0, len(lines))
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		epoch, err1 := strconv.ParseInt(f[0], 10, 32)
		start, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || epoch < 0 || start < 0 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		if n := len(c); n > 0 && (c[n-1].epoch >= int32(epoch) || c[n-1].startOffset >= start) {
			return nil, fmt.Errorf("entry %q does not follow %d %d", line, c[n-1].epoch, c[n-1].startOffset)
		}
		c = append(c, epochEntry{int32(epoch), start})
	}
	return c, nil
}

// checkpointLines checks the version-0 header of Kafka's checkpoint text
// format (CheckpointFile) and returns the entry lines; nil, nil for an empty
// file, which Kafka reads as no entries.
func checkpointLines(b []byte) ([]string, error) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	if lines[0] != "0" {
		return nil, fmt.Errorf("unrecognised version %q", lines[0])
	}
	if len(lines) == 1 {
		return []string{}, nil
	}
	count, err := strconv.Atoi(lines[1])
	if err != nil || count < 0 {
		return nil, fmt.Errorf("malformed count %q", lines[1])
	}
	if count != len(lines)-2 {
		return nil, fmt.Errorf("expected %d entries, found %d", count, len(lines)-2)
	}
	return lines[2:], nil
}

// readEpochCheckpoint reads the partition's leader-epoch-checkpoint; ok is
// false when it is missing.
func readEpochCheckpoint(fsys FS, dir string) (c epochCache, ok bool, err error) {
	b, err := readFile(fsys, filepath.Join(dir, leaderEpochFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if c, err = decodeEpochCheckpoint(b); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, leaderEpochFile, err)
	}
	return c, true, nil
}

// LatestEpoch returns the newest leader epoch in the partition's epoch
// cache, -1 when it is empty.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest()
}

// EpochForOffset is the leader epoch the record at offset was written in,
// by the epoch cache (ListOffsets answers it with the log start offset);
// -1 when the cache does not cover offset.
func (l *Log) EpochForOffset(offset int64) int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.epochForOffset(offset)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for this replica, as
// Kafka's LeaderEpochFileCache.endOffsetFor with the log end offset: the
// largest cached epoch at or below epoch and the start offset of the first
// epoch after it, or EndOffset() when epoch is the latest. An epoch below
// the earliest cached one gets (epoch, start of the earliest); -1 (the
// undefined epoch), an epoch above the latest and an empty cache get
// (-1, -1), Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.end.Load())
}

// EndOffsetForEpochAsLeader is EndOffsetForEpoch as the leader of
// leaderEpoch answers it. Kafka's leader assigns its epoch at its log end
// offset when it becomes leader (Partition.makeLeader), so that a replica
// of an older epoch learns where that epoch ended before the new leader
// has written anything (KIP-279); the answer here is computed as if that
// assignment were in the cache, whether or not AssignLeaderEpoch ran (a
// single-node broker leads every partition at epoch 0 and never calls it).
func (l *Log) EndOffsetForEpochAsLeader(leaderEpoch, epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	end := l.end.Load()
	return withEpoch(l.epochs, leaderEpoch, end).endOffsetFor(epoch, end)
}

// AssignLeaderEpoch records that this replica leads from epoch on, at the
// log end offset, as Kafka's leader does when it becomes leader
// (maybeAssignEpochStartOffset in Partition.makeLeader): leader-epoch-checkpoint is
// written before it returns. An epoch at or below the latest changes
// nothing unless the cache must drop entries to stay monotonic (Kafka's
// assign).
func (l *Log) AssignLeaderEpoch(epoch int32) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	c := withEpoch(l.epochs, epoch, l.end.Load())
	if slices.Equal(c, l.epochs) {
		return nil
	}
	// The file is not part of the segments' recovery: the directory is
	// needed, not the segment files or the end of a clean shutdown.
	if err := l.createDir(); err != nil {
		return fmt.Errorf("storage: create %s: %w", l.dir, err)
	}
	if err := l.persistEpochs(c); err != nil {
		return err
	}
	l.mu.Lock()
	l.epochs = c
	l.mu.Unlock()
	return nil
}

// epochEntries returns a copy of the leader epoch cache, oldest first.
func (l *Log) epochEntries() []epochEntry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return slices.Clone(l.epochs)
}

// withEpoch returns c with epoch assigned at startOffset: c itself when
// that changes nothing (every append of a leader but its first), else a
// changed copy, so that c (the published cache) is never written in place.
func withEpoch(c epochCache, epoch int32, startOffset int64) epochCache {
	if n := len(c); epoch < 0 || startOffset < 0 || (n > 0 && c[n-1].epoch == epoch && c[n-1].startOffset <= startOffset) {
		return c
	}
	c = slices.Clone(c)
	c.assign(epoch, startOffset)
	return c
}

// persistEpochs writes leader-epoch-checkpoint for cache c if it differs
// from the published cache; the caller publishes c (l.epochs, under mu)
// once the change it reflects is. The file is written first, as Kafka
// flushes an assign synchronously: an entry of the cache is never missing
// from the file, and entries the file has beyond the log (a write that
// failed after it, a crash) are cut by the next Open (truncateFromEnd).
// The caller holds appendMu; the partition directory exists.
func (l *Log) persistEpochs(c epochCache) error {
	if slices.Equal(c, l.epochs) {
		return nil
	}
	if err := writeFileAtomic(l.fsys, filepath.Join(l.dir, leaderEpochFile), encodeEpochCheckpoint(c)); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// loadEpochs reads leader-epoch-checkpoint at Open and brings it in line
// with the log, as Kafka's log loading does: the batches of recovered
// segments (and of every segment when the file is missing or unreadable)
// assign their partition leader epochs again, from the first such segment
// on, and the entries at or past the log end offset or wholly below the
// log start go. The file is rewritten if that changed it. It runs in load,
// before l is shared.
func (l *Log) loadEpochs(present bool, recovered []*segment) error {
	var c epochCache
	ok := false
	if present {
		var err error
		if c, ok, err = readEpochCheckpoint(l.fsys, l.dir); err != nil {
			l.logger.Warn("rebuilding the leader epoch cache from the batches", "err", err)
		}
	}
	file := slices.Clone(c)
	end := l.end.Load()
	from := end
	if !ok {
		from = l.segments[0].base
	}
	if len(recovered) > 0 {
		from = min(from, recovered[0].base)
	}
	if from < end {
		c.truncateFromEnd(from)
		buf := make([]byte, batchHeaderLen)
		for _, s := range l.segments[l.segmentFor(from):] {
			err := s.scan(from, buf, func(_ int64, h *batchHeader) bool {
				if h.baseOffset >= from {
					c.assign(h.leaderEpoch, h.baseOffset)
				}
				return true
			})
			if err != nil {
				return err
			}
		}
	}
	c.truncateFromEnd(end)
	c.truncateFromStart(l.start.Load())
	l.epochs = c
	// A file missing from a log with batches is written even empty (their
	// epochs were all undefined), so the next Open does not scan again.
	if l.dirPending || (slices.Equal(c, file) && ok) || (!ok && !present && from >= end) {
		return nil
	}
	return writeFileAtomic(l.fsys, filepath.Join(l.dir, leaderEpochFile), encodeEpochCheckpoint(c))
}

// truncateEpochsFromStart applies a new log start offset to the epoch
// cache. The caller holds appendMu. A failure to write the file only
// leaves entries below the log start in it, which the next Open drops, so
// it is logged (Kafka flushes this change in the background).
func (l *Log) truncateEpochsFromStart(start int64) {
	c := slices.Clone(l.epochs)
	if !c.truncateFromStart(start) {
		return
	}
	if err := l.persistEpochs(c); err != nil {
		l.logger.Warn("could not write the leader epoch checkpoint", "err", err)
	}
	l.mu.Lock()
	l.epochs = c
	l.mu.Unlock()
}
