package integration

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// sdkBenchRecords is the producer/consumer benchmarks' record count
// (1,000,000 for the producer, 2,000,000 for the consumer by the issues),
// shortened by KAFKIT_BENCH_RECORDS.
func sdkBenchRecords(def int) int {
	if n := benchRecords(); n != 2_000_000 {
		return n
	}
	return def
}

// settle returns the heap to the OS between the measured clients, so the
// second one does not run on the heap the first one grew.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// BenchmarkProducerVsKgo: our producer and franz-go's kgo against our broker
// (on disk, default flush policy) in the same run, same workload: N records
// of 100-byte values, 8 partitions, acks=all, idempotent, linger 5 ms, no
// compression, 1 MiB batches for both (the high-throughput setting each
// client's docs recommend).
//
//	go test -run '^$' -bench BenchmarkProducerVsKgo -benchtime 1x ./integration/
func BenchmarkProducerVsKgo(b *testing.B) {
	n := sdkBenchRecords(1_000_000)
	value := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := broker.NewTest(b, broker.OnDisk())
		ours, theirs := "ours-"+strconv.Itoa(i), "kgo-"+strconv.Itoa(i)
		createTopic(b, br.Addr(), ours, 8)
		createTopic(b, br.Addr(), theirs, 8)
		b.StartTimer()

		settle()
		oursRate := ourProduceRate(b, br.Addr(), ours, n, value)
		settle()
		kgoRate := produceRate(b, br.Addr(), theirs, n, value, kgo.ProducerLinger(5*time.Millisecond),
			kgo.ProducerBatchCompression(kgo.NoCompression())) // kgo compresses with snappy by default
		b.ReportMetric(oursRate, "ours_rec/s")
		b.ReportMetric(kgoRate, "kgo_rec/s")
		b.ReportMetric(oursRate/kgoRate, "ratio")
	}
}

func ourProduceRate(tb testing.TB, addr, topic string, n int, value []byte) float64 {
	ctx := context.Background()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, Linger: 5 * time.Millisecond, BatchSize: 1 << 20, MaxRequestSize: 10 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	errs := make(chan error, 1)
	cb := func(_ *kafkit.Record, err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Value: value}, cb); err != nil {
			tb.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := p.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-errs:
		tb.Fatalf("produce: %v", err)
	default:
	}
	return float64(n) / elapsed.Seconds()
}

// BenchmarkConsumerVsKgo: our consumer and kgo each read the same N records
// of 100 bytes (written by kgo in 1 MiB batches, uncompressed) from 8
// partitions of our broker, in the same run, groupless, from the start.
// "defaults" runs both clients at their defaults (ours: max.poll.records
// 500, 1 MiB per partition, 50 MiB per fetch; kgo: the same fetch sizes,
// every buffered record per PollFetches). "tuned" sets both the same way:
// 10 MiB per partition, 50 MiB per fetch, up to 10,000 records per poll
// (kgo's PollRecords). Which client goes first alternates between runs.
// Each run also reports the CPU time per record this process spent during
// each client's read (the broker's share included), and a -cpuprofile
// tells the two clients apart by the label client=ours|kgo (compareRates).
//
//	go test -run '^$' -bench BenchmarkConsumerVsKgo -benchtime 1x ./integration/
func BenchmarkConsumerVsKgo(b *testing.B) {
	n := sdkBenchRecords(2_000_000)
	for _, tc := range []struct {
		name string
		ours consumer.Config
		kgo  []kgo.Opt
		max  int // records per kgo poll; 0: all buffered
	}{
		{name: "defaults"},
		{
			name: "tuned",
			ours: consumer.Config{MaxPollRecords: 10000, FetchMaxBytes: 50 << 20, MaxPartitionFetchBytes: 10 << 20},
			kgo:  []kgo.Opt{kgo.FetchMaxBytes(50 << 20), kgo.FetchMaxPartitionBytes(10 << 20)},
			max:  10000,
		},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				addr, topic := preloaded(b, "consume-"+strconv.Itoa(i), n)
				compareRates(b, n,
					func() float64 { return ourConsumeRate(b, addr, topic, n, tc.ours) },
					func() float64 { return kgoConsumeRate(b, addr, topic, n, tc.max, tc.kgo...) })
			}
		})
	}
}

// preloaded starts our broker (on disk) with a topic of 8 partitions holding
// n records of 100 bytes written by kgo in 1 MiB batches, uncompressed, and
// returns its address; the benchmark timer is stopped meanwhile.
func preloaded(b *testing.B, topic string, n int) (addr, _ string) {
	b.StopTimer()
	defer b.StartTimer()
	br := broker.NewTest(b, broker.OnDisk())
	createTopic(b, br.Addr(), topic, 8)
	produceRate(b, br.Addr(), topic, n, bytes.Repeat([]byte("v"), 100), kgo.ProducerBatchCompression(kgo.NoCompression()))
	// One read of everything first, not measured, so that neither client
	// pays for the broker's first read of the segments just written: in
	// four runs without it (under load) the client measured second was
	// the faster every time, by 1.3 to 1.5 times, whichever it was.
	kgoConsumeRate(b, br.Addr(), topic, n, 0)
	return br.Addr(), topic
}

func ourConsumeRate(tb testing.TB, addr, topic string, n int, cfg consumer.Config) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg.BootstrapServers = []string{addr}
	c, err := consumer.New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(context.Background())
	var tps []kafkit.TopicPartition
	for p := int32(0); p < 8; p++ {
		tps = append(tps, kafkit.TopicPartition{Topic: topic, Partition: p})
	}
	if err := c.Assign(tps...); err != nil {
		tb.Fatal(err)
	}
	if err := c.SeekToBeginning(ctx, tps...); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		if err != nil {
			tb.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		got += len(recs)
	}
	return float64(n) / time.Since(start).Seconds()
}
