package integration

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// The per-codec benchmarks of issue 20: our producer and consumer against
// franz-go's kgo, in the same run, with the same settings on both sides and
// each codec at its default level on both sides. Kafka's defaults (KIP-390:
// gzip -1, lz4 9, zstd 3) and kgo's (gzip's default, lz4's fast mode, zstd's
// default speed) are the same compressors: Java's lz4 level 9 is lz4-java's
// fast compressor, and zstd level 3 is klauspost's SpeedDefault.

// benchCodec pairs a compression.type with kgo's codec at its default level.
type benchCodec struct {
	name string
	kgo  kgo.CompressionCodec
}

var benchCodecs = []benchCodec{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// codecBenchValue is the records' value: 100 random capital letters, made
// once and sent as every record's value, as kafka-producer-perf-test makes
// its payload (and as issue 20 measured). Values drawn afresh per record
// would not compress with snappy or lz4 (random letters repeat no 4-byte
// run within their windows), and kgo sends batches that do not shrink
// uncompressed, so the two clients would no longer do the same work.
func codecBenchValue() []byte {
	rng := rand.New(rand.NewPCG(20, 20))
	v := make([]byte, 100)
	for i := range v {
		v[i] = 'A' + byte(rng.IntN(26))
	}
	return v
}

// Shared settings of the codec benchmarks: 8 partitions, acks=all,
// idempotence (both clients' default), 1 MiB batches, linger 10 ms.
const (
	codecBenchPartitions = 8
	codecBenchBatch      = 1 << 20
	codecBenchLinger     = 10 * time.Millisecond
)

// BenchmarkProducerCodecVsKgo: our producer and kgo each send the same N
// records (codecBenchValue; 1,000,000 unless KAFKIT_BENCH_RECORDS says
// otherwise) to our broker (on disk) per codec.
// Which client goes first alternates between runs.
//
//	go test -run '^$' -bench BenchmarkProducerCodecVsKgo -benchtime 1x -count 3 ./integration/
func BenchmarkProducerCodecVsKgo(b *testing.B) {
	n := sdkBenchRecords(1_000_000)
	value := codecBenchValue()
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				br := broker.NewTest(b, broker.OnDisk())
				ours, theirs := "ours-"+strconv.Itoa(i), "kgo-"+strconv.Itoa(i)
				createTopic(b, br.Addr(), ours, codecBenchPartitions)
				createTopic(b, br.Addr(), theirs, codecBenchPartitions)
				b.StartTimer()

				compareRates(b, n,
					func() float64 { return ourCodecProduceRate(b, br.Addr(), ours, codec.name, n, value) },
					func() float64 { return kgoCodecProduceRate(b, br.Addr(), theirs, codec.kgo, n, value) })
			}
		})
	}
}

// codecBenchRuns counts each codec benchmark's runs across -count, so
// which client goes first alternates between runs (-count 3 -benchtime 1x
// prints one line, hence one ratio, per run).
var codecBenchRuns = map[string]int{}

// compareRates measures both clients, each on a settled heap, in the
// order of this run, and reports both rates and their ratio, and the CPU
// time this process spent per record during each (the broker's share
// included, which is the same work for both): on a machine shared with
// other jobs the wall-clock rates swing with the load, CPU per record much
// less.
func compareRates(b *testing.B, n int, ours, kgo func() float64) {
	codecBenchRuns[b.Name()]++
	var oursRate, kgoRate float64
	var oursCPU, kgoCPU time.Duration
	measure := func(client string, rate *float64, cpu *time.Duration, run func() float64) func() {
		return func() {
			settle()
			before := processCPU(b, os.Getpid())
			// The label marks the client's goroutines (those it starts
			// inherit it, the broker's do not) in a -cpuprofile, so that
			// `go tool pprof -tagfocus client=ours` shows one client's CPU.
			pprof.Do(context.Background(), pprof.Labels("client", client), func(context.Context) { *rate = run() })
			*cpu = processCPU(b, os.Getpid()) - before
		}
	}
	first, second := measure("ours", &oursRate, &oursCPU, ours), measure("kgo", &kgoRate, &kgoCPU, kgo)
	if codecBenchRuns[b.Name()]%2 == 0 {
		first, second = second, first
	}
	first()
	second()
	b.ReportMetric(oursRate, "ours_rec/s")
	b.ReportMetric(kgoRate, "kgo_rec/s")
	b.ReportMetric(oursRate/kgoRate, "ratio")
	b.ReportMetric(float64(oursCPU.Nanoseconds())/float64(n), "ours_cpu_ns/rec")
	b.ReportMetric(float64(kgoCPU.Nanoseconds())/float64(n), "kgo_cpu_ns/rec")
}

// firstErr keeps the first error a produce callback reports.
type firstErr chan error

func (e firstErr) set(err error) {
	if err != nil {
		select {
		case e <- err:
		default:
		}
	}
}

func (e firstErr) check(tb testing.TB) {
	select {
	case err := <-e:
		tb.Fatalf("produce: %v", err)
	default:
	}
}

func ourCodecProduceRate(tb testing.TB, addr, topic, codec string, n int, value []byte) float64 {
	ctx := context.Background()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, Linger: codecBenchLinger,
		BatchSize: codecBenchBatch, MaxRequestSize: 10 << 20, CompressionType: codec})
	if err != nil {
		tb.Fatal(err)
	}
	errs := make(firstErr, 1)
	cb := func(_ *kafkit.Record, err error) { errs.set(err) }
	start := time.Now()
	for range n {
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
	errs.check(tb)
	return float64(n) / elapsed.Seconds()
}

func kgoCodecProduceRate(tb testing.TB, addr, topic string, codec kgo.CompressionCodec, n int, value []byte) float64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(codecBenchLinger), kgo.ProducerBatchMaxBytes(codecBenchBatch), kgo.MaxBufferedRecords(1<<20),
		kgo.ProducerBatchCompression(codec))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	errs := make(firstErr, 1)
	cb := func(_ *kgo.Record, err error) { errs.set(err) }
	start := time.Now()
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: value}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	errs.check(tb)
	return float64(n) / elapsed.Seconds()
}

// BenchmarkConsumerCodecVsKgo: per codec, kgo writes N records (as above,
// 1 MiB batches) to 8 partitions of our broker, then our consumer and kgo
// each read them all from the start, in alternating order. Both use Kafka's
// (and kgo's) default fetch sizes, fetch.max.bytes 50 MiB and
// max.partition.fetch.bytes 1 MiB, and take up to 10,000 records a poll.
//
//	go test -run '^$' -bench BenchmarkConsumerCodecVsKgo -benchtime 1x -count 3 ./integration/
func BenchmarkConsumerCodecVsKgo(b *testing.B) {
	n := sdkBenchRecords(1_000_000)
	value := codecBenchValue()
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				br := broker.NewTest(b, broker.OnDisk())
				topic := "consume-" + strconv.Itoa(i)
				createTopic(b, br.Addr(), topic, codecBenchPartitions)
				kgoCodecProduceRate(b, br.Addr(), topic, codec.kgo, n, value)
				b.StartTimer()

				compareRates(b, n,
					func() float64 {
						return ourConsumeRate(b, br.Addr(), topic, n, consumer.Config{MaxPollRecords: codecBenchPoll})
					},
					func() float64 { return kgoConsumeRate(b, br.Addr(), topic, n, codecBenchPoll) })
			}
		})
	}
}

const codecBenchPoll = 10_000
