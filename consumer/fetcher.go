package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchResult is a Fetch response (or failure) from one broker's fetch
// connection, with the partition states and offsets it was asked for.
type fetchResult struct {
	broker int32
	conn   int
	asked  map[kafkit.TopicPartition]fetchAsk // every partition the Fetch covers (its session's)
	ids    topicIDMap
	resp   *kmsg.FetchResponse
	parts  []scannedPart // resp's partitions that were asked for, scanned
	err    error
}

// scannedPart is one partition of a Fetch response with what scan found in
// it.
type scannedPart struct {
	tp kafkit.TopicPartition
	p  *kmsg.FetchResponseTopicPartition
	scanned
}

type fetchAsk struct {
	ps     *partState
	offset int64
}

// The fetch pipeline. A partition is fetchable while fewer than
// max.partition.fetch.bytes of its fetched batches wait for Poll to start
// on them, so the next response is already under way while the
// application works on the current one; nothing is fetched while the
// consumer holds fetch.max.bytes altogether, which bounds the buffer.
// Every fetchable partition not in a fetch already goes into the next
// Fetch to its leader, sent at once with fetch.min.bytes (default 1), so
// the broker answers as soon as any of them has data; partitions with
// records waiting are spread over the leader's free fetch connections, so
// that one Fetch's response is read while another's is on its way
// (shareOut). A broker gets up to
// client.FetchConns fetches, each on its own connection and for different
// partitions: Kafka answers a connection's requests in order, so a Fetch
// of idle partitions that the broker holds for fetch.max.wait.ms must not
// delay a partition that becomes fetchable meanwhile. (With a single Fetch
// in flight per broker covering only drained partitions, a record landing
// on a partition left out of it waited for that Fetch to expire: half of
// fetch.max.wait.ms at the median.) For the same reason a Fetch that the
// broker may hold takes a broker's last free connection only when every
// partition of that broker is in a Fetch (keepConnFree).
// Each fetch connection carries its own fetch session (fetch_session.go).

// fetchConn is one of a broker's fetch connections: whether a Fetch is in
// flight on it, and its fetch session.
type fetchConn struct {
	busy    bool
	session fetchSession
}

// brokerConns are a broker's fetch connections.
type brokerConns = [client.FetchConns]fetchConn

// fetcher is what the fetcher goroutine keeps from one round to the next.
type fetcher struct {
	conns   map[int32]*brokerConns
	results chan fetchResult
	ready   []kafkit.TopicPartition        // a round's fetchable partitions
	behind  map[kafkit.TopicPartition]bool // those of them with records known to wait on the broker
	caught  map[kafkit.TopicPartition]bool // those of them known to be caught up
	leftOut []kafkit.TopicPartition        // a round's partitions in no Fetch that are not ready but soon will be (keepConnFree)
	md      *client.Metadata               // the metadata snapshot ids was made from
	ids     topicIDMap
	spare   []map[kafkit.TopicPartition]fetchAsk // asked maps of handled Fetches, for the next ones
	want    []wantPart                           // buildFetch's scratch
}

// askedMap returns an empty asked map for a Fetch, a handled Fetch's if
// there is one: the fetcher sends a Fetch per response.
func (f *fetcher) askedMap(n int) map[kafkit.TopicPartition]fetchAsk {
	if k := len(f.spare); k > 0 {
		m := f.spare[k-1]
		f.spare = f.spare[:k-1]
		return m
	}
	return make(map[kafkit.TopicPartition]fetchAsk, n)
}

// recycle takes back an asked map nothing refers to any more.
func (f *fetcher) recycle(m map[kafkit.TopicPartition]fetchAsk) {
	if len(f.spare) < client.FetchConns {
		clear(m)
		f.spare = append(f.spare, m)
	}
}

// fetchLoop is the fetcher goroutine. It starts position lookups, keeps the
// fetch pipeline full and turns responses into buffered records. It owns
// its fetcher; partition states are shared with Poll under c.mu.
func (c *Consumer) fetchLoop() {
	f := &fetcher{conns: make(map[int32]*brokerConns), results: make(chan fetchResult, 8),
		behind: make(map[kafkit.TopicPartition]bool), caught: make(map[kafkit.TopicPartition]bool)}
	// One timer for every round: a consumer reading as records arrive
	// goes round once per Fetch.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(c.fetchRound(f))
		select {
		case <-c.ctx.Done():
			c.lastConns = f.conns // for Close, which waits for this goroutine
			return
		case r := <-f.results:
			fc := &f.conns[r.broker][r.conn]
			fc.busy = false
			fc.session.handle(r.resp, r.err)
			got := c.handleFetch(r)
			f.recycle(r.asked) // the response, scanned and handled, is done with it
			if got {
				// Records for Poll: let the goroutine waiting in Poll
				// run on this core now. Readied by handleFetch, it
				// would wait for the next Fetch to be built and
				// handed to its connection's writer, which takes its
				// place as the next goroutine to run (a median 20 µs
				// between a record's arrival and Poll's return at
				// 10,000 records/s); the fetcher goes on on the other
				// core meanwhile, or right after.
				runtime.Gosched()
			}
		case <-c.fetchWake:
		case <-timer.C:
		}
	}
}

// fetchRound starts the position lookups and sends the fetches that can
// start now. It returns how long until a partition backing off is due.
func (c *Consumer) fetchRound(f *fetcher) time.Duration {
	now := time.Now()
	wait := time.Hour
	ready, leftOut := f.ready[:0], f.leftOut[:0]
	clear(f.behind)
	clear(f.caught)
	var resolve, validate map[kafkit.TopicPartition]*partState
	c.mu.Lock()
	held := 0
	for _, ps := range c.parts {
		held += ps.bufBytes
	}
	for tp, ps := range c.parts {
		end := ps.highWater
		if c.cfg.IsolationLevel == ReadCommitted {
			end = ps.lastStable
		}
		switch {
		case ps.err != nil, ps.paused, ps.inflight, ps.needPosition && !ps.polled:
		case ps.lookup:
			leftOut = append(leftOut, tp)
		case now.Before(ps.retryAt):
			wait = min(wait, ps.retryAt.Sub(now))
		case ps.needPosition:
			ps.lookup = true
			resolve = addState(resolve, tp, ps)
			leftOut = append(leftOut, tp)
		case ps.validate:
			ps.lookup = true
			validate = addState(validate, tp, ps)
			leftOut = append(leftOut, tp)
		case c.fetchable(ps, held):
			ready = append(ready, tp)
			switch {
			case end < 0: // not fetched yet
			case ps.fetchOffset < end:
				f.behind[tp] = true
			default:
				f.caught[tp] = true
			}
		default: // its buffer is full: fetchable once Poll drains it
			leftOut = append(leftOut, tp)
		}
	}
	c.mu.Unlock()
	f.ready, f.leftOut = ready, leftOut
	if len(resolve) > 0 {
		c.wg.Go(func() { c.lookUp(resolve, c.resolvePositions) })
	}
	if len(validate) > 0 {
		c.wg.Go(func() { c.lookUp(validate, c.validatePositions) })
	}
	if len(ready) == 0 {
		return wait
	}
	r, err := c.leaders(c.ctx, ready)
	if err == nil {
		if r.md != f.md { // the client hands out the same snapshot while nothing changed
			f.md, f.ids = r.md, idsOf(r.md)
		}
		c.sendFetches(f, r, leadersOf(r.md, leftOut))
	} else {
		if c.ctx.Err() == nil {
			c.log.Debug("fetch round", "err", err)
		}
		return min(wait, c.cfg.RetryBackoff)
	}
	if len(r.failed) > 0 {
		c.mu.Lock()
		for tp, ferr := range r.failed {
			c.log.Debug("no leader to fetch from", "topic", tp.Topic, "partition", tp.Partition, "err", ferr)
			if ps, ok := c.parts[tp]; ok {
				ps.backOff(c.cfg, now)
			}
		}
		c.mu.Unlock()
		wait = min(wait, c.cfg.RetryBackoff)
	}
	return wait
}

// fetchable reports whether ps, when nothing else keeps it out of a Fetch,
// may be fetched, the consumer holding held bytes of undecoded batches
// altogether. Called with c.mu held.
func (c *Consumer) fetchable(ps *partState, held int) bool {
	return ps.bufBytes < int(c.cfg.MaxPartitionFetchBytes) && held < int(c.cfg.FetchMaxBytes)
}

func addState(m map[kafkit.TopicPartition]*partState, tp kafkit.TopicPartition, ps *partState) map[kafkit.TopicPartition]*partState {
	if m == nil {
		m = make(map[kafkit.TopicPartition]*partState)
	}
	m[tp] = ps
	return m
}

// leadersOf returns the leaders of tps in md.
func leadersOf(md *client.Metadata, tps []kafkit.TopicPartition) map[int32]bool {
	var leaders map[int32]bool
	for _, tp := range tps {
		if ps := md.Topics[tp.Topic].Partitions; int(tp.Partition) < len(ps) && ps[tp.Partition].Leader >= 0 {
			if leaders == nil {
				leaders = make(map[int32]bool)
			}
			leaders[ps[tp.Partition].Leader] = true
		}
	}
	return leaders
}

// keepConnFree reports whether a Fetch of tps must wait rather than take a
// broker's last free fetch connection (free of them are): when none of tps
// has records known to wait on the broker (behind), so that the broker may
// hold the Fetch for fetch.max.wait.ms, and other partitions of that broker
// are in no Fetch but soon fetchable (leftOut: a full buffer that Poll is
// to drain, a position being looked up). With every connection held, such
// a partition would wait out a hold once fetchable, its records with it,
// where kgo's single Fetch covering every partition is answered at once
// (partitions reaching the end of their logs one by one, each in a Fetch
// of its own, hold both connections that way). The waiting partitions go
// in the next Fetch instead: with the left-out ones once they are
// fetchable, or with one that is behind.
func keepConnFree(free int, leftOut bool, tps []kafkit.TopicPartition, behind map[kafkit.TopicPartition]bool) bool {
	if free > 1 || !leftOut {
		return false
	}
	for _, tp := range tps {
		if behind[tp] {
			return false
		}
	}
	return true
}

// sendFetches sends each leader its ready partitions on its fetch
// connections without a Fetch in flight, spread over them (shareOut), unless
// keepConnFree says to wait; leftOut are the leaders with partitions in no
// Fetch that will soon be fetchable.
func (c *Consumer) sendFetches(f *fetcher, r routes, leftOut map[int32]bool) {
	for leader, tps := range r.byLeader {
		bc := f.conns[leader]
		if bc == nil {
			bc = new(brokerConns)
			f.conns[leader] = bc
		}
		var free []int
		for i := range bc {
			if !bc[i].busy {
				free = append(free, i)
			}
		}
		if len(free) == 0 || keepConnFree(len(free), leftOut[leader], tps, f.behind) {
			continue
		}
		// Without partitions left out, the ones not known to be caught
		// up are spread too (a backlog's first Fetches, before its log
		// ends are known); with some, only the ones behind, so that no
		// second Fetch the broker may hold takes the last connection.
		spread := func(tp kafkit.TopicPartition) bool { return !f.caught[tp] }
		if leftOut[leader] {
			spread = func(tp kafkit.TopicPartition) bool { return f.behind[tp] }
		}
		for conn, part := range shareOut(bc, free, tps, spread) {
			if len(part) == 0 {
				continue
			}
			req, asked := c.buildFetch(f, r, part, &bc[conn].session)
			if len(asked) == 0 {
				f.recycle(asked)
				continue
			}
			bc[conn].busy = true
			c.sendFetch(leader, conn, req, asked, f.ids, f.results)
		}
	}
}

// shareOut divides a broker's ready partitions (tps) among its free fetch
// connections (free), returning each connection's share. With two or more
// of them to spread (behind, as sendFetches decides), those are spread
// evenly over as many free connections as there are of them, each
// partition staying on the connection whose session holds it where the
// counts allow (so that the sessions change little), and each of the
// others goes with its session's connection, or else the first. Otherwise
// all go in one Fetch, on the connection whose session holds most of them.
//
// A single Fetch covering every partition made the read a chain of one
// Fetch at a time: all partitions came back in one response, became
// fetchable together and went out again in one Fetch, on the same
// connection, while the other stayed unused; the network and the broker
// were idle while the response was handed over and the next Fetch went out
// (a consumer reading a backlog polled faster than that chain delivered).
// Two Fetches each covering half of the partitions overlap those gaps, as
// the broker answers each connection on its own. Caught-up partitions are
// not spread: a Fetch of them only may be held for fetch.max.wait.ms, and
// two such would leave no connection free (keepConnFree).
func shareOut(bc *brokerConns, free []int, tps []kafkit.TopicPartition, behind func(kafkit.TopicPartition) bool) [client.FetchConns][]kafkit.TopicPartition {
	var out [client.FetchConns][]kafkit.TopicPartition
	nbehind := 0
	for _, tp := range tps {
		if behind(tp) {
			nbehind++
		}
	}
	if len(free) < 2 || nbehind < 2 {
		conn, best := -1, -1
		for _, i := range free {
			if n := bc[i].session.overlap(tps); n > best {
				conn, best = i, n
			}
		}
		out[conn] = tps
		return out
	}
	free = free[:min(len(free), nbehind)]
	home := func(tp kafkit.TopicPartition) int {
		for _, i := range free {
			if bc[i].session.holds(tp) {
				return i
			}
		}
		return -1
	}
	// The partitions behind: their sessions' connections first, the rest
	// to the shortest share, then the longest share gives up its last
	// until the shares differ by one at most.
	shortest := func() (short, long int) {
		short, long = free[0], free[0]
		for _, i := range free {
			if len(out[i]) < len(out[short]) {
				short = i
			}
			if len(out[i]) > len(out[long]) {
				long = i
			}
		}
		return short, long
	}
	var homeless []kafkit.TopicPartition
	for _, tp := range tps {
		if !behind(tp) {
			continue
		}
		if i := home(tp); i >= 0 {
			out[i] = append(out[i], tp)
		} else {
			homeless = append(homeless, tp)
		}
	}
	for _, tp := range homeless {
		short, _ := shortest()
		out[short] = append(out[short], tp)
	}
	for {
		short, long := shortest()
		if len(out[long])-len(out[short]) <= 1 {
			break
		}
		last := len(out[long]) - 1
		out[short] = append(out[short], out[long][last])
		out[long] = out[long][:last]
	}
	for _, tp := range tps {
		if !behind(tp) {
			i := home(tp)
			if i < 0 {
				i = free[0]
			}
			out[i] = append(out[i], tp)
		}
	}
	return out
}

// sendFetch sends req, asking for asked, on the leader's fetch connection
// conn; the result goes to results.
func (c *Consumer) sendFetch(leader int32, conn int, req *kmsg.FetchRequest, asked map[kafkit.TopicPartition]fetchAsk, ids topicIDMap, results chan<- fetchResult) {
	c.cl.RequestFetchAsync(c.ctx, leader, conn, req, func(resp kmsg.Response, err error) {
		res := fetchResult{broker: leader, conn: conn, asked: asked, ids: ids, err: err}
		if err == nil {
			res.resp = resp.(*kmsg.FetchResponse)
			// Here, on the connection's reader, rather than on the
			// fetcher: the connections' responses are checked in
			// parallel, and the fetcher sends the next Fetch
			// meanwhile.
			res.parts = c.scanResponse(res)
		}
		// Never block the connection's reader, nor the fetcher itself
		// when the request fails before it is queued.
		select {
		case results <- res:
		default: // short-lived: ends with the send or Close (not in c.wg, which Close may be waiting on)
			go func() {
				select {
				case results <- res:
				case <-c.ctx.Done():
				}
			}()
		}
	})
}

// buildFetch builds one broker's Fetch on session and marks its partitions
// in flight. Each partition carries the leader epoch from the metadata and
// the epoch of the last batch fetched (KIP-320), so that a fenced leader
// refuses it and a diverged log answers with where it diverges. A partition
// whose leader epoch moved on since its last fetch is validated first, as
// Java's consumer does after a leader change.
func (c *Consumer) buildFetch(f *fetcher, r routes, tps []kafkit.TopicPartition, session *fetchSession) (*kmsg.FetchRequest, map[kafkit.TopicPartition]fetchAsk) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(c.cfg.FetchMaxWait.Milliseconds())
	req.MinBytes = c.cfg.FetchMinBytes
	req.MaxBytes = c.cfg.FetchMaxBytes
	req.IsolationLevel = c.isolationLevel()
	asked := f.askedMap(len(tps))
	want := f.want[:0] // fill keeps none of it
	c.mu.Lock()
	defer func() {
		c.mu.Unlock()
		if len(asked) > 0 {
			session.fill(req, want)
		}
		f.want = want[:0]
	}()
	revalidate := false
	for _, tp := range tps {
		ps, ok := c.parts[tp]
		if !ok || ps.needPosition || ps.validate || ps.lookup || ps.inflight || ps.paused || ps.err != nil {
			continue // changed since the round started
		}
		epoch := r.epoch(tp)
		if ps.leaderEpoch >= 0 && epoch > ps.leaderEpoch && ps.epoch >= 0 {
			ps.leaderEpoch, ps.validate = epoch, true
			ps.rewind()
			revalidate = true
			continue
		}
		ps.leaderEpoch = epoch
		ps.inflight = true
		asked[tp] = fetchAsk{ps, ps.fetchOffset}
		want = append(want, wantPart{tp, sessionPart{topicID: f.ids.byName[tp.Topic], fetchOffset: ps.fetchOffset,
			leaderEpoch: epoch, lastFetchedEpoch: ps.fetchEpoch, maxBytes: c.cfg.MaxPartitionFetchBytes}})
	}
	if revalidate {
		signal(c.fetchWake)
	}
	return req, asked
}

// scanResponse scans the partitions of r's response that r asked for
// (unless the whole response failed); it takes no lock.
func (c *Consumer) scanResponse(r fetchResult) []scannedPart {
	if r.resp.ErrorCode != 0 {
		return nil
	}
	var parts []scannedPart
	for _, t := range r.resp.Topics {
		name := t.Topic
		if r.resp.GetVersion() >= 13 {
			name = r.ids.byID[t.TopicID]
		}
		for i := range t.Partitions {
			d := scannedPart{tp: kafkit.TopicPartition{Topic: name, Partition: t.Partitions[i].Partition}, p: &t.Partitions[i]}
			a, ok := r.asked[d.tp]
			if !ok {
				continue
			}
			if d.p.ErrorCode == 0 {
				d.scanned = c.scan(a.offset, d.p)
			}
			parts = append(parts, d)
		}
	}
	return parts
}

// handleFetch applies one Fetch result, scanned already, to the partitions
// it asked for, and reports whether it buffered records for Poll.
func (c *Consumer) handleFetch(r fetchResult) bool {
	now := time.Now()
	err := r.err
	if err == nil {
		err = kerr.ErrorForCode(r.resp.ErrorCode)
	}
	if err != nil {
		c.log.Debug("fetch failed", "broker", r.broker, "err", err)
		session := isSessionError(err) // the next Fetch, a full one, fixes it
		c.mu.Lock()
		for tp, a := range r.asked {
			a.ps.inflight = false
			if !session {
				a.ps.backOff(c.cfg, now)
				c.cl.InvalidateMetadata(tp.Topic)
			}
		}
		c.mu.Unlock()
		return false
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// Partitions the response does not mention are simply fetchable again.
	for _, a := range r.asked {
		a.ps.inflight = false
	}
	got := false
	for _, d := range r.parts {
		a := r.asked[d.tp]
		if c.parts[d.tp] != a.ps || a.ps.needPosition || a.ps.validate || a.ps.fetchOffset != a.offset {
			continue // revoked, reassigned or sought while in flight
		}
		if c.applyPartition(d.tp, a.ps, a.offset, d.p, d.scanned, now) {
			got = true
		}
	}
	if got {
		signal(c.wake)
	}
	return got
}

// applyPartition handles one partition of a Fetch response (its error code,
// where its log diverges, or its record batches) and reports whether batches
// were buffered. Called with c.mu held.
func (c *Consumer) applyPartition(tp kafkit.TopicPartition, ps *partState, offset int64, p *kmsg.FetchResponseTopicPartition, sc scanned, now time.Time) bool {
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
	case errors.Is(err, kerr.FencedLeaderEpoch):
		// Our leader epoch is older than the broker's: a new leader
		// was elected, whose log may have lost what we fetched. Learn
		// the new leader and validate the position with it.
		c.cl.InvalidateMetadata(tp.Topic)
		if ps.epoch >= 0 {
			ps.validate = true
			ps.rewind()
		}
		ps.backOff(c.cfg, now)
		return false
	case client.IsRetriable(err), errors.Is(err, kerr.UnknownTopicID):
		// NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH,
		// UNKNOWN_TOPIC_OR_PARTITION ...: the leader moved or metadata
		// is stale.
		c.cl.InvalidateMetadata(tp.Topic)
		ps.backOff(c.cfg, now)
		return false
	default:
		ps.err = fmt.Errorf("fetch %s[%d]: %w", tp.Topic, tp.Partition, err)
		signal(c.wake)
		return false
	}
	ps.bo = nil
	ps.highWater, ps.lastStable = p.HighWatermark, p.LastStableOffset
	if d := p.DivergingEpoch; d.EndOffset >= 0 && d.Epoch >= 0 {
		// KIP-320: the leader's log diverges from ours before the
		// fetch offset. What Poll has returned is checked against
		// where it diverges; the rest is fetched again.
		ps.rewind()
		c.truncatedLocked(tp, ps, ps.position, offsetEpoch{d.EndOffset, d.Epoch})
		return false
	}
	if sc.err != nil {
		ps.err = fmt.Errorf("fetch %s[%d] at offset %d: %w", tp.Topic, tp.Partition, offset, sc.err)
		signal(c.wake)
		return false
	}
	ps.fetchOffset = sc.next
	if sc.epoch >= 0 {
		ps.fetchEpoch = sc.epoch
	}
	if len(sc.batches) == 0 {
		if !ps.buffered() {
			ps.position = sc.next // only markers or aborted data: nothing to return in between
		}
		return false
	}
	ps.pending = append(ps.pending, sc.batches...)
	ps.bufBytes += sc.bytes
	c.decodeAheadLocked(tp, ps)
	return true
}

// scanned is what scan found in one partition of a Fetch response.
type scanned struct {
	batches []rawBatch // holding records for Poll
	bytes   int        // their size
	next    int64      // the next offset to fetch
	epoch   int32      // leader epoch of the last batch; -1 without batches
	err     error
}

// scan walks a partition's record batches, checking their CRCs and reading
// only their headers, and returns the batches holding records for Poll to
// decode as it needs them: control batches and, under read_committed,
// batches of aborted transactions are dropped here.
func (c *Consumer) scan(offset int64, p *kmsg.FetchResponseTopicPartition) scanned {
	readCommitted := c.cfg.IsolationLevel == ReadCommitted
	var aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
	var abortedPIDs map[int64]bool
	if readCommitted {
		aborted = slices.Clone(p.AbortedTransactions)
		slices.SortFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
			return int(a.FirstOffset - b.FirstOffset)
		})
		abortedPIDs = make(map[int64]bool)
	}

	rd := recordbatch.NewReader(p.RecordBatches, recordbatch.ReadOptions{VerifyCRC: !c.cfg.SkipCRCCheck, SkipRecords: true})
	var b recordbatch.Batch
	sc := scanned{next: offset, epoch: -1}
	for rd.Next(&b) {
		last := b.NextOffset() - 1
		if readCommitted {
			for len(aborted) > 0 && aborted[0].FirstOffset <= last {
				abortedPIDs[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
		}
		sc.next = max(sc.next, b.NextOffset())
		sc.epoch = b.PartitionLeaderEpoch
		switch {
		case b.Attributes.Control():
			// A transaction marker ends that producer's aborted range.
			delete(abortedPIDs, b.ProducerID)
		case readCommitted && b.Attributes.Transactional() && abortedPIDs[b.ProducerID]:
		case last >= offset && b.NumRecords > 0:
			sc.batches = append(sc.batches, rawBatch{b.Raw, b.NumRecords})
			sc.bytes += len(b.Raw)
		}
	}
	if err := rd.Err(); err != nil {
		return scanned{next: offset, epoch: -1, err: err}
	}
	return sc
}

// closeFetchSessionsTimeout caps how long Close waits for the brokers to
// close its fetch sessions, as kgo does (Java waits up to close's timeout):
// a broker that does not answer frees the session itself when it needs the
// slot.
const closeFetchSessionsTimeout = time.Second

// closeFetchSessions tells each broker holding a fetch session of the
// stopped fetcher to close it (a Fetch with the session's id and epoch -1
// naming no partition, as Java's Fetcher.maybeCloseFetchSessions), so that
// its slot in the broker's cache (max.incremental.fetch.session.cache.slots)
// is free at once rather than when evicted. A session's own connection may
// hold a long poll, which Kafka answers first, so a busy one's Fetch goes on
// the broker's default connection. It waits for the answers until ctx ends
// or closeFetchSessionsTimeout passes.
func (c *Consumer) closeFetchSessions(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, closeFetchSessionsTimeout)
	defer cancel()
	var pending []chan struct{}
	for leader, bc := range c.lastConns {
		for i := range bc {
			fc := &bc[i]
			if fc.session.id == 0 {
				continue
			}
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.SessionID, req.SessionEpoch = fc.session.id, -1
			req.MaxBytes, req.MinBytes = c.cfg.FetchMaxBytes, 1 // MaxWaitMillis 0: answered at once
			req.IsolationLevel = c.isolationLevel()
			conn := i
			if fc.busy {
				conn = client.DefaultConn
			}
			done := make(chan struct{})
			pending = append(pending, done)
			c.cl.RequestFetchAsync(ctx, leader, conn, req, func(kmsg.Response, error) { close(done) })
		}
	}
	for _, done := range pending {
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}
