package replica

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errStale: the partition's leadership changed while its fetch was out;
// the answer is dropped.
var errStale = errors.New("replica: the partition no longer follows that leader and epoch")

// fetcherKey names a fetcher: one per leader and fetcher index
// (num.replica.fetchers).
type fetcherKey struct {
	leader int32
	index  int
}

// fetchState is a partition's state in its fetcher.
type fetchState struct {
	leaderEpoch  int32
	delayedUntil time.Time // after an error: replica.fetch.backoff.ms
}

// fetcher is one replica fetcher (Kafka's ReplicaFetcherThread): a
// goroutine sending Fetch requests for its partitions to one leader and
// writing the answers into the follower logs. m.mu guards parts; only the
// goroutine writes the logs of its partitions.
type fetcher struct {
	m      *Manager
	key    fetcherKey
	parts  map[*Partition]*fetchState
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
}

// newFetcher starts a fetcher; the caller holds m.mu.
func (m *Manager) newFetcher(key fetcherKey) *fetcher {
	f := &fetcher{m: m, key: key, parts: map[*Partition]*fetchState{}, wake: make(chan struct{}, 1)}
	f.ctx, f.cancel = context.WithCancel(m.ctx)
	m.wg.Add(1)
	go f.run()
	return f
}

// add and remove change the fetcher's partitions; the caller holds m.mu.
func (f *fetcher) add(p *Partition, epoch int32) {
	f.parts[p] = &fetchState{leaderEpoch: epoch}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(p *Partition) int {
	delete(f.parts, p)
	return len(f.parts)
}

type sentPartition struct {
	p     *Partition
	epoch int32
}

func (f *fetcher) run() {
	defer f.m.wg.Done()
	cfg := &f.m.cfg
	for f.ctx.Err() == nil {
		req, sent, next := f.build()
		if len(sent) == 0 {
			wait := time.Hour
			if !next.IsZero() {
				wait = time.Until(next)
			}
			t := time.NewTimer(wait)
			select {
			case <-f.ctx.Done():
			case <-f.wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		ctx, cancel := context.WithTimeout(f.ctx, cfg.FetchWait+30*time.Second)
		resp, err := cfg.Send(ctx, f.key.leader, req)
		cancel()
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			f.m.log.Debug("replica fetch failed", "leader", f.key.leader, "err", err)
			f.sleep(cfg.FetchBackoff)
			continue
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 {
			f.m.log.Debug("replica fetch refused", "leader", f.key.leader, "err", kerr.ErrorForCode(fr.ErrorCode))
			f.sleep(cfg.FetchBackoff)
			continue
		}
		f.process(sent, fr)
	}
}

func (f *fetcher) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
	case <-t.C:
	}
}

// build is the next Fetch: every partition not backing off, at its log end
// offset with its last fetched epoch (KIP-279) and the leader epoch it
// follows. next is when the first backing-off partition may fetch again.
func (f *fetcher) build() (*kmsg.FetchRequest, []sentPartition, time.Time) {
	cfg := &f.m.cfg
	now := time.Now()
	var sent []sentPartition
	var next time.Time
	f.m.mu.Lock()
	for p, st := range f.parts {
		if now.Before(st.delayedUntil) {
			if next.IsZero() || st.delayedUntil.Before(next) {
				next = st.delayedUntil
			}
			continue
		}
		sent = append(sent, sentPartition{p: p, epoch: st.leaderEpoch})
	}
	f.m.mu.Unlock()
	req := kmsg.NewPtrFetchRequest()
	me := cfg.NodeID
	req.ReplicaID = me
	req.ReplicaState.ID, req.ReplicaState.Epoch = me, cfg.BrokerEpoch()
	req.MaxWaitMillis = int32(cfg.FetchWait / time.Millisecond)
	req.MinBytes, req.MaxBytes = cfg.FetchMinBytes, cfg.FetchResponseMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // sessionless: every fetch names every partition
	topics := map[string]int{}
	for _, s := range sent {
		i, ok := topics[s.p.Topic]
		if !ok {
			i = len(req.Topics)
			topics[s.p.Topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = s.p.Topic, s.p.TopicID
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch = s.p.Index, s.epoch
		rp.FetchOffset, rp.LogStartOffset = s.p.Log.EndOffset(), s.p.Log.StartOffset()
		rp.LastFetchedEpoch = s.p.Log.LatestEpoch()
		rp.PartitionMaxBytes = cfg.FetchMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req, sent, next
}

// process writes a Fetch response into the follower logs (Kafka's
// processFetchRequest): data appended, diverged logs truncated, a log
// below the leader's start started over, other errors backed off until
// metadata moves the partition.
func (f *fetcher) process(sent []sentPartition, fr *kmsg.FetchResponse) {
	type key struct {
		topic string
		id    [16]byte
		part  int32
	}
	byKey := map[key]sentPartition{}
	for _, s := range sent {
		byKey[key{s.p.Topic, [16]byte{}, s.p.Index}] = s
		byKey[key{"", s.p.TopicID, s.p.Index}] = s
	}
	leader := f.key.leader
	for _, rt := range fr.Topics {
		for i := range rt.Partitions {
			sp := &rt.Partitions[i]
			s, ok := byKey[key{rt.Topic, [16]byte{}, sp.Partition}]
			if rt.Topic == "" {
				s, ok = byKey[key{"", rt.TopicID, sp.Partition}]
			}
			if !ok {
				continue
			}
			var err error
			switch code := kerr.ErrorForCode(sp.ErrorCode); {
			case code == nil && (sp.DivergingEpoch.Epoch >= 0 || sp.DivergingEpoch.EndOffset >= 0):
				err = s.p.truncateDiverging(leader, s.epoch, sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset)
			case code == nil:
				err = s.p.appendFromLeader(leader, s.epoch, sp.RecordBatches, sp.HighWatermark, sp.LogStartOffset)
			case errors.Is(code, kerr.OffsetOutOfRange) && s.p.Log.EndOffset() < sp.LogStartOffset:
				err = s.p.startAt(leader, s.epoch, sp.LogStartOffset)
			case errors.Is(code, kerr.OffsetOutOfRange):
				err = f.truncateToLeaderEnd(s)
			default:
				// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
				// UNKNOWN_LEADER_EPOCH...: the metadata will say what is
				// next; until then fetch again after a backoff.
				err = code
			}
			if err != nil && !errors.Is(err, errStale) {
				f.m.log.Debug("replica fetch of a partition failed", "topic", s.p.Topic, "partition", s.p.Index, "leader", leader, "err", err)
				f.m.mu.Lock()
				if st := f.parts[s.p]; st != nil && st.leaderEpoch == s.epoch {
					st.delayedUntil = time.Now().Add(f.m.cfg.FetchBackoff)
				}
				f.m.mu.Unlock()
			}
		}
	}
}

// errNothingTruncated: the fetch was out of range, yet the leader's end is
// not below the follower's: fetch again after the backoff.
var errNothingTruncated = errors.New("replica: fetch offset out of range, but not above the leader's log end offset")

// truncateToLeaderEnd handles OFFSET_OUT_OF_RANGE at or above the leader's
// log start (Kafka's AbstractFetcherThread.fetchOffsetAndTruncate): it asks
// the leader its log end offset (ListOffsets latest as a replica, which
// answers the log end, not the high watermark) and truncates the
// follower's log there when it is below the follower's end (an unclean
// election, or a leader that lost unflushed records, can leave the
// leader behind without a diverging epoch to say so).
func (f *fetcher) truncateToLeaderEnd(s sentPartition) error {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = f.m.cfg.NodeID
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = s.p.Topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = s.p.Index, s.epoch, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	resp, err := f.m.cfg.Send(ctx, f.key.leader, req)
	if err != nil {
		return err
	}
	lr := resp.(*kmsg.ListOffsetsResponse)
	if len(lr.Topics) != 1 || len(lr.Topics[0].Partitions) != 1 {
		return errors.New("replica: ListOffsets answered another partition")
	}
	ap := lr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(ap.ErrorCode); err != nil {
		return err
	}
	return s.p.truncateToLeaderEnd(f.key.leader, s.epoch, ap.Offset)
}
