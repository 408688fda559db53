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
