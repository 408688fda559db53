package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// ListOffsets: v1-10. v0 (several old-style offsets) was removed in Kafka
// 4.0; v2 adds isolation level, v7 max timestamp (-3), v8 earliest local
// (-4), v9 latest tiered (-5).
var listOffsetsVersions = versions{1, 10}

// Special timestamps of ListOffsets.
const (
	tsLatest        = -1
	tsEarliest      = -2
	tsMaxTimestamp  = -3
	tsEarliestLocal = -4
	tsLatestTiered  = -5
)

func (b *Broker) handleListOffsets(rc *reqCtx, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			switch {
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case b.cluster != nil && b.cluster.notLeader(t.name, rp.Partition, rp.CurrentLeaderEpoch, &sp.ErrorCode, new(int32), new(int32)):
			case b.cluster == nil && rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				p := t.partitions[rp.Partition]
				// Kafka's lastFetchableOffset: a follower (ReplicaID ≥ 0)
				// may see up to the log end, clients up to the high
				// watermark, or the last stable offset under read_committed.
				fetchable := p.log.HighWatermark()
				switch {
				case req.ReplicaID >= 0:
					fetchable = p.log.EndOffset()
				case req.IsolationLevel == 1:
					fetchable = p.log.LastStableOffset()
				}
				off, ts, epoch, err := b.listOffset(p, rp.Timestamp, fetchable)
				if err != nil {
					sp.ErrorCode = errorCode(err)
					break
				}
				// A leader elected before its high watermark caught up
				// with the start of its epoch (KIP-207) does not know
				// what is committed: a client's latest, or a lookup not
				// found below the high watermark, gets
				// OFFSET_NOT_AVAILABLE (retriable) rather than an offset
				// that may go backwards, as Kafka's fetchOffsetForTimestamp
				// answers.
				lagging := req.ReplicaID < 0 && b.hwBehindEpochStart(p)
				switch rp.Timestamp {
				case tsLatest:
				case tsEarliest, tsEarliestLocal:
					lagging = false
				default:
					if off >= 0 && off < fetchable {
						lagging = false
					} else {
						off, ts, epoch = -1, -1, -1 // records not committed (or not stable) yet are not found
					}
				}
				if lagging {
					sp.ErrorCode = kerr.OffsetNotAvailable.Code
					break
				}
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, epoch
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// hwBehindEpochStart reports whether p's leader has a high watermark below
// the offset its leader epoch started at.
func (b *Broker) hwBehindEpochStart(p *partition) bool {
	rp := p.repl.Load()
	if rp == nil {
		return false
	}
	start, leads := rp.LeaderEpochStart()
	return leads && start > p.log.HighWatermark()
}

// listOffset resolves one ListOffsets query to (offset, timestamp, leader
// epoch); (-1, -1, -1) when no record matches, as Kafka answers. Latest is
// fetchable (see handleListOffsets) at the current leader epoch; the
// earliest offset's epoch comes from the epoch cache, a found record's
// from its batch, as Kafka's fetchOffsetByTimestamp.
func (b *Broker) listOffset(p *partition, ts, fetchable int64) (int64, int64, int32, error) {
	switch ts {
	case tsLatest:
		epoch := p.log.LatestEpoch()
		if rp := p.repl.Load(); rp != nil {
			epoch = rp.LeaderEpoch()
		}
		return fetchable, -1, epoch, nil
	case tsEarliest, tsEarliestLocal:
		start := p.log.StartOffset()
		return start, -1, p.log.EpochForOffset(start), nil
	case tsLatestTiered:
		return -1, -1, -1, nil
	case tsMaxTimestamp:
		batch, ok, err := p.log.MaxTimestampBatch()
		if err != nil || !ok {
			return -1, -1, -1, err
		}
		return findRecord(batch, p.log.StartOffset(), func(recTS, maxTS int64) bool { return recTS == maxTS })
	}
	if ts < 0 {
		return 0, 0, -1, kerr.InvalidRequest
	}
	batch, ok, err := p.log.BatchForTimestamp(ts)
	if err != nil || !ok {
		return -1, -1, -1, err
	}
	return findRecord(batch, p.log.StartOffset(), func(recTS, _ int64) bool { return recTS >= ts })
}

// findRecord decodes one stored batch and returns the first record at or
// above start (DeleteRecords may cut a batch) for which match holds, with its
// timestamp and the batch's leader epoch (-1 when it has none). Under
// LogAppendTime every record carries the batch's max timestamp.
func findRecord(raw []byte, start int64, match func(recTS, maxTS int64) bool) (int64, int64, int32, error) {
	r := recordbatch.NewReader(raw, recordbatch.ReadOptions{})
	var batch recordbatch.Batch
	if !r.Next(&batch) {
		if err := r.Err(); err != nil {
			return -1, -1, -1, err
		}
		return -1, -1, -1, nil
	}
	for _, rec := range batch.Records {
		ts := rec.Timestamp.UnixMilli()
		if rec.Offset >= start && match(ts, batch.MaxTimestamp) {
			return rec.Offset, ts, max(batch.PartitionLeaderEpoch, -1), nil
		}
	}
	return -1, -1, -1, nil
}
