package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/share"
)

// ShareFetch: v1-2, Kafka 4.1+'s stable versions (v0 was 4.0's early
// access). v1 adds MaxRecords and BatchSize (KIP-1206), v2 the acquire mode
// and RENEW acknowledgements (KIP-1222).
var shareFetchVersions = versions{1, 2}

// defaultShareMaxRecords is the records one ShareFetch acquires when the
// request sets no MaxRecords: Java's max.poll.records default.
const defaultShareMaxRecords = 500

func (b *Broker) handleShareFetch(rc *reqCtx, req *kmsg.ShareFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	if b.cluster != nil {
		defer b.cluster.shareFetchEndpoints(rc, resp)
	}
	group, member := deref(req.GroupID), deref(req.MemberID)
	gc := b.shareGroupConfig(group)
	resp.AcquisitionLockTimeoutMillis = int32(gc.Lock / time.Millisecond)
	renew := rc.version >= 2 && req.IsRenewAck
	if group == "" || member == "" || len(member) > 36 ||
		(renew && (req.MaxBytes != 0 || req.MinBytes != 0 || req.MaxRecords != 0 || req.MaxWaitMillis != 0)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	out := newShareFetchResponse(resp)
	acks, bad := shareFetchAcks(req, renew)
	if bad != nil {
		resp.ErrorCode = bad.Code
		return resp, nil
	}
	if req.ShareSessionEpoch == 0 && len(acks) > 0 {
		// Kafka's SharePartitionManager.newContext: a request opening a
		// session carries no acknowledgements, so the whole request fails
		// and no acknowledgement of it takes effect (the member
		// acknowledges what it holds in the new session's next request).
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	if req.ShareSessionEpoch == -1 {
		// The final request only acknowledges, then the session ends.
		if e := b.share.CheckClose(group, member); e != nil {
			resp.ErrorCode = e.Code
			return resp, nil
		}
		b.applyShareAcks(group, member, acks, out.acked)
		b.share.CloseSession(group, member)
		return resp, nil
	}
	var add, forget []share.TP
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			add = append(add, share.TP{Topic: t.TopicID, Partition: p.Partition})
		}
	}
	for _, t := range req.ForgottenTopicsData {
		for _, p := range t.Partitions {
			forget = append(forget, share.TP{Topic: t.TopicID, Partition: p})
		}
	}
	view, e := b.share.FetchSession(group, member, req.ShareSessionEpoch, add, forget)
	if e != nil {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	if req.ShareSessionEpoch == 0 {
		b.closeShareSessionWithConn(rc, group, member, view.Session)
	}
	finishAcks := b.startShareAcks(group, member, acks)
	for tp := range view.Fresh {
		out.partition(tp)
	}
	if req.ShareSessionEpoch == 0 {
		for _, tp := range view.Parts {
			out.partition(tp)
		}
	}
	if !renew {
		// A renewal only acknowledges: a fetch's time could outlast the
		// lock.
		b.shareAcquire(rc, req, group, member, view, out)
	}
	finishAcks(out.acked)
	return resp, nil
}

// closeShareSessionWithConn ends a share session when the connection that
// opened it closes, releasing what the member still holds, as Kafka does: a
// consumer that went away without closing its session (or whose fetch was
// answered after it gave up on it) does not keep records locked until the
// locks expire. The connection's requests are all answered by then. A
// session the member replaced meanwhile (epoch 0, maybe on another
// connection) is not this one and stays, as Kafka's ShareSessionCache marks
// the old connection's entry stale. A broker shutting down leaves the
// sessions be (nothing of them is durable).
func (b *Broker) closeShareSessionWithConn(rc *reqCtx, group, member string, s *share.Session) {
	context.AfterFunc(rc.ctx, func() {
		if b.ctx.Err() != nil {
			return
		}
		b.goStart(func() { b.share.CloseSessionIf(group, member, s) })
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// shareFetchResponse indexes a ShareFetch response's partitions.
type shareFetchResponse struct {
	resp  *kmsg.ShareFetchResponse
	index map[share.TP][2]int
}

func newShareFetchResponse(resp *kmsg.ShareFetchResponse) *shareFetchResponse {
	return &shareFetchResponse{resp: resp, index: map[share.TP][2]int{}}
}

// partition returns tp's response entry, adding it (without a leader
// hint: -1/-1, as Kafka sends when it gives none) on first use.
func (r *shareFetchResponse) partition(tp share.TP) *kmsg.ShareFetchResponseTopicPartition {
	if at, ok := r.index[tp]; ok {
		return &r.resp.Topics[at[0]].Partitions[at[1]]
	}
	ti := -1
	for i := range r.resp.Topics {
		if r.resp.Topics[i].TopicID == tp.Topic {
			ti = i
			break
		}
	}
	if ti < 0 {
		t := kmsg.NewShareFetchResponseTopic()
		t.TopicID = tp.Topic
		r.resp.Topics = append(r.resp.Topics, t)
		ti = len(r.resp.Topics) - 1
	}
	p := kmsg.NewShareFetchResponseTopicPartition()
	p.Partition = tp.Partition
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = -1, -1
	p.Records = []byte{}
	r.resp.Topics[ti].Partitions = append(r.resp.Topics[ti].Partitions, p)
	r.index[tp] = [2]int{ti, len(r.resp.Topics[ti].Partitions) - 1}
	return &r.resp.Topics[ti].Partitions[len(r.resp.Topics[ti].Partitions)-1]
}

// acked reports a partition's acknowledgement result.
func (r *shareFetchResponse) acked(tp share.TP, code int16, leader shareLeader) {
	p := r.partition(tp)
	p.AcknowledgeErrorCode = code
	if leader.id >= 0 {
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader.id, leader.epoch
	}
}

// shareLeader is the current leader a NOT_LEADER_OR_FOLLOWER answer
// names (KIP-951), id -1 for none.
type shareLeader struct{ id, epoch int32 }

var noShareLeader = shareLeader{-1, -1}

// shareAcquire acquires records for member over the session's partitions,
// long polling up to MaxWaitMillis while there is nothing to acquire:
// new records appended, or records released by others or by lock expiry,
// wake it. Nothing is acquired once the connection or the broker closes,
// or the session ended: no one would get the records, whose locks would
// hold them from the others until they expire (or, a broker shutting
// down, whose locks die with it, a client would still deliver them).
func (b *Broker) shareAcquire(rc *reqCtx, req *kmsg.ShareFetchRequest, group, member string, view share.SessionView, out *shareFetchResponse) {
	maxRecords := int(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	readCommitted := b.groupConfigs.get(group, "share.isolation.level") == "read_committed"
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	wake := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	waiting := map[*partition]bool{}
	defer func() {
		for p := range waiting {
			p.removeWaiter(wake)
		}
	}()
	for rc.ctx.Err() == nil {
		records, bytes, failed := 0, 0, false
		var avails []<-chan struct{}
		for _, tp := range view.Parts {
			t, p := b.sharePartition(tp.Topic, tp.Partition)
			if p == nil {
				code := kerr.UnknownTopicOrPartition.Code
				if t == nil {
					code = kerr.UnknownTopicID.Code
				}
				out.partition(tp).ErrorCode, failed = code, true
				continue
			}
			if code, leader, epoch := b.shareNotLeader(t, tp.Partition); code != 0 {
				sp := out.partition(tp)
				sp.ErrorCode, sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch, failed = code, leader, epoch, true
				continue
			}
			if records >= maxRecords || bytes >= maxBytes {
				continue
			}
			if !waiting[p] {
				// Registered before reading, so an append in between wakes us.
				p.addWaiter(wake)
				waiting[p] = true
			}
			n, size, avail, err := b.shareAcquirePartition(group, member, view.Session, tp, p, readCommitted, maxRecords-records, maxBytes-bytes, bytes == 0, out)
			if err != nil {
				out.partition(tp).ErrorCode, failed = errorCode(err), true
				continue
			}
			records, bytes = records+n, bytes+size
			avails = append(avails, avail)
		}
		if records > 0 || failed || !time.Now().Before(deadline) || rc.ctx.Err() != nil {
			return
		}
		for _, ch := range avails {
			go func() {
				select {
				case <-ch:
					select {
					case wake <- struct{}{}:
					default:
					}
				case <-stop:
				}
			}()
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
		case <-timer.C:
		case <-rc.ctx.Done():
		}
		timer.Stop()
	}
}

// shareAcquirePartition acquires up to maxRecords records of one partition,
// reading at most maxBytes of its log (at least one batch when minOne), and
// puts the batches and acquired ranges in the response.
func (b *Broker) shareAcquirePartition(group, member string, s *share.Session, tp share.TP, p *partition, readCommitted bool, maxRecords, maxBytes int, minOne bool, out *shareFetchResponse) (int, int, <-chan struct{}, error) {
	hwm := p.log.HighWatermark()
	if readCommitted {
		hwm = p.log.LastStableOffset()
	}
	var data []byte
	ranges, avail, err := b.share.Acquire(share.Key{Group: group, Topic: tp.Topic, Partition: tp.Partition}, share.Fetch{
		Member: member, Session: s, HWM: hwm, LogStart: p.log.StartOffset(), MaxRecords: maxRecords,
		Init: func() int64 { return b.shareStartOffset(group, p) },
		Read: func(from int64) (int64, error) {
			buf, err := p.log.Read(from, int32(min(maxBytes, 1<<31-1)), minOne, nil)
			if err != nil {
				return from, err
			}
			end, n := batchesEnd(buf, from)
			data = buf[:n]
			return end, nil
		},
	}, time.Now())
	if err != nil || len(ranges) == 0 {
		return 0, 0, avail, err
	}
	sp := out.partition(tp)
	sp.Records = data
	n := 0
	for _, r := range ranges {
		sp.AcquiredRecords = append(sp.AcquiredRecords, kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{FirstOffset: r.First, LastOffset: r.Last, DeliveryCount: r.DeliveryCount})
		n += int(r.Last - r.First + 1)
	}
	return n, len(data), avail, nil
}

// batchesEnd walks the whole batches at the start of buf and returns the
// offset after the last one (from when there is none) and their length.
func batchesEnd(buf []byte, from int64) (end int64, n int) {
	end = from
	r := recordbatch.NewReader(buf, recordbatch.ReadOptions{SkipRecords: true})
	var batch recordbatch.Batch
	for r.Next(&batch) {
		end = batch.NextOffset()
		n += len(batch.Raw)
	}
	return end, n
}

// shareAck is one partition's acknowledgements.
type shareAck struct {
	tp      share.TP
	batches []share.AckBatch
}

// shareAckBatches converts and checks a partition's acknowledgement
// batches as Kafka does: ordered, not overlapping, with known types; RENEW
// only in a request flagged IsRenewAck.
func shareAckBatches(first, last []int64, types [][]int8, renew bool) ([]share.AckBatch, *kerr.Error) {
	out := make([]share.AckBatch, len(first))
	prev := int64(-1)
	for i := range first {
		if first[i] > last[i] || first[i] <= prev || len(types[i]) == 0 {
			return nil, kerr.InvalidRequest
		}
		prev = last[i]
		b := share.AckBatch{First: first[i], Last: last[i]}
		for _, t := range types[i] {
			at := share.AckType(t)
			if at < share.AckGap || at > share.AckRenew || (at == share.AckRenew && !renew) {
				return nil, kerr.InvalidRequest
			}
			b.Types = append(b.Types, at)
		}
		out[i] = b
	}
	return out, nil
}

func shareFetchAcks(req *kmsg.ShareFetchRequest, renew bool) ([]shareAck, *kerr.Error) {
	var out []shareAck
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.AcknowledgementBatches) == 0 {
				if renew {
					return nil, kerr.InvalidRequest // a renewal carries only acknowledgements
				}
				continue
			}
			var first, last []int64
			var types [][]int8
			for _, ab := range p.AcknowledgementBatches {
				first, last, types = append(first, ab.FirstOffset), append(last, ab.LastOffset), append(types, ab.AcknowledgeTypes)
			}
			batches, e := shareAckBatches(first, last, types, renew)
			if e != nil {
				return nil, e
			}
			out = append(out, shareAck{tp: share.TP{Topic: t.TopicID, Partition: p.Partition}, batches: batches})
		}
	}
	return out, nil
}

// applyShareAcks applies each partition's acknowledgements and reports its
// code: UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION for partitions that
// do not exist, NOT_LEADER_OR_FOLLOWER (with the leader) for partitions
// this node does not lead, INVALID_RECORD_STATE for records the member
// does not hold.
func (b *Broker) applyShareAcks(group, member string, acks []shareAck, report func(share.TP, int16, shareLeader)) {
	b.startShareAcks(group, member, acks)(report)
}

// startShareAcks applies the acknowledgements and returns the function
// that waits until they are durable and reports them: on a cluster a
// ShareFetch acquires records meanwhile, and the partitions' writes are
// replicated side by side.
func (b *Broker) startShareAcks(group, member string, acks []shareAck) func(report func(share.TP, int16, shareLeader)) {
	now := time.Now()
	codes := make([]int16, len(acks))
	leaders := make([]shareLeader, len(acks))
	waits := make([]func() *kerr.Error, len(acks))
	for i, a := range acks {
		leaders[i] = noShareLeader
		t, p := b.sharePartition(a.tp.Topic, a.tp.Partition)
		switch {
		case t == nil:
			codes[i] = kerr.UnknownTopicID.Code
		case p == nil:
			codes[i] = kerr.UnknownTopicOrPartition.Code
		default:
			if code, leader, epoch := b.shareNotLeader(t, a.tp.Partition); code != 0 {
				codes[i], leaders[i] = code, shareLeader{leader, epoch}
				continue
			}
			waits[i] = b.share.AcknowledgeLater(share.Key{Group: group, Topic: a.tp.Topic, Partition: a.tp.Partition}, member, a.batches, now)
		}
	}
	return func(report func(share.TP, int16, shareLeader)) {
		for i, a := range acks {
			if waits[i] != nil {
				if e := waits[i](); e != nil {
					codes[i] = e.Code
				}
			}
			report(a.tp, codes[i], leaders[i])
		}
	}
}
