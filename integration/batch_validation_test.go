package integration

// Issue 24 case 5 over TCP: a raw Produce whose batch header lies about
// its records is refused as Kafka's LogValidator refuses it, and nothing is
// stored.

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/client"
)

// headerBatch encodes records with the given offset deltas (timestamps
// 1000, 1001, ...) under a header claiming count records, lastOffsetDelta
// and maxTs, with a correct CRC.
func headerBatch(deltas []int32, count, lastOffsetDelta int32, maxTs int64) []byte {
	var recs []byte
	for i, d := range deltas {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: d, Key: []byte{'k', byte('0' + i)}, Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: lastOffsetDelta, FirstTimestamp: 1000,
		MaxTimestamp: maxTs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: count, Records: recs}
	b.Length = int32(49 + len(recs))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func TestProduceRefusesLyingBatchHeader(t *testing.T) {
	b := broker.NewTest(t)
	createTopicOn(t, []string{b.Addr()}, "lying", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Config{SeedBrokers: []string{b.Addr()}, RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := cl.Metadata(ctx, "lying")
	if err != nil {
		t.Fatal(err)
	}
	produce := func(raw []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "lying", TopicID: md.Topics["lying"].ID,
			Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
		resp, err := cl.RequestBroker(ctx, 0, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	for _, tc := range []struct {
		name                   string
		deltas                 []int32
		count, lastOffsetDelta int32
	}{
		{"one record claimed, three carried", []int32{0, 1, 2}, 1, 0},
		{"three claimed, two carried", []int32{0, 1}, 3, 2},
		{"relative offsets out of order", []int32{0, 2, 1}, 3, 2},
	} {
		if p := produce(headerBatch(tc.deltas, tc.count, tc.lastOffsetDelta, 1002)); p.ErrorCode != kerr.InvalidRecord.Code {
			t.Errorf("%s: error %v, want INVALID_RECORD", tc.name, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	// Nothing was stored: the next good batch gets offset 0. Its header
	// claims a far future maxTimestamp, which the broker replaces by its
	// records' largest, as Kafka does.
	p := produce(headerBatch([]int32{0, 1, 2}, 3, 2, 1<<50))
	if p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("good batch: error %v at offset %d, want offset 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes, fetch.MaxWaitMillis = 1<<20, 10
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "lying", TopicID: md.Topics["lying"].ID,
		Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, LogStartOffset: -1, CurrentLeaderEpoch: -1}}}}
	resp, err := cl.RequestBroker(ctx, 0, fetch)
	if err != nil {
		t.Fatal(err)
	}
	fp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	var got kmsg.RecordBatch
	if err := got.ReadFrom(fp.RecordBatches); err != nil {
		t.Fatalf("fetch: %v (error %v, %d bytes)", err, kerr.ErrorForCode(fp.ErrorCode), len(fp.RecordBatches))
	}
	if fp.HighWatermark != 3 || got.FirstOffset != 0 || got.MaxTimestamp != 1002 {
		t.Fatalf("stored: high watermark %d, batch at %d with maxTimestamp %d; want 3, 0, 1002", fp.HighWatermark, got.FirstOffset, got.MaxTimestamp)
	}
}
