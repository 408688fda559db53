package producer

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
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
	ctx, deadline := context.Background(), &blockDeadline{at: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := &recs[n%len(recs)]
		if err := a.append(ctx, deadline, pqs[r.Partition], pending{rec: r}, 1, recordbatch.PayloadLen(r.Key, r.Value, nil), nil); err != nil {
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
// and franz-go's kgo (12 partitions, acks=all, idempotent, batch.size
// 16384, linger 5ms, no compression, 100-byte keyless values) and reports
// each one's records/s and the ratio kafkit/kgo. By default both go to an
// in-process kfake broker, which shares the CPU, so the ratio is the point;
// set KAFKA_BOOTSTRAP=host:port to run against a real broker instead (the
// topics kafkit-bench-ours and kafkit-bench-kgo are created if missing).
func BenchmarkProduceVsKgo(b *testing.B) {
	const perIter = 50_000
	ours, theirs := "ours", "kgo"
	bootstrap := strings.Split(os.Getenv("KAFKA_BOOTSTRAP"), ",")
	if bootstrap[0] == "" {
		bootstrap = newCluster(b, kfake.SeedTopics(12, ours, theirs)).ListenAddrs()
	} else {
		ours, theirs = "kafkit-bench-ours", "kafkit-bench-kgo"
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ProducerBatchMaxBytes(16384),
		kgo.ProducerLinger(5*time.Millisecond), kgo.DefaultProduceTopic(theirs), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if ours != "ours" {
		createTopics(b, cl, 12, ours, theirs)
	}
	p, err := New(Config{BootstrapServers: bootstrap})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	value := make([]byte, 100)
	ctx := context.Background()
	var oursTook, theirsTook time.Duration
	var failed atomic.Int64
	runKgo := func() {
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
		theirsTook += time.Since(start)
	}
	runOurs := func() {
		start := time.Now()
		for range perIter {
			r := &kafkit.Record{Topic: ours, Partition: kafkit.AnyPartition, Value: value}
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
		oursTook += time.Since(start)
	}
	// Alternate who goes first, so neither always pays for the other's
	// garbage collection.
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			runKgo()
			runOurs()
		} else {
			runOurs()
			runKgo()
		}
	}
	if failed.Load() > 0 {
		b.Fatalf("%d records failed", failed.Load())
	}
	total := float64(perIter * b.N)
	b.ReportMetric(total/oursTook.Seconds(), "kafkit-records/s")
	b.ReportMetric(total/theirsTook.Seconds(), "kgo-records/s")
	b.ReportMetric(theirsTook.Seconds()/oursTook.Seconds(), "ratio")
}

// createTopics creates topics on a real cluster, accepting existing ones.
func createTopics(b *testing.B, cl *kgo.Client, partitions int32, topics ...string) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, partitions, -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			b.Fatalf("creating %s: %v", t.Topic, err)
		}
	}
}

// BenchmarkSendPath measures Send's own path per codec, without a
// network: a producer whose topic metadata is set by hand (8 partitions,
// 100-byte keyless values of capital letters, 1 MiB batches, the default
// partitioner) and no sender; every 64Ki records the batches are finished
// and completed as the sender would, outside the timer. Sealed batches
// compress on their goroutines meanwhile, so ns/op includes their share of
// the two cores, and allocs/op counts the allocations of Send and of
// sealing per record (the caller's record is made before the loop).
//
//	go test -run '^$' -bench BenchmarkSendPath -benchmem ./producer/
func BenchmarkSendPath(b *testing.B) {
	const topic, drainEvery = "t", 1 << 16
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'A' + byte(i*7%26)
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		b.Run(codec, func(b *testing.B) {
			p := newOfflineProducer(Config{BatchSize: 1 << 20, BufferMemory: 1 << 40, CompressionType: codec}, topic, make([]int32, 8))
			recs := make([]kafkit.Record, drainEvery)
			ctx := context.Background()
			drain := func() {
				for _, batches := range p.acc.close() {
					for _, bt := range batches {
						for p.acc.sealing(bt) {
							<-bt.sealed
						}
						raw, err := p.acc.finish(bt, recordbatch.NoProducer())
						if err != nil {
							b.Fatal(err)
						}
						bt.raw = raw
						p.acc.complete(bt)
					}
				}
				p.acc.partsMu.Lock()
				p.acc.closed = false
				p.acc.partsMu.Unlock()
				for _, pq := range p.acc.parts.Load().list {
					pq.closed = false
				}
				clear(recs)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				r := &recs[n%drainEvery]
				r.Topic, r.Partition, r.Value = topic, kafkit.AnyPartition, value
				if err := p.Send(ctx, r, nil); err != nil {
					b.Fatal(err)
				}
				if n++; n%drainEvery == 0 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			drain()
		})
	}
}

// BenchmarkSeal measures what sealing a full 1 MiB batch costs per record
// with each codec: encoding its records and compressing them into a
// recycled buffer (accumulator.compress), on one goroutine ("none": the
// encoding alone, accumulator.finish), the records
// being the integration benchmarks' (100 random capital letters, keyless).
// The records are made together and sealed again and again, so they and the
// buffers stay in the cache, where a producer's were written by Send
// milliseconds earlier: this is the CPU of the work itself, for A/B of the
// sealing code (issue 20); ns/record is wall time, so run it at a raised
// priority or compare the CPU time of whole runs on a shared machine.
//
//	go test -run '^$' -bench BenchmarkSeal ./producer/
func BenchmarkSeal(b *testing.B) {
	rng := rand.New(rand.NewPCG(20, 20))
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'A' + byte(rng.IntN(26))
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		b.Run(codec, func(b *testing.B) {
			s := Config{BootstrapServers: []string{"x:1"}, BatchSize: 1 << 20, CompressionType: codec}.settings()
			a := newAccumulator(&s, func() {})
			bt := &batch{}
			now := time.Now()
			for i := 0; ; i++ {
				r := &kafkit.Record{Value: value, Timestamp: now.Add(time.Duration(i/8) * time.Millisecond)}
				if bt.sizer.TryAdd(s.BatchSize, r.Timestamp.UnixMilli(), recordbatch.PayloadLen(nil, value, nil)) == 0 {
					break
				}
				bt.records = append(bt.records, pending{rec: r})
			}
			b.ReportAllocs()
			for b.Loop() {
				if codec == "none" { // the sender encodes it as it drains it
					raw, err := a.finish(bt, recordbatch.NoProducer())
					if err != nil {
						b.Fatal(err)
					}
					a.putBuf(raw)
					continue
				}
				bt.sealed = make(chan struct{})
				a.sealSlots <- struct{}{} // compress gives it back
				a.compress(bt)
				if bt.sealErr != nil {
					b.Fatal(bt.sealErr)
				}
				a.putBuf(bt.sealedRaw)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(bt.records)), "ns/record")
		})
	}
}

// BenchmarkSendLinger0: one 100-byte record at a time with linger.ms 0 (a
// batch and a Produce request each), waiting for its acknowledgement
// before the next, against an in-process kfake broker: what a producer
// sending as records come costs per request. allocs/op counts the
// producer's, its client's and kfake's allocations; kfake's are the same
// for any producer.
//
//	go test -run '^$' -bench BenchmarkSendLinger0 -benchmem ./producer/
func BenchmarkSendLinger0(b *testing.B) {
	c := newCluster(b, kfake.SeedTopics(8, "t"))
	p := newProducer(b, c, Config{Linger: -1})
	defer p.Close(context.Background())
	value := make([]byte, 100)
	ctx := context.Background()
	acked := make(chan error, 1)
	cb := func(_ *kafkit.Record, err error) { acked <- err }
	r := &kafkit.Record{}
	for range 100 { // metadata, producer id, connections
		*r = kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: value}
		if err := p.Send(ctx, r, cb); err != nil {
			b.Fatal(err)
		}
		if err := <-acked; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		*r = kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: value}
		if err := p.Send(ctx, r, cb); err != nil {
			b.Fatal(err)
		}
		if err := <-acked; err != nil {
			b.Fatal(err)
		}
	}
}
