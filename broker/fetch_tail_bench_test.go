package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// BenchmarkFetchTail: what a consumer reading records as they arrive costs
// the broker per Fetch (on disk, over TCP). Each op appends one batch of one
// 100-byte record to one of 8 partitions and fetches it with an incremental
// Fetch of the session over all 8 (the others have nothing), as
// BenchmarkEndToEndLatency's consumer does 10,000 times a second.
//
//	go test -run '^$' -bench FetchTail -benchmem ./broker/
func BenchmarkFetchTail(b *testing.B) {
	const parts = 8
	br := NewTest(b, OnDisk())
	tp, err := br.topics.create(createSpec{name: "tail", partitions: parts, replicationFactor: 1})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	batch := func() []byte {
		bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
		bl.Append(time.Now().UnixMilli(), nil, value, nil)
		raw, err := bl.Finish(recordbatch.NoProducer())
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	// A log's worth of batches first, so that the end is far from the
	// segment's first index entry, as in a log written for a while.
	for p := range parts {
		for range 1000 {
			if _, err := tp.partitions[p].log.Append(batch(), time.Now(), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	cl := benchClient(b, br.Addr())
	// A fetch session over the 8 partitions (KIP-227), as consumers
	// keep: each incremental Fetch names the partitions whose fetch
	// offsets moved, the one just appended to and the previous one.
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.MinBytes, req.SessionEpoch = -1, 50<<20, 1, 0
	partReq := func(p int) kmsg.FetchRequestTopicPartition {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = int32(p), 1<<20, -1
		rp.FetchOffset = tp.partitions[p].log.EndOffset()
		return rp
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "tail", tp.id
	for p := range parts {
		rt.Partitions = append(rt.Partitions, partReq(p))
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.SessionID == 0 {
		b.Fatalf("opening a fetch session: %v (session %d)", err, resp.SessionID)
	}
	req.SessionID = resp.SessionID
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p := i % parts
		prev := (i + parts - 1) % parts
		i++
		req.SessionEpoch++
		req.Topics[0].Partitions = append(req.Topics[0].Partitions[:0], partReq(prev), partReq(p))
		if _, err := tp.partitions[p].log.Append(batch(), time.Now(), 0); err != nil {
			b.Fatal(err)
		}
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil || resp.ErrorCode != 0 {
			b.Fatalf("fetch: %v (error code %d)", err, resp.ErrorCode)
		}
		got := 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got += len(rp.RecordBatches)
			}
		}
		if got == 0 {
			b.Fatal("fetched nothing")
		}
	}
}
