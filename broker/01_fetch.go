package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/storage"
)

// Fetch: v4-18. v4 is the first version whose records are batch v2 only
// (older ones would need down-conversion, removed in Kafka 4.0); v7 adds
// fetch sessions (fetch_session.go), v12 is flexible, v13 names topics by id.
var fetchVersions = versions{4, 18}

func (b *Broker) handleFetch(rc *reqCtx, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	sc := rc.fetch
	if sc == nil {
		sc = new(fetchScratch)
	}
	resp.Topics = sc.topics[:0]
	fc := b.fetchSessions.open(rc.version, req, sc.targets[:0])
	defer func() { sc.targets, sc.topics = fc.targets[:0], resp.Topics[:0] }()
	if fc.errorCode != 0 {
		resp.ErrorCode = fc.errorCode
		return resp, nil
	}
	var deadline time.Time
	if req.MaxWaitMillis > 0 {
		deadline = time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	}
	fill := b.fillFetch
	if id, epoch, ok := replicaOf(rc.version, req); ok && b.cluster != nil {
		fill = b.cluster.replicaFill(id, epoch)
	}
	var waitingOn []*partition
	registered := false
	defer func() {
		for _, p := range waitingOn {
			p.removeWaiter(sc.wake)
		}
		sc.waiting = waitingOn[:0]
	}()
	for {
		resp.Topics = resp.Topics[:0]
		total, parts, now := fill(rc, fc.targets, req, resp)
		// As Kafka, a partition error (OFFSET_OUT_OF_RANGE, an unknown
		// topic...) is answered at once rather than after max wait, and
		// so is a read that more data follows in the next segment (see
		// fillFetch).
		if now || int64(total) >= int64(req.MinBytes) || !time.Now().Before(deadline) || rc.ctx.Err() != nil {
			if fc.session != nil {
				b.fetchSessions.respond(&fc, resp, rc.version)
			}
			if b.cluster != nil {
				b.cluster.fetchEndpoints(rc, resp)
			}
			return resp, nil
		}
		// Long poll: register on every partition before re-reading, so an
		// append between the read above and the wait below still wakes us.
		if !registered {
			registered = true
			if sc.wake == nil {
				sc.wake = make(chan struct{}, 1)
			}
			select {
			case <-sc.wake: // an append's wake-up for an earlier Fetch
			default:
			}
			waitingOn = append(sc.waiting[:0], parts...)
			for _, p := range waitingOn {
				p.addWaiter(sc.wake)
			}
			continue
		}
		if sc.timer == nil {
			sc.timer = time.NewTimer(time.Until(deadline))
		} else {
			sc.timer.Reset(time.Until(deadline))
		}
		select {
		case <-sc.wake:
		case <-sc.timer.C:
		case <-rc.ctx.Done():
		}
		sc.timer.Stop()
	}
}

// fetchScratch is a connection's storage for the Fetch requests it serves,
// reused from one to the next: handlers run one at a time per connection,
// and the response is encoded before the next request is read. A consumer
// reading records as they arrive sends a Fetch per batch or two, and these
// were most of what the broker allocated per Fetch.
type fetchScratch struct {
	targets []fetchTarget
	topics  []kmsg.FetchResponseTopic
	parts   []kmsg.FetchResponseTopicPartition // carved into the topics' Partitions (used of it so far)
	used    int
	exist   []*partition  // fillFetch's partitions that exist
	waiting []*partition  // those a long poll waits on
	wake    chan struct{} // the long poll's, which appends signal
	timer   *time.Timer   // the long poll's
}

// partitions returns room for n partitions of a response topic, carved from
// the scratch (fillFetch starts over at used 0).
func (sc *fetchScratch) partitions(n int) []kmsg.FetchResponseTopicPartition {
	if cap(sc.parts)-sc.used < n {
		sc.parts, sc.used = make([]kmsg.FetchResponseTopicPartition, 0, max(n, 2*cap(sc.parts))), 0
	}
	p := sc.parts[sc.used : sc.used : sc.used+n]
	sc.used += n
	return p
}

// fetchTopic finds a target's topic: by id from v13, by name before.
func (b *Broker) fetchTopic(rc *reqCtx, k sessionKey) *topic {
	if rc.version >= 13 {
		return b.topics.getByID(k.id)
	}
	return b.topics.get(k.topic)
}

// fillFetch reads every target into resp (consecutive targets of one topic
// share a response topic) and returns the bytes gathered, the partitions
// that exist (for long-poll wake-ups) and whether to answer without waiting
// for fetch.min.bytes: a partition failed, or a partition's read stopped
// at the end of a segment with more readable records after it (Kafka's
// DelayedFetch case F, see storage.Log.ReadsPastSegment).
func (b *Broker) fillFetch(rc *reqCtx, targets []fetchTarget, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) (total int, parts []*partition, now bool) {
	maxBytes := req.MaxBytes
	if rc.version < 3 || maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	readCommitted := req.IsolationLevel == 1
	rc.dropChunks() // a long poll's earlier gathering
	var buf []byte
	if rc.scratch != nil {
		buf = (*rc.scratch)[:0]
		defer func() { *rc.scratch = buf[:0] }()
	}
	missing := kerr.UnknownTopicOrPartition
	if rc.version >= 13 {
		missing = kerr.UnknownTopicID
	}
	sc := rc.fetch
	if sc != nil {
		sc.used = 0
		parts = sc.exist[:0]
		defer func() { sc.exist = parts[:0] }()
	}
	var t *topic
	for i, tg := range targets {
		if i == 0 || tg.key.topic != targets[i-1].key.topic || tg.key.id != targets[i-1].key.id {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = tg.key.topic, tg.key.id
			// Sized at once: growing it by appends cost a consumer
			// reading as records arrive more than anything else per
			// Fetch (the partition is ~200 bytes).
			n := 1
			for n < len(targets)-i && targets[i+n].key.topic == tg.key.topic && targets[i+n].key.id == tg.key.id {
				n++
			}
			if sc != nil {
				st.Partitions = sc.partitions(n)
			} else {
				st.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, n)
			}
			resp.Topics = append(resp.Topics, st)
			t = b.fetchTopic(rc, tg.key)
		}
		st := &resp.Topics[len(resp.Topics)-1]
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = tg.key.partition
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
		// Empty, never null, when there is no data: Kafka always sends
		// MemoryRecords (kafka-python cannot read a null records field).
		sp.RecordBatches = []byte{}
		switch {
		case t == nil:
			sp.ErrorCode = missing.Code
		case tg.key.partition < 0 || int(tg.key.partition) >= len(t.partitions):
			sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case b.cluster != nil && b.cluster.notLeader(t.name, tg.key.partition, tg.leaderEpoch, &sp.ErrorCode, &sp.CurrentLeader.LeaderID, &sp.CurrentLeader.LeaderEpoch):
		case b.cluster == nil && tg.leaderEpoch > 0:
			sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
		case b.cluster != nil && !t.partitions[tg.key.partition].leads():
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
		default:
			p := t.partitions[tg.key.partition]
			parts = append(parts, p)
			// The stable offset first: it never passes the end offset read after.
			sp.LastStableOffset = p.log.LastStableOffset()
			sp.HighWatermark, sp.LogStartOffset = p.log.HighWatermark(), p.log.StartOffset()
			if readCommitted {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			// With fetch.min.bytes 1, any data read answers the fetch.
			now = now || req.MinBytes > 1 && p.log.ReadsPastSegment(tg.offset, readCommitted)
			limit := min(tg.maxBytes, maxBytes-int32(total))
			if limit <= 0 && total > 0 {
				break
			}
			// KIP-74: the first partition with data returns at least one
			// whole batch even above the limits, so a consumer never stalls.
			if rc.zeroCopy && !readCommitted {
				var n int
				var ok bool
				var err error
				n, buf, ok, err = b.fetchChunk(rc, p, tg.offset, max(limit, 0), total == 0, &sp, buf)
				if err != nil {
					sp.ErrorCode = fetchErrorCode(b, p, err)
					break
				}
				if ok {
					total += n
					break
				}
			}
			start := len(buf)
			var err error
			var aborted []storage.Aborted
			if readCommitted {
				// Data and aborted transactions from one read: retention in
				// between would drop entries of records already read.
				buf, aborted, err = p.log.ReadCommitted(tg.offset, max(limit, 0), total == 0, buf)
			} else {
				buf, err = p.log.Read(tg.offset, max(limit, 0), total == 0, buf)
			}
			if err != nil {
				sp.ErrorCode = fetchErrorCode(b, p, err)
				buf = buf[:start]
				break
			}
			if len(buf) > start {
				sp.RecordBatches = buf[start:len(buf):len(buf)]
			}
			for _, a := range aborted {
				sp.AbortedTransactions = append(sp.AbortedTransactions,
					kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
			}
			total += len(buf) - start
		}
		now = now || sp.ErrorCode != 0
		st.Partitions = append(st.Partitions, sp)
	}
	return total, parts, now
}

// fetchChunk puts the partition's data in the response as a file chunk that
// the writer sends with sendfile (see frame.go), or, below fetchCopyBelow
// bytes, as bytes read into buf (returned). ok is false when the log cannot
// give one (not on an OS file): the caller then copies.
func (b *Broker) fetchChunk(rc *reqCtx, p *partition, offset int64, limit int32, minOne bool, sp *kmsg.FetchResponseTopicPartition, buf []byte) (int, []byte, bool, error) {
	start := len(buf)
	chunk, buf, ok, err := p.log.ReadChunk(offset, false, limit, minOne, fetchCopyBelow, buf)
	if err != nil || !ok {
		return 0, buf[:start], ok, err
	}
	if len(buf) > start {
		sp.RecordBatches = buf[start:len(buf):len(buf)]
		return len(buf) - start, buf, true, nil
	}
	if chunk.Len == 0 {
		return 0, buf, true, nil
	}
	marker := chunkMarker(len(rc.chunks))
	rc.chunks = append(rc.chunks, pendingChunk{marker: marker, chunk: chunk})
	sp.RecordBatches = marker
	return int(chunk.Len), buf, true, nil
}

// fetchCopyBelow is the size below which a partition's data goes into a
// Fetch response as a copy rather than a file chunk: a chunk's descriptor
// is opened, positioned, sent from and closed (four system calls and a few
// allocations more than a read), which costs more than copying a few
// kilobytes twice (a consumer reading records as they arrive fetches a batch
// or two of a few hundred bytes each time).
const fetchCopyBelow = 16 << 10

// fetchErrorCode maps a read failure to the partition's error code, logging
// what is not the client's doing.
func fetchErrorCode(b *Broker, p *partition, err error) int16 {
	if errors.Is(err, storage.ErrOffsetOutOfRange) {
		return kerr.OffsetOutOfRange.Code
	}
	if isStorageFault(err) {
		return p.storageFault(b, "fetch", err)
	}
	b.log.Warn("fetch read failed", "topic", p.topic, "partition", p.index, "err", err)
	return errorCode(err)
}
