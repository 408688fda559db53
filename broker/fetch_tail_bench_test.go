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
// 100-byte record to one of 8 partitions and fetches all 8 at their log end
// offsets, which returns that batch (the others have nothing), as
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
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.SessionEpoch, req.MaxBytes, req.MinBytes = -1, -1, 50<<20, 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "tail", tp.id
	for p := range int32(parts) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p := i % parts
		i++
		log := tp.partitions[p].log
		end := log.EndOffset()
		if _, err := log.Append(batch(), time.Now(), 0); err != nil {
			b.Fatal(err)
		}
		for j := range rt.Partitions {
			req.Topics[0].Partitions[j].FetchOffset = tp.partitions[j].log.EndOffset()
		}
		req.Topics[0].Partitions[p].FetchOffset = end
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for _, rp := range resp.Topics[0].Partitions {
			got += len(rp.RecordBatches)
		}
		if got == 0 {
			b.Fatal("fetched nothing")
		}
	}
}
