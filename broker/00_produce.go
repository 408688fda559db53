package broker

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/storage"
)

// Produce: v3-13. v3 is the first version carrying record batch v2 (magic 2);
// v0-2 carried message sets v0/v1, which Kafka 4.0 removed too. v9 is
// flexible, v13 names topics by id.
var produceVersions = versions{3, 13}

// produceAPIVersionsMin is the Produce minimum ApiVersions advertises,
// though v0-2 are refused (closed as any unsupported version) everywhere
// else, as Kafka 4.0 does since KAFKA-18659: librdkafka (2.0.2 here, and
// others) enables gzip, snappy and lz4 only if the broker lists Produce v0
// (librdkafka issue #4956) and otherwise sends those batches uncompressed.
// Clients pick the highest version both sides know, so none picks v0-2
// from it.
const produceAPIVersionsMin = 0

func (b *Broker) handleProduce(rc *reqCtx, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	now := time.Now()
	var waits []ackWait
	woke := false // a Fetch waiting for a partition's data was woken
	defer func() {
		if woke {
			// Let a woken Fetch run on this core now, while the other
			// goes on with this connection: readied by notify, it would
			// wait for this response to be encoded and handed to the
			// connection's writer, which takes its place as the next
			// goroutine to run (a median 12 µs, p99 150 µs, at 10,000
			// one-record Produce requests a second), and the records
			// with it.
			runtime.Gosched()
		}
	}()
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *topic
		missing := kerr.UnknownTopicOrPartition
		if rc.version >= 13 {
			t = b.topics.getByID(rt.TopicID)
			missing = kerr.UnknownTopicID
		} else {
			t = b.topics.get(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			switch {
			case !acksOK:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			case t == nil:
				sp.ErrorCode = missing.Code
			case rp.Partition < 0 || int(rp.Partition) >= len(t.partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case b.cluster != nil && b.cluster.notLeader(t.name, rp.Partition, -1, &sp.ErrorCode, &sp.CurrentLeader.LeaderID, &sp.CurrentLeader.LeaderEpoch):
			case !singleBatch(rp.Records):
				// Kafka: v3+ requests carry exactly one batch per partition.
				sp.ErrorCode = kerr.InvalidRecord.Code
				if rc.version >= 8 {
					msg := "Produce requests with version 3 and above must contain exactly one record batch per partition"
					sp.ErrorMessage = &msg
				}
			case t.internal:
				// Clients may not write the coordinators' topics directly.
				sp.ErrorCode = kerr.InvalidTopicException.Code
			case isControlBatch(rp.Records):
				// Only the transaction coordinator writes markers (Kafka:
				// "clients are not allowed to write control records").
				sp.ErrorCode = kerr.InvalidRecord.Code
			default:
				p := t.partitions[rp.Partition]
				var res storage.AppendResult
				var err error
				if e, msg := b.verifiedAppend(req.TransactionID, t.name, rp.Partition, rp.Records, func() { res, err = b.appendLocal(p, req.Acks, rp.Records, now) }); e != nil {
					sp.ErrorCode = e.Code
					if rc.version >= 8 {
						m := msg // msg itself would move to the heap on every append
						sp.ErrorMessage = &m
					}
					break
				}
				if err != nil {
					sp.ErrorCode = p.storageFault(b, "produce", err)
					if rc.version >= 8 {
						sp.ErrorMessage = errorMessage(err)
						sp.ErrorRecords = recordErrors(err)
					}
					break
				}
				p.recovered(b)
				sp.BaseOffset = res.BaseOffset
				sp.LogAppendTime = res.LogAppendTime
				sp.LogStartOffset = res.LogStartOffset
				if !res.Duplicate && p.notify() {
					woke = true
				}
				if req.Acks == -1 && b.cluster != nil {
					waits = append(waits, ackWait{rp: p.repl.Load(), required: res.LastOffset + 1, topic: len(resp.Topics), part: len(st.Partitions)})
				}
			}
			b.metrics.produced(t, rp.Records, sp.ErrorCode)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil, nil // acks=0: Kafka sends no response at all
	}
	if b.cluster != nil {
		b.cluster.produceEndpoints(rc, resp)
	}
	if len(waits) > 0 {
		// acks=all: answered once the high watermark passes every
		// partition's records, while the connection goes on reading. The
		// response outlives the request's frame, which the connection
		// reads the next request into: it takes its topic names with it.
		for i := range resp.Topics {
			resp.Topics[i].Topic = strings.Clone(resp.Topics[i].Topic)
		}
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		rc.await = func(complete func()) { awaitAcks(rc.ctx, timeout, waits, failProduce(resp), complete) }
	}
	return resp, nil
}

// recordErrors names the records a refused batch was refused for (KIP-467),
// as Kafka's RecordValidationException does; nil for other failures.
func recordErrors(err error) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	var te *storage.InvalidTimestampError
	if !errors.As(err, &te) {
		return nil
	}
	out := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, len(te.Records))
	for i, r := range te.Records {
		out[i].RelativeOffset, out[i].ErrorMessage = r.BatchIndex, kmsg.StringPtr(r.Message)
	}
	return out
}

// singleBatch reports whether records holds exactly one batch by its length
// field (offset 8); a malformed batch is left for storage to reject with the
// precise error.
func singleBatch(records []byte) bool {
	if len(records) < 12 {
		return true
	}
	return int64(binary.BigEndian.Uint32(records[8:12]))+12 >= int64(len(records))
}
