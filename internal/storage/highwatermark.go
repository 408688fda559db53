package storage

// The high watermark of a replicated log (Kafka's UnifiedLog.highWatermark):
// the offset below which every in-sync replica has the records. Consumers
// read below it (and read_committed ones below the last stable offset,
// which never passes it); followers read up to the end offset
// (ReadReplica). A log whose high watermark was never set, a single node's,
// has every appended record committed: its high watermark is its end
// offset.

// HighWatermark is the high watermark: the one last set, at most the end
// offset (a truncation may have cut below it), or the end offset if none
// was set.
func (l *Log) HighWatermark() int64 {
	end := l.end.Load()
	if hw := l.hw.Load(); hw >= 0 {
		return max(min(hw, end), l.start.Load())
	}
	return end
}

// SetHighWatermark sets the high watermark; readers see it at once. The
// replication layer decides it (a leader's only moves forward, a
// follower's copies the leader's) and keeps it at most the end offset;
// HighWatermark clamps it to [StartOffset, EndOffset] regardless.
func (l *Log) SetHighWatermark(off int64) { l.hw.Store(max(off, 0)) }

// readLimitLocked is where a consumer's read stops: the last stable offset
// for read_committed, else the high watermark.
func (l *Log) readLimitLocked(committed bool) int64 {
	if committed {
		return l.lastStableLocked()
	}
	return l.HighWatermark()
}

// ReadReplica is Read for a follower replica: up to the end offset, past
// the high watermark (Kafka's FetchIsolation.LOG_END).
func (l *Log) ReadReplica(offset int64, maxBytes int32, minOne bool, dst []byte) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.readLocked(offset, l.end.Load(), maxBytes, minOne, dst)
}

// ReadsPastSegment reports whether the records readable from offset (below
// the high watermark, or the last stable offset when committed) go on past
// the segment that a Read from offset stops at, a read never spanning
// segments. Kafka answers such a fetch at once, whatever its
// fetch.min.bytes (DelayedFetch's case F: the fetch offset is on an older
// segment than the read limit): waiting would not add to what one read
// returns, so a consumer with a large fetch.min.bytes would wait out
// fetch.max.wait.ms at every segment of a backlog.
func (l *Log) ReadsPastSegment(offset int64, committed bool) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	limit := l.readLimitLocked(committed)
	if l.closed || offset < l.start.Load() || offset >= limit {
		return false
	}
	// The segment a read comes from is the first with a batch at or past
	// offset (compaction may leave offset in a gap at a segment's end).
	for _, s := range l.segments[l.segmentFor(offset):] {
		if s.next > offset {
			return s.next < limit
		}
	}
	return false
}
