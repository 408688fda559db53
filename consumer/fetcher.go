package consumer

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchResult is a Fetch response (or failure) for one broker, with the
// partition states and offsets it was asked for.
type fetchResult struct {
	broker int32
	asked  map[kafkit.TopicPartition]fetchAsk
	ids    topicIDMap
	resp   *kmsg.FetchResponse
	err    error
}

type fetchAsk struct {
	ps     *partState
	offset int64
}

// fetchLoop is the fetcher goroutine. It resolves missing positions, keeps one
// Fetch in flight per broker for the partitions that broker leads whose
// buffers Poll has drained, and turns responses into buffered records. It
// owns inflight; partition states are shared with Poll under c.mu.
func (c *Consumer) fetchLoop() {
	results := make(chan fetchResult, 8)
	inflight := make(map[int32]bool)
	var retryAt time.Time // no position lookups or fetch planning before this, after a failure
	for {
		var wait time.Duration = time.Hour
		if time.Now().After(retryAt) {
			var err error
			if wait, err = c.fetchRound(inflight, results); err != nil {
				if c.ctx.Err() != nil {
					return
				}
				c.log.Debug("fetch round", "err", err)
				retryAt = time.Now().Add(c.cfg.RetryBackoff)
				wait = c.cfg.RetryBackoff
			}
		} else {
			wait = time.Until(retryAt)
		}
		select {
		case <-c.ctx.Done():
			return
		case r := <-results:
			delete(inflight, r.broker)
			c.handleFetch(r)
		case <-c.fetchWake:
		case <-timerC(wait):
		}
	}
}

// fetchRound resolves positions and sends the fetches that can be sent. It
// returns how long until a partition backing off becomes fetchable.
func (c *Consumer) fetchRound(inflight map[int32]bool, results chan<- fetchResult) (time.Duration, error) {
	now := time.Now()
	wait := time.Hour
	var needPos, ready []kafkit.TopicPartition
	c.mu.Lock()
	for tp, ps := range c.parts {
		switch {
		case ps.err != nil, ps.paused, ps.inflight, ps.buffered(), ps.needPosition && !ps.polled:
		case now.Before(ps.retryAt):
			wait = min(wait, ps.retryAt.Sub(now))
		case ps.needPosition:
			needPos = append(needPos, tp)
		default:
			ready = append(ready, tp)
		}
	}
	c.mu.Unlock()
	if len(needPos) > 0 {
		// Resolved partitions are fetched in the next round; a failure
		// holds back only the partitions that need a position.
		if err := c.resolvePositions(c.ctx, needPos); err != nil && c.ctx.Err() == nil {
			if client.IsRetriable(err) {
				c.log.Debug("resolving positions", "err", err)
				c.backOff(needPos, now.Add(c.cfg.RetryBackoff))
				wait = min(wait, c.cfg.RetryBackoff)
			} else {
				c.failPartitions(needPos, err)
			}
		} else {
			wait = 0
		}
	}
	if len(ready) == 0 {
		return wait, nil
	}
	slices.SortFunc(ready, compareTP)
	byLeader, failed, err := c.leaders(c.ctx, ready)
	if err != nil {
		return 0, err
	}
	if len(failed) > 0 {
		for tp, ferr := range failed {
			c.log.Debug("no leader to fetch from", "topic", tp.Topic, "partition", tp.Partition, "err", ferr)
		}
		c.backOff(slices.Collect(maps.Keys(failed)), now.Add(c.cfg.RetryBackoff))
		wait = min(wait, c.cfg.RetryBackoff)
	}
	ids, err := c.topicIDs(c.ctx, topicsOf(ready))
	if err != nil {
		return 0, err
	}
	for leader, tps := range byLeader {
		if inflight[leader] {
			continue
		}
		req, asked := c.buildFetch(tps, ids)
		if len(asked) == 0 {
			continue
		}
		inflight[leader] = true
		c.cl.RequestBrokerAsync(c.ctx, leader, req, func(resp kmsg.Response, err error) {
			r := fetchResult{broker: leader, asked: asked, ids: ids, err: err}
			if err == nil {
				r.resp = resp.(*kmsg.FetchResponse)
			}
			select { // never block the connection's reader
			case results <- r:
			case <-c.ctx.Done():
			}
		})
	}
	return wait, nil
}

// backOff holds partitions back from position lookups and fetches until at.
func (c *Consumer) backOff(tps []kafkit.TopicPartition, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if ps, ok := c.parts[tp]; ok {
			ps.retryAt = at
		}
	}
}

// failPartitions hands err to Poll for partitions that cannot make progress
// until the application acts (Seek, or fixing ACLs and reassigning).
func (c *Consumer) failPartitions(tps []kafkit.TopicPartition, err error) {
	c.mu.Lock()
	for _, tp := range tps {
		if ps, ok := c.parts[tp]; ok && ps.err == nil {
			ps.err = fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, err)
		}
	}
	c.mu.Unlock()
	signal(c.wake)
}

// buildFetch builds one broker's Fetch (no fetch session: every request is a
// full fetch) and marks its partitions in flight.
func (c *Consumer) buildFetch(tps []kafkit.TopicPartition, ids topicIDMap) (*kmsg.FetchRequest, map[kafkit.TopicPartition]fetchAsk) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(c.cfg.FetchMaxWait.Milliseconds())
	req.MinBytes = c.cfg.FetchMinBytes
	req.MaxBytes = c.cfg.FetchMaxBytes
	req.IsolationLevel = c.isolationLevel()
	req.SessionID, req.SessionEpoch = 0, -1
	asked := make(map[kafkit.TopicPartition]fetchAsk, len(tps))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		ps, ok := c.parts[tp]
		if !ok || ps.needPosition || ps.inflight || ps.paused || ps.buffered() || ps.err != nil {
			continue // changed since the round started
		}
		ps.inflight = true
		asked[tp] = fetchAsk{ps, ps.fetchOffset}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = tp.Topic, ids.byName[tp.Topic]
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = tp.Partition
		p.FetchOffset = ps.fetchOffset
		p.CurrentLeaderEpoch = -1
		p.LastFetchedEpoch = -1
		p.LogStartOffset = -1
		p.PartitionMaxBytes = c.cfg.MaxPartitionFetchBytes
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, p)
	}
	return req, asked
}

// handleFetch applies one Fetch result to the partitions it asked for. Batches
// are scanned before taking c.mu, so that Poll is not held up meanwhile.
func (c *Consumer) handleFetch(r fetchResult) {
	now := time.Now()
	err := r.err
	if err == nil {
		err = kerr.ErrorForCode(r.resp.ErrorCode)
	}
	if err != nil {
		c.log.Debug("fetch failed", "broker", r.broker, "err", err)
		c.mu.Lock()
		for tp, a := range r.asked {
			a.ps.inflight = false
			a.ps.retryAt = now.Add(c.cfg.RetryBackoff)
			c.cl.InvalidateMetadata(tp.Topic)
		}
		c.mu.Unlock()
		return
	}

	type scanned struct {
		tp      kafkit.TopicPartition
		p       *kmsg.FetchResponseTopicPartition
		batches []rawBatch
		next    int64
		err     error
	}
	var parts []scanned
	for _, t := range r.resp.Topics {
		name := t.Topic
		if r.resp.GetVersion() >= 13 {
			name = r.ids.byID[t.TopicID]
		}
		for i := range t.Partitions {
			d := scanned{tp: kafkit.TopicPartition{Topic: name, Partition: t.Partitions[i].Partition}, p: &t.Partitions[i]}
			a, ok := r.asked[d.tp]
			if !ok {
				continue
			}
			if d.p.ErrorCode == 0 {
				d.batches, d.next, d.err = c.scan(a.offset, d.p)
			}
			parts = append(parts, d)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// Partitions the response does not mention are simply fetchable again.
	for _, a := range r.asked {
		a.ps.inflight = false
	}
	got := false
	for _, d := range parts {
		a := r.asked[d.tp]
		if c.parts[d.tp] != a.ps || a.ps.needPosition || a.ps.fetchOffset != a.offset {
			continue // revoked, reassigned or sought while in flight
		}
		if c.applyPartition(d.tp, a.ps, a.offset, d.p, d.batches, d.next, d.err, now) {
			got = true
		}
	}
	if got {
		signal(c.wake)
	}
}

// applyPartition handles one partition of a Fetch response (its error code,
// or its record batches) and reports whether batches were buffered. Called
// with c.mu held.
func (c *Consumer) applyPartition(tp kafkit.TopicPartition, ps *partState, offset int64, p *kmsg.FetchResponseTopicPartition, batches []rawBatch, next int64, scanErr error, now time.Time) bool {
	err := kerr.ErrorForCode(p.ErrorCode)
	switch {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		if c.cfg.AutoOffsetReset == OffsetResetNone {
			ps.err = fmt.Errorf("%w: %s[%d] offset %d is out of range [%d, %d)", ErrNoOffset, tp.Topic, tp.Partition, offset, p.LogStartOffset, p.HighWatermark)
			signal(c.wake)
		} else {
			c.log.Info("offset out of range; resetting", "topic", tp.Topic, "partition", tp.Partition, "offset", offset, "auto_offset_reset", c.cfg.AutoOffsetReset)
			ps.needPosition, ps.resetting = true, true
			ps.dropBuffered()
		}
		return false
	case client.IsRetriable(err), errors.Is(err, kerr.UnknownTopicID):
		// NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH,
		// UNKNOWN_TOPIC_OR_PARTITION ...: the leader moved or metadata
		// is stale.
		c.cl.InvalidateMetadata(tp.Topic)
		ps.retryAt = now.Add(c.cfg.RetryBackoff)
		return false
	default:
		ps.err = fmt.Errorf("fetch %s[%d]: %w", tp.Topic, tp.Partition, err)
		signal(c.wake)
		return false
	}
	ps.highWater, ps.lastStable = p.HighWatermark, p.LastStableOffset
	if scanErr != nil {
		ps.err = fmt.Errorf("fetch %s[%d] at offset %d: %w", tp.Topic, tp.Partition, offset, scanErr)
		signal(c.wake)
		return false
	}
	ps.fetchOffset = next
	if len(batches) == 0 {
		ps.position = next // only markers or aborted data: nothing to return in between
		return false
	}
	ps.pending = batches
	c.decodeAheadLocked(tp, ps)
	return true
}

// scan walks a partition's record batches, checking their CRCs and reading
// only their headers, and returns the batches holding records for Poll to
// decode as it needs them: control batches and, under read_committed,
// batches of aborted transactions are dropped here. It returns the next
// offset to fetch.
func (c *Consumer) scan(offset int64, p *kmsg.FetchResponseTopicPartition) ([]rawBatch, int64, error) {
	readCommitted := c.cfg.IsolationLevel == ReadCommitted
	aborted := slices.Clone(p.AbortedTransactions)
	slices.SortFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return int(a.FirstOffset - b.FirstOffset)
	})
	abortedPIDs := make(map[int64]bool)

	rd := recordbatch.NewReader(p.RecordBatches, recordbatch.ReadOptions{VerifyCRC: !c.cfg.SkipCRCCheck, SkipRecords: true})
	var (
		b       recordbatch.Batch
		batches []rawBatch
		next    = offset
	)
	for rd.Next(&b) {
		last := b.NextOffset() - 1
		if readCommitted {
			for len(aborted) > 0 && aborted[0].FirstOffset <= last {
				abortedPIDs[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
		}
		next = max(next, b.NextOffset())
		switch {
		case b.Attributes.Control():
			// A transaction marker ends that producer's aborted range.
			delete(abortedPIDs, b.ProducerID)
		case readCommitted && b.Attributes.Transactional() && abortedPIDs[b.ProducerID]:
		case last >= offset && b.NumRecords > 0:
			batches = append(batches, rawBatch{b.Raw, b.NumRecords})
		}
	}
	if err := rd.Err(); err != nil {
		return nil, offset, err
	}
	return batches, next, nil
}
