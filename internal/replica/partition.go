package replica

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkit/kafkit/internal/storage"
)

// State is a partition's replication state as the metadata image has it.
type State struct {
	Leader                      int32
	LeaderEpoch, PartitionEpoch int32
	Replicas, ISR               []int32
}

func (s State) clone() State {
	s.Replicas, s.ISR = slices.Clone(s.Replicas), slices.Clone(s.ISR)
	return s
}

// follower is the leader's view of one follower (Kafka's ReplicaState).
type follower struct {
	leo                int64 // -1 until its first fetch in this leader epoch
	logStart           int64
	lastCaughtUp       time.Time
	lastFetch          time.Time
	lastFetchLeaderLEO int64
	brokerEpoch        int64 // from its last fetch; -1: it sent none (unknown), or sent none with an epoch
	fetched            bool  // brokerEpoch came from a fetch
}

// caughtUp is Kafka's ReplicaState.isCaughtUp.
func (f *follower) caughtUp(leaderLEO int64, now time.Time, lagMax time.Duration) bool {
	return f.leo == leaderLEO || now.Sub(f.lastCaughtUp) <= lagMax
}

// Partition is one partition's replication on this broker: as leader,
// its followers, high watermark and ISR; as follower, what its fetcher
// appends. See the package doc for its lock.
type Partition struct {
	Topic   string
	Index   int32
	TopicID [16]byte
	Log     *storage.Log

	m      *Manager
	notify func() // the high watermark moved: wake consumers' long polls

	mu      sync.Mutex
	applied bool // state came from the image
	removed bool
	state   State
	leader  bool // this broker leads at state.LeaderEpoch
	// leading mirrors leader for readers that take no lock (consumer
	// fetches ask it for every partition), set whenever mu is released
	// after leader changed.
	leading    atomic.Bool
	epochStart int64 // the log end offset when it became leader (Kafka's leaderEpochStartOffset)
	followers  map[int32]*follower
	// proposed is the ISR an AlterPartition in flight proposes (KIP-497's
	// pending state: the high watermark counts the union of it and the
	// committed ISR), nil when none; queued says it waits to be sent;
	// retryAt holds back the next proposal after one that failed.
	proposed []int32
	queued   bool
	retryAt  time.Time
	// acks are the acks=all writes waiting on this partition (AwaitAcks):
	// Kafka's produce purgatory, completed by whoever moves the high
	// watermark or changes the leadership or ISR, with no goroutine of
	// their own.
	acks map[*AckWaiter]struct{}
}

// AckWaiter is an acks=all write's wait on one partition (Kafka's
// DelayedProduce for it).
type AckWaiter struct {
	required int64
	done     func(error)
}

// AwaitAcks runs done once this broker's acks=all write ending before
// required is complete, with Kafka's checkEnoughReplicasReachOffset
// answer: nil once the high watermark reached required,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when by then the ISR had shrunk below
// min.insync.replicas, NOT_LEADER_OR_FOLLOWER as soon as this broker no
// longer leads. done runs at most once: at once when already complete
// (before AwaitAcks returns), else on the goroutine that moved the high
// watermark or changed the leadership or ISR, under the partition's lock,
// so it must neither block nor take a partition's lock. CancelAwait
// withdraws the wait.
func (p *Partition) AwaitAcks(required int64, done func(error)) *AckWaiter {
	w := &AckWaiter{required: required, done: done}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok, err := p.acksDoneLocked(required); ok {
		done(err)
		return w
	}
	if p.acks == nil {
		p.acks = map[*AckWaiter]struct{}{}
	}
	p.acks[w] = struct{}{}
	return w
}

// CancelAwait withdraws w (its request timed out or its connection went)
// and reports whether it was still waiting: then its done never runs.
func (p *Partition) CancelAwait(w *AckWaiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.acks[w]; !ok {
		return false
	}
	delete(p.acks, w)
	return true
}

// wakeLocked completes the acks=all waits the change under way allows;
// the caller holds mu.
func (p *Partition) wakeLocked() {
	for w := range p.acks {
		if ok, err := p.acksDoneLocked(w.required); ok {
			delete(p.acks, w)
			w.done(err)
		}
	}
}

// LeaderEpoch is the partition's current leader epoch (from the image).
func (p *Partition) LeaderEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.LeaderEpoch
}

// LeaderEpochStart is the log end offset at which this broker started
// leading at its current leader epoch (Kafka's leaderEpochStartOffsetOpt),
// false when it does not lead.
func (p *Partition) LeaderEpochStart() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epochStart, p.leader
}

// IsLeader reports whether this broker leads the partition, without
// waiting for its lock.
func (p *Partition) IsLeader() bool { return p.leading.Load() }

// effectiveMinISRLocked is Kafka's effectiveMinIsr: min.insync.replicas,
// at most the replication factor.
func (p *Partition) effectiveMinISRLocked() int {
	return max(1, min(p.m.cfg.MinISR(p.Topic), len(p.state.Replicas)))
}

// AppendAsLeader runs appendFn, the local append at the leader epoch it
// is given, if this broker leads the partition; with acks=-1 only when the
// ISR has at least min.insync.replicas members (else NOT_ENOUGH_REPLICAS,
// nothing appended). appendFn's error is returned as it is. The high
// watermark moves after the append when the ISR allows it.
func (p *Partition) AppendAsLeader(acks int16, appendFn func(leaderEpoch int32) error) error {
	p.mu.Lock()
	if !p.leader {
		p.mu.Unlock()
		return kerr.NotLeaderForPartition
	}
	if acks == -1 && len(p.state.ISR) < p.effectiveMinISRLocked() {
		p.mu.Unlock()
		return kerr.NotEnoughReplicas
	}
	if err := appendFn(p.state.LeaderEpoch); err != nil {
		p.mu.Unlock()
		return err
	}
	moved := p.maybeIncrementHWLocked(time.Now())
	p.mu.Unlock()
	if moved {
		p.notify()
	}
	return nil
}

// acksDoneLocked is Kafka's checkEnoughReplicasReachOffset for an acks=all
// write whose records end before required (see AwaitAcks).
func (p *Partition) acksDoneLocked(required int64) (bool, error) {
	if !p.leader || p.removed {
		return true, kerr.NotLeaderForPartition
	}
	if p.Log.HighWatermark() < required {
		return false, nil
	}
	if len(p.maximalISRLocked()) < p.effectiveMinISRLocked() {
		return true, kerr.NotEnoughReplicasAfterAppend
	}
	return true, nil
}

// maximalISRLocked is the committed ISR with the members an AlterPartition
// in flight adds (KIP-497): the high watermark waits for all of them.
func (p *Partition) maximalISRLocked() []int32 {
	if p.proposed == nil {
		return p.state.ISR
	}
	out := slices.Clone(p.state.ISR)
	for _, id := range p.proposed {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// maybeIncrementHWLocked is Kafka's maybeIncrementLeaderHW: the smallest
// log end offset over the maximal ISR and the followers caught up and
// eligible to join it, never backwards, not while the committed ISR is
// below min.insync.replicas. It reports whether the high watermark moved
// (and wakes the watchers if so).
func (p *Partition) maybeIncrementHWLocked(now time.Time) bool {
	if !p.leader || len(p.state.ISR) < p.effectiveMinISRLocked() {
		return false
	}
	leo := p.Log.EndOffset()
	hw := leo
	maximal := p.maximalISRLocked()
	for id, f := range p.followers {
		if f.leo >= hw {
			continue
		}
		if slices.Contains(maximal, id) || (f.caughtUp(leo, now, p.m.cfg.LagMax) && p.m.eligible(id, f)) {
			hw = f.leo
		}
	}
	if hw <= p.Log.HighWatermark() {
		return false
	}
	p.Log.SetHighWatermark(hw)
	p.wakeLocked()
	return true
}

// becomeLeaderLocked starts leading at p.state's epoch (Kafka's
// makeLeader): followers start unknown, those in the ISR counted as just
// caught up so that they are not dropped before their first fetch.
func (p *Partition) becomeLeaderLocked(now time.Time) {
	p.leader = true
	p.epochStart = p.Log.EndOffset()
	if err := p.Log.AssignLeaderEpoch(p.state.LeaderEpoch); err != nil {
		// Reads answer as if it were assigned (EndOffsetForEpochAsLeader);
		// the first append assigns it again.
		p.m.log.Warn("recording the leader epoch", "topic", p.Topic, "partition", p.Index, "err", err)
	}
	p.proposed, p.queued = nil, false
	p.followers = map[int32]*follower{}
	for _, id := range p.state.Replicas {
		if id == p.m.cfg.NodeID {
			continue
		}
		f := &follower{leo: -1, logStart: -1, lastFetchLeaderLEO: -1, brokerEpoch: -1}
		if slices.Contains(p.state.ISR, id) {
			f.lastCaughtUp = now
		}
		p.followers[id] = f
	}
}

// syncFollowersLocked keeps one follower entry per replica after a
// reassignment changed them at the same leader epoch.
func (p *Partition) syncFollowersLocked() {
	for id := range p.followers {
		if !slices.Contains(p.state.Replicas, id) {
			delete(p.followers, id)
		}
	}
	for _, id := range p.state.Replicas {
		if id != p.m.cfg.NodeID && p.followers[id] == nil {
			p.followers[id] = &follower{leo: -1, logStart: -1, lastFetchLeaderLEO: -1, brokerEpoch: -1}
		}
	}
}

// endOffsetForEpochLocked is Kafka's lastOffsetForLeaderEpoch on the
// leader: the log's epoch cache with the current epoch starting where this
// broker became leader (storage's EndOffsetForEpochAsLeader). (-1, -1) when
// epoch is unknown.
func (p *Partition) endOffsetForEpochLocked(epoch int32) (int32, int64) {
	return p.Log.EndOffsetForEpochAsLeader(p.state.LeaderEpoch, epoch)
}

// FollowerFetch is one partition of a follower's Fetch.
type FollowerFetch struct {
	Replica            int32
	BrokerEpoch        int64 // -1 before Fetch v15
	CurrentLeaderEpoch int32 // -1: not checked
	LastFetchedEpoch   int32 // -1: none
	FetchOffset        int64
	LogStartOffset     int64
}

// FetchResult is the leader's answer to one partition of a follower's
// Fetch.
type FetchResult struct {
	HighWatermark, LogStartOffset, LastStableOffset int64
	// Diverging is set (Epoch ≥ 0 or EndOffset ≥ 0) when the follower's
	// log diverged from the leader's (KIP-279): no records then.
	Diverging struct {
		Epoch     int32
		EndOffset int64
	}
}

// ReadForFollower serves one partition of a follower's Fetch (Kafka's
// Partition.fetchRecords from a follower): it checks the leader epoch and
// that the follower is a replica with a current broker epoch, answers the
// diverging epoch when the follower's last fetched epoch does not end
// where it fetches, has read put the records from the fetch offset up to
// the log end offset into the response (without the partition's lock: a
// copy or a file chunk), and records the follower's position, which may
// move the high watermark or add the follower to the ISR.
func (p *Partition) ReadForFollower(f FollowerFetch, read func() error) (FetchResult, error) {
	res := FetchResult{HighWatermark: -1, LogStartOffset: -1, LastStableOffset: -1}
	res.Diverging.Epoch, res.Diverging.EndOffset = -1, -1
	p.mu.Lock()
	epoch, err := p.checkFollowerLocked(f)
	if err != nil {
		p.mu.Unlock()
		return res, err
	}
	leo, start := p.Log.EndOffset(), p.Log.StartOffset()
	res.HighWatermark, res.LogStartOffset, res.LastStableOffset = p.Log.HighWatermark(), start, p.Log.LastStableOffset()
	if f.LastFetchedEpoch >= 0 {
		e, end := p.endOffsetForEpochLocked(f.LastFetchedEpoch)
		switch {
		case e < 0 || end < 0, f.FetchOffset < start:
			p.mu.Unlock()
			return res, kerr.OffsetOutOfRange
		case e < f.LastFetchedEpoch || end < f.FetchOffset:
			p.mu.Unlock()
			res.Diverging.Epoch, res.Diverging.EndOffset = e, end
			return res, nil
		}
	}
	p.mu.Unlock()

	if err := read(); err != nil {
		return res, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.leader || p.state.LeaderEpoch != epoch {
		return res, kerr.NotLeaderForPartition
	}
	p.updateFollowerLocked(f, leo, time.Now())
	res.HighWatermark, res.LastStableOffset = p.Log.HighWatermark(), p.Log.LastStableOffset()
	return res, nil
}

// checkFollowerLocked checks a follower's fetch as Kafka's leader does and
// returns the leader epoch it is served at.
func (p *Partition) checkFollowerLocked(f FollowerFetch) (int32, error) {
	cur := p.state.LeaderEpoch
	switch {
	case !p.leader || p.removed:
		return 0, kerr.NotLeaderForPartition
	case f.CurrentLeaderEpoch >= 0 && f.CurrentLeaderEpoch < cur:
		return 0, kerr.FencedLeaderEpoch
	case f.CurrentLeaderEpoch > cur:
		return 0, kerr.UnknownLeaderEpoch
	}
	if p.followers[f.Replica] == nil {
		// Not a replica in this epoch: with an epoch in the request the
		// follower retries on UNKNOWN_LEADER_EPOCH (its metadata may be
		// newer), without one on NOT_LEADER_OR_FOLLOWER.
		if f.CurrentLeaderEpoch >= 0 {
			return 0, kerr.UnknownLeaderEpoch
		}
		return 0, kerr.NotLeaderForPartition
	}
	if b, ok := p.m.broker(f.Replica); f.BrokerEpoch != -1 && ok && b.Epoch > f.BrokerEpoch {
		// A fetch from an older run of the follower (KIP-903).
		return 0, kerr.NotLeaderForPartition
	}
	return cur, nil
}

// updateFollowerLocked records a follower's fetch (Kafka's
// updateFetchStateOrThrow, then maybeExpandIsr and maybeIncrementLeaderHW).
func (p *Partition) updateFollowerLocked(ff FollowerFetch, leaderLEO int64, now time.Time) {
	f := p.followers[ff.Replica]
	switch {
	case ff.FetchOffset >= leaderLEO:
		f.lastCaughtUp = maxTime(f.lastCaughtUp, now)
	case ff.FetchOffset >= f.lastFetchLeaderLEO && !f.lastFetch.IsZero():
		f.lastCaughtUp = maxTime(f.lastCaughtUp, f.lastFetch)
	}
	moved := f.leo != ff.FetchOffset
	f.leo, f.logStart = ff.FetchOffset, ff.LogStartOffset
	f.lastFetchLeaderLEO = max(leaderLEO, f.lastFetchLeaderLEO)
	f.lastFetch = now
	f.brokerEpoch, f.fetched = ff.BrokerEpoch, true

	if p.proposed == nil && !slices.Contains(p.state.ISR, ff.Replica) && p.m.eligible(ff.Replica, f) &&
		f.leo >= p.Log.HighWatermark() && f.leo >= p.epochStart && !now.Before(p.retryAt) {
		p.proposeLocked(append(slices.Clone(p.state.ISR), ff.Replica))
	}
	if moved && p.maybeIncrementHWLocked(now) {
		p.notify()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maybeShrink proposes an ISR without the followers that have not caught
// up for replica.lag.time.max.ms (Kafka's maybeShrinkIsr).
func (p *Partition) maybeShrink(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.leader || p.removed || p.proposed != nil || now.Before(p.retryAt) {
		return
	}
	leo := p.Log.EndOffset()
	isr := slices.DeleteFunc(slices.Clone(p.state.ISR), func(id int32) bool {
		f := p.followers[id]
		return id != p.m.cfg.NodeID && f != nil && !f.caughtUp(leo, now, p.m.cfg.LagMax)
	})
	if len(isr) < len(p.state.ISR) {
		p.m.log.Info("shrinking the ISR", "topic", p.Topic, "partition", p.Index, "isr", p.state.ISR, "new_isr", isr, "leader_epoch", p.state.LeaderEpoch)
		p.proposeLocked(isr)
	}
}

// proposeLocked queues an AlterPartition for isr.
func (p *Partition) proposeLocked(isr []int32) {
	p.proposed = isr
	if !p.queued {
		p.queued = true
		p.m.queueAlter(p)
	}
}

// alterDone applies the controller's answer to this partition's proposal
// (Kafka's handleAlterPartitionUpdate/Error): a committed state newer than
// the applied one is taken at once (its metadata record follows); an
// answer that says the proposal was stale or refused drops it, to be
// proposed again from the state metadata brings.
func (p *Partition) alterDone(leaderEpoch, partitionEpoch int32, isr []int32, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proposed == nil {
		return
	}
	p.proposed = nil
	if err != nil {
		p.retryAt = time.Now().Add(p.m.cfg.FetchBackoff)
		p.m.log.Info("ISR change refused", "topic", p.Topic, "partition", p.Index, "err", err)
		p.wakeLocked()
		return
	}
	if p.leader && leaderEpoch == p.state.LeaderEpoch && partitionEpoch > p.state.PartitionEpoch {
		p.state.ISR, p.state.PartitionEpoch = slices.Clone(isr), partitionEpoch
	}
	if p.maybeIncrementHWLocked(time.Now()) {
		p.notify()
	}
	p.wakeLocked()
}

// appendFromLeader appends a fetch response's batches on a follower, if it
// still follows leader at epoch, and takes the leader's high watermark (at
// most its own end offset) and log start offset.
func (p *Partition) appendFromLeader(leader, epoch int32, records []byte, leaderHW, leaderStart int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.followingLocked(leader, epoch) {
		return errStale
	}
	if len(records) > 0 {
		if _, err := p.Log.AppendAsFollower(records, time.Now()); err != nil {
			return err
		}
	}
	if leaderStart > p.Log.StartOffset() {
		if _, err := p.Log.DeleteRecordsBefore(min(leaderStart, p.Log.EndOffset())); err != nil {
			return err
		}
	}
	p.Log.SetHighWatermark(min(leaderHW, p.Log.EndOffset()))
	return nil
}

func (p *Partition) followingLocked(leader, epoch int32) bool {
	return !p.leader && !p.removed && p.state.Leader == leader && p.state.LeaderEpoch == epoch
}

// truncateDiverging truncates a follower's log where the leader said it
// diverged (Kafka's AbstractFetcherThread.getOffsetTruncationState).
func (p *Partition) truncateDiverging(leader, epoch int32, divEpoch int32, divEnd int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.followingLocked(leader, epoch) {
		return errStale
	}
	leo := p.Log.EndOffset()
	var to int64
	switch {
	case divEnd < 0:
		to = min(p.Log.HighWatermark(), leo)
	case divEpoch < 0:
		to = min(divEnd, leo)
	default:
		fe, fo := p.Log.EndOffsetForEpoch(divEpoch)
		switch {
		case fe < 0 || fo < 0:
			to = min(divEnd, leo)
		case fe != divEpoch:
			// The follower does not know the leader's epoch: cut to the end
			// of its own largest epoch below it and ask again.
			to = min(fo, leo)
		default:
			to = min(fo, divEnd, leo)
		}
	}
	if to >= leo {
		// No record to cut, but an epoch this node led without writing
		// may start at the end: TruncateTo drops it, as Kafka's
		// UnifiedLog.truncateTo does, or the next fetch names it again
		// and the leader answers the same divergence at once, forever.
		return p.Log.TruncateTo(leo)
	}
	p.m.log.Info("truncating a diverged follower log", "topic", p.Topic, "partition", p.Index, "from", leo, "to", to, "leader_epoch", epoch)
	return p.Log.TruncateTo(to)
}

// truncateToLeaderEnd truncates a follower's log to the leader's log end
// offset when that is below its own (see fetcher.truncateToLeaderEnd).
func (p *Partition) truncateToLeaderEnd(leader, epoch int32, leaderEnd int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.followingLocked(leader, epoch) {
		return errStale
	}
	leo := p.Log.EndOffset()
	if leaderEnd < 0 || leaderEnd >= leo {
		return errNothingTruncated
	}
	p.m.log.Warn("follower log above the leader's end offset: truncating to it", "topic", p.Topic, "partition", p.Index, "from", leo, "to", leaderEnd, "leader_epoch", epoch)
	return p.Log.TruncateTo(leaderEnd)
}

// startAt empties a follower's log and starts it at the leader's log start
// offset, above everything it had (OFFSET_OUT_OF_RANGE below the leader's
// start).
func (p *Partition) startAt(leader, epoch int32, leaderStart int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.followingLocked(leader, epoch) {
		return errStale
	}
	if p.Log.EndOffset() >= leaderStart {
		return nil
	}
	p.m.log.Info("follower log below the leader's start: starting over", "topic", p.Topic, "partition", p.Index, "start", leaderStart)
	if err := p.Log.TruncateFullyAndStartAt(leaderStart); err != nil {
		return err
	}
	p.Log.SetHighWatermark(leaderStart)
	return nil
}
