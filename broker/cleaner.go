package broker

import (
	"errors"
	"time"

	"github.com/kafkit/kafkit/internal/storage"
)

// cleanerLoop is Kafka's log cleaner thread (log.cleaner.enable): it
// compacts the dirtiest log that is due (cleanup.policy with compact, see
// storage.Log.Cleanable), then the next, and when none is due it waits
// log.cleaner.backoff.ms. It runs on its own goroutine, started by New
// through goStart and stopped by Close's cancel; a pass in progress
// finishes first, since a Clean is not interruptible. A change of the
// dynamic broker configs (log.cleaner.backoff.ms among them) starts a pass
// at once and the next wait with the new backoff, as Kafka restarts its
// cleaner threads on reconfiguration.
func (b *Broker) cleanerLoop() {
	backoff := func() time.Duration {
		return max(time.Duration(b.conf().CleanerBackoffMs)*time.Millisecond, time.Millisecond)
	}
	timer := time.NewTimer(backoff())
	defer timer.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-timer.C:
		case <-b.dynamic.changed:
			timer.Stop()
		}
		// A log stays due only if its cleaning failed to record its
		// progress; bounding the passes keeps that from spinning.
		for range b.topics.partitionCount() {
			if b.ctx.Err() != nil || !b.topics.cleanDirtiest(time.Now()) {
				break
			}
		}
		timer.Reset(backoff())
	}
}

// partitionCount is the number of partition logs.
func (r *topicRegistry) partitionCount() int {
	n := 0
	for _, t := range r.all() {
		n += len(t.partitions)
	}
	return n
}

// cleanDirtiest cleans the due log with the highest dirty ratio and reports
// whether there was one.
func (r *topicRegistry) cleanDirtiest(now time.Time) bool {
	var best *partition
	bestRatio := -1.0
	for _, t := range r.all() {
		for _, p := range t.partitions {
			if ratio, due := p.log.Cleanable(now); due && ratio > bestRatio {
				best, bestRatio = p, ratio
			}
		}
	}
	if best == nil {
		return false
	}
	st, err := best.log.Clean(now)
	if err != nil {
		if !errors.Is(err, storage.ErrClosed) {
			r.b.log.Error("log cleaning failed", "topic", best.topic, "partition", best.index, "err", err)
		}
		return false
	}
	r.b.log.Info("cleaned log", "topic", best.topic, "partition", best.index, "dirty_ratio", bestRatio,
		"segments", st.Segments, "bytes_before", st.BytesRead, "bytes_after", st.BytesWritten, "records_removed", st.RecordsRemoved)
	return true
}
