package producer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
)

// BenchmarkAccumulatorAppend measures Send's share of the hot path: append
// into per-partition batches in wire format. A simulated sender completes
// the batches every 8192 records, outside the timer.
func BenchmarkAccumulatorAppend(b *testing.B) {
	s := Config{BootstrapServers: []string{"x:1"}, BufferMemory: 1 << 40}.settings()
	a := newAccumulator(&s, func() {})
	var pqs []*partQueue
	for i := range 12 {
		pqs = append(pqs, a.queue(kafkit.TopicPartition{Topic: "t", Partition: int32(i)}))
	}
	recs := make([]kafkit.Record, 8192)
	for i := range recs {
		recs[i] = kafkit.Record{Topic: "t", Partition: int32(i % 12), Key: []byte("key-0000"), Value: make([]byte, 100), Timestamp: time.UnixMilli(1)}
	}
	ctx, deadline := context.Background(), time.Now().Add(time.Hour)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := &recs[n%len(recs)]
		if err := a.append(ctx, deadline, pqs[r.Partition], pending{rec: r}); err != nil {
			b.Fatal(err)
		}
		n++
		if n%len(recs) == 0 {
			b.StopTimer()
			for _, batches := range a.close() {
				for _, bt := range batches {
					a.complete(bt)
				}
			}
			a.partsMu.Lock()
			a.closed = false
			a.partsMu.Unlock()
			for _, pq := range pqs {
				pq.closed = false
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkProduceVsKgo produces the same records through kafkit's producer
// and franz-go's kgo to one kfake broker (12 partitions, acks=all,
// idempotent, batch.size 16384, linger 5ms, 100-byte keyless values) and
// reports each one's records/s and the ratio kafkit/kgo. kfake is in the
// same process, so absolute numbers are low; the ratio is the point.
func BenchmarkProduceVsKgo(b *testing.B) {
	const perIter = 50_000
	c := newCluster(b, kfake.SeedTopics(12, "ours", "kgo"))
	p := newProducer(b, c, Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(16384),
		kgo.ProducerLinger(5*time.Millisecond), kgo.DefaultProduceTopic("kgo"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 100)
	ctx := context.Background()
	var ours, theirs time.Duration
	var failed atomic.Int64
	for b.Loop() {
		start := time.Now()
		for range perIter {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		theirs += time.Since(start)
		start = time.Now()
		for range perIter {
			r := &kafkit.Record{Topic: "ours", Partition: kafkit.AnyPartition, Value: value}
			if err := p.Send(ctx, r, func(_ *kafkit.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			}); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

	}
	if failed.Load() > 0 {
		b.Fatalf("%d records failed", failed.Load())
	}
	total := float64(perIter * b.N)
	b.ReportMetric(total/ours.Seconds(), "kafkit-records/s")
	b.ReportMetric(total/theirs.Seconds(), "kgo-records/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
}
