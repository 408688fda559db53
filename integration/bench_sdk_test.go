package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
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

// Our producer and consumer against franz-go's kgo, per codec (issue 20),
// in the same run, with the same settings on both sides and each codec at
// its default level on both sides. Kafka's defaults (KIP-390: gzip -1, lz4
// 9, zstd 3) and kgo's (gzip's default, lz4's fast mode, zstd's default
// speed) are the same compressors: Java's lz4 level 9 is lz4-java's fast
// compressor, and zstd level 3 is klauspost's SpeedDefault.

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

// Shared settings of the producer benchmark: 8 partitions, acks=all,
// idempotence (both clients' default), 1 MiB batches, linger 10 ms, and
// 32 MiB of records waiting to be sent (buffer.memory's default; kgo's
// MaxBufferedBytes, where produceRate alone bounds only the record count).
const (
	codecBenchPartitions = 8
	codecBenchBatch      = 1 << 20
	codecBenchLinger     = 10 * time.Millisecond
	codecBenchBuffer     = 32 << 20
)

// BenchmarkProducerVsKgo: per codec, our producer and kgo each send the
// same N records (codecBenchValue; 1,000,000 unless KAFKIT_BENCH_RECORDS
// says otherwise) to 8 partitions of our broker (on disk, default flush
// policy), acks=all, idempotent, 1 MiB batches, linger 10 ms. Which client
// goes first alternates between runs. In a -trace, the region "produce"
// spans each client's timed part (Send or Produce of every record, Flush).
//
//	go test -run '^$' -bench BenchmarkProducerVsKgo -benchtime 1x -count 3 ./integration/
func BenchmarkProducerVsKgo(b *testing.B) {
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
					func(n int) float64 { return ourProduceRate(b, br.Addr(), ours, codec.name, n, value) },
					func(n int) float64 {
						return produceRate(b, br.Addr(), theirs, n, value,
							kgo.ProducerLinger(codecBenchLinger), kgo.ProducerBatchCompression(codec.kgo),
							kgo.MaxBufferedBytes(codecBenchBuffer))
					})
			}
		})
	}
}

// produceRegion names the runtime/trace region of a producer benchmark's
// timed part.
const produceRegion = "produce"

// benchRuns counts each comparing benchmark's runs across -count, so which
// client goes first alternates between runs (-benchtime 1x prints one
// line, hence one ratio, per run).
var benchRuns = map[string]*int{}

// traceSeq numbers the execution traces KAFKIT_BENCH_TRACE asks for.
var traceSeq int

// startTrace writes an execution trace to path until stop is called.
func startTrace(tb testing.TB, path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		trace.Stop()
		f.Close()
	}
}

// compareRates measures both clients, each running n records on a settled
// heap, in the order of this run (see alternate), and reports both rates
// and their ratio, and the CPU time this process spent per record during
// each (the in-process broker's share included, which is the same work for
// both): on a machine shared with other jobs the wall-clock rates swing
// with the load, CPU per record much less. With them go how many CPUs the
// process kept busy on average during each client's run (<client>_cpus)
// and how many the machine's other processes did meanwhile
// (<client>_others_cpus, from /proc/stat): the two clients run at different
// times, and a client that keeps more CPUs busy loses more of its rate to
// the same load. On the 2-CPU machine our consumer keeps ~1.6 busy and kgo
// ~1.15 (kgo waits for each Fetch before it decodes the next), so other
// processes taking half a CPU while ours runs cost ours a fifth of its rate
// and kgo none; a run where ours_others_cpus is well above kgo_others_cpus
// compares the clients under unlike conditions, whatever its ratio says.
// The bytes the process allocated per record (<client>_B/rec, the broker's
// share included) and the garbage collections (<client>_gcs) during each
// client's run do not swing with the load: most of a consumer's CPU per
// record beyond decoding is zeroing, copying and collecting what it
// allocates.
//
// Before a benchmark's first run in the process both clients run n/5
// records unmeasured: the first client to run in a fresh process pays for
// growing the heap and faulting in memory and code (its CPU per record was
// 1.2-1.8× that of later runs), which the alternating order puts on ours
// in a benchmark's first run. KAFKIT_BENCH_CLIENT=ours (or kgo) measures
// that client alone, so that a -cpuprofile holds only its runs (kgo's
// connection goroutines do not carry the pprof label set below), and
// KAFKIT_BENCH_TRACE=dir writes an execution trace of each client's run
// to dir/<client>-<n>.trace, for `go tool trace`: where the run waited
// (on the network, on the broker, on the garbage collector).
func compareRates(b *testing.B, n int, ours, kgo func(n int) float64) {
	type client struct {
		name         string
		run          func(n int) float64
		rate         float64
		cpu          time.Duration
		cpus, others float64 // CPUs this process and the machine's other processes kept busy on average meanwhile
		alloc        uint64  // bytes this process allocated meanwhile
		gcs          uint32  // garbage collections meanwhile
	}
	clients := []*client{{name: "ours", run: ours}, {name: "kgo", run: kgo}}
	if only := os.Getenv("KAFKIT_BENCH_CLIENT"); only != "" {
		clients = slices.DeleteFunc(clients, func(c *client) bool { return c.name != only })
	}
	runs := benchRuns[b.Name()]
	if runs == nil {
		runs = new(int)
		benchRuns[b.Name()] = runs
		b.StopTimer()
		for _, c := range clients {
			settle()
			c.run(max(n/5, 1))
		}
		b.StartTimer()
	}
	var measures []func()
	for _, c := range clients {
		measures = append(measures, func() {
			if dir := os.Getenv("KAFKIT_BENCH_TRACE"); dir != "" {
				stop := startTrace(b, fmt.Sprintf("%s/%s-%d.trace", dir, c.name, traceSeq))
				traceSeq++
				defer stop()
			}
			var mem runtime.MemStats
			runtime.ReadMemStats(&mem)
			alloc, gcs := mem.TotalAlloc, mem.NumGC
			before, machine, start := processCPU(b, os.Getpid()), machineCPU(b), time.Now()
			// The label marks the client's goroutines (those it starts
			// inherit it, the broker's do not) in a -cpuprofile, so that
			// `go tool pprof -tagfocus client=ours` shows one client's CPU.
			pprof.Do(context.Background(), pprof.Labels("client", c.name), func(context.Context) { c.rate = c.run(n) })
			c.cpu = processCPU(b, os.Getpid()) - before
			wall := float64(time.Since(start))
			c.cpus, c.others = float64(c.cpu)/wall, max(0, float64(machineCPU(b)-machine-c.cpu)/wall)
			runtime.ReadMemStats(&mem)
			c.alloc, c.gcs = mem.TotalAlloc-alloc, mem.NumGC-gcs
		})
	}
	if len(measures) == 2 {
		alternate(runs, measures[0], measures[1])
	} else {
		settle()
		measures[0]()
	}
	for _, c := range clients {
		b.ReportMetric(c.rate, c.name+"_rec/s")
		b.ReportMetric(float64(c.cpu.Nanoseconds())/float64(n), c.name+"_cpu_ns/rec")
		b.ReportMetric(c.cpus, c.name+"_cpus")
		b.ReportMetric(c.others, c.name+"_others_cpus")
		b.ReportMetric(float64(c.alloc)/float64(n), c.name+"_B/rec")
		b.ReportMetric(float64(c.gcs), c.name+"_gcs")
	}
	if len(clients) == 2 {
		b.ReportMetric(clients[0].rate/clients[1].rate, "ratio")
	}
}

// firstErr keeps the first error a produce callback reports.
type firstErr chan error

func newFirstErr() firstErr { return make(firstErr, 1) }

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

// ourProduceRate sends n records of value with our producer, compressed
// with codec, at the producer benchmark's settings, and returns records/s.
// max.request.size, which kgo does not have, stays at Kafka's default
// (1 MiB: a full uncompressed batch per request, as Java's producer sends
// it); at 10 MiB, which this benchmark set until session 15, up to 8 batches
// went per request, so up to all of buffer.memory was encoded and in flight
// at once besides the records, and the process's peak heap and page faults
// doubled (issue 20, session 15 in the README).
func ourProduceRate(tb testing.TB, addr, topic, codec string, n int, value []byte) float64 {
	ctx := context.Background()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, Linger: codecBenchLinger,
		BatchSize: codecBenchBatch, BufferMemory: codecBenchBuffer, CompressionType: codec})
	if err != nil {
		tb.Fatal(err)
	}
	errs := newFirstErr()
	cb := func(_ *kafkit.Record, err error) { errs.set(err) }
	start := time.Now()
	region := trace.StartRegion(ctx, produceRegion)
	for range n {
		if err := p.Send(ctx, &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Value: value}, cb); err != nil {
			tb.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	region.End()
	if err := p.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	errs.check(tb)
	return float64(n) / elapsed.Seconds()
}

// BenchmarkConsumerVsKgo: our consumer and kgo each read the same N
// records from 8 partitions of our broker (on disk), groupless, from the
// start, in the same run, with the same settings; which client goes first
// alternates between runs. Each run also reports the CPU time per record
// this process spent during each client's read (the broker's share
// included), and a -cpuprofile tells the two clients apart by the label
// client=ours|kgo (compareRates).
//
// "defaults" and "tuned" (issue 16) read 2,000,000 records of 100 bytes
// written by kgo in 1 MiB batches, uncompressed. "defaults" runs both
// clients at their defaults (ours: max.poll.records 500, 1 MiB per
// partition, 50 MiB per fetch; kgo: the same fetch sizes, every buffered
// record per PollFetches). "tuned" sets both the same way: 10 MiB per
// partition, 50 MiB per fetch, up to 10,000 records per poll (kgo's
// PollRecords).
//
// "codec/<codec>" (issue 20) reads the producer benchmark's 1,000,000
// records, written by kgo with that codec in 1 MiB batches, at Kafka's (and
// kgo's) default fetch sizes, up to 10,000 records per poll.
//
//	go test -run '^$' -bench BenchmarkConsumerVsKgo -benchtime 1x -count 3 ./integration/
func BenchmarkConsumerVsKgo(b *testing.B) {
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
			n := sdkBenchRecords(2_000_000)
			value := bytes.Repeat([]byte("v"), 100)
			for i := 0; i < b.N; i++ {
				addr, topic := preloaded(b, "consume-"+strconv.Itoa(i), n, value, kgo.NoCompression())
				compareRates(b, n,
					func(n int) float64 { return ourConsumeRate(b, addr, topic, n, tc.ours) },
					func(n int) float64 { return kgoConsumeRate(b, addr, topic, n, tc.max, tc.kgo...) })
			}
		})
	}
	b.Run("codec", func(b *testing.B) {
		n := sdkBenchRecords(1_000_000)
		value := codecBenchValue()
		for _, codec := range benchCodecs {
			b.Run(codec.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					addr, topic := preloaded(b, "consume-"+strconv.Itoa(i), n, value, codec.kgo)
					compareRates(b, n,
						func(n int) float64 {
							return ourConsumeRate(b, addr, topic, n, consumer.Config{MaxPollRecords: codecBenchPoll})
						},
						func(n int) float64 { return kgoConsumeRate(b, addr, topic, n, codecBenchPoll) })
				}
			})
		}
	})
}

const codecBenchPoll = 10_000

// preloaded starts our broker (on disk) with a topic of 8 partitions holding
// n records of value written by kgo in 1 MiB batches with codec, and
// returns its address; the benchmark timer is stopped meanwhile.
func preloaded(b *testing.B, topic string, n int, value []byte, codec kgo.CompressionCodec) (addr, _ string) {
	b.StopTimer()
	defer b.StartTimer()
	br := broker.NewTest(b, broker.OnDisk())
	createTopic(b, br.Addr(), topic, 8)
	produceRate(b, br.Addr(), topic, n, value, kgo.ProducerBatchCompression(codec))
	// One read of everything first, not measured, so that neither client
	// pays for the broker's first read of the segments just written: in
	// four runs without it (under load) the client measured second was
	// the faster every time, by 1.3 to 1.5 times, whichever it was.
	kgoConsumeRate(b, br.Addr(), topic, n, 0)
	return br.Addr(), topic
}

// ourConsumeRate reads n records of topic with our consumer at cfg and
// returns records/s. The clock starts before the consumer is made, as
// kgoConsumeRate's starts before kgo's first poll, which connects, learns
// the metadata and looks the start offsets up: ours does those in New and
// SeekToBeginning (1-5 ms under load), which the clock left out until
// session 16.
func ourConsumeRate(tb testing.TB, addr, topic string, n int, cfg consumer.Config) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg.BootstrapServers = []string{addr}
	start := time.Now()
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
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		if err != nil {
			tb.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		got += len(recs)
	}
	return float64(n) / time.Since(start).Seconds()
}
