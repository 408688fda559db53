package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/trace"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// e2eRate and e2eDuration are BenchmarkEndToEndLatency's load: 10,000
// records/s for 10 s (KAFKIT_E2E_SECONDS shortens or lengthens a run).
const e2eRate = 10_000

func e2eDuration() time.Duration {
	if v, err := strconv.Atoi(os.Getenv("KAFKIT_E2E_SECONDS")); err == nil && v > 0 {
		return time.Duration(v) * time.Second
	}
	return 10 * time.Second
}

// e2ePartitions is the latency topics' partition count.
const e2ePartitions = 8

// latencies collects produce-to-poll latencies. The first 8 bytes of each
// record's value are the UnixNano at which it was handed to the producer;
// 0 marks a warm-up record, which is counted but not measured.
type latencies struct {
	got     atomic.Int64 // records seen, warm-up included
	samples []time.Duration
	// sent holds each sample's send time (UnixNano), kept only for
	// KAFKIT_BENCH_TRACE's record dump.
	sent []int64
	keep bool
}

func (l *latencies) record(value []byte, now time.Time) {
	l.got.Add(1)
	if sent := int64(binary.BigEndian.Uint64(value)); sent != 0 {
		l.samples = append(l.samples, now.Sub(time.Unix(0, sent)))
		if l.keep {
			l.sent = append(l.sent, sent)
		}
	}
}

// dump writes one line per measured record, "<sent UnixNano> <latency
// ns>", in the order the consumer saw them, to path.
func (l *latencies) dump(tb testing.TB, path string) {
	var b []byte
	for i, d := range l.samples {
		b = strconv.AppendInt(b, l.sent[i], 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, '\n')
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// percentile returns the q-quantile (0 < q < 1) in milliseconds.
func (l *latencies) percentile(q float64) float64 {
	s := slices.Clone(l.samples)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return float64(s[min(int(q*float64(len(s))), len(s)-1)]) / float64(time.Millisecond)
}

// e2eProduce sends warm-up records until the consumer has seen one, then
// e2eRate records/s for d, each stamped with the time it was sent, and
// returns how many records it sent in all.
func e2eProduce(tb testing.TB, l *latencies, d time.Duration, send func(value []byte)) int {
	tb.Helper()
	value := make([]byte, 100)
	deadline := time.Now().Add(30 * time.Second)
	warm := 0
	for ; l.got.Load() == 0; warm++ {
		if time.Now().After(deadline) {
			tb.Fatal("the consumer saw no warm-up record in 30 s")
		}
		send(value) // all zero: warm-up
		time.Sleep(10 * time.Millisecond)
	}
	n := int(d.Seconds() * e2eRate)
	interval := time.Second / e2eRate
	next := time.Now()
	for i := 0; i < n; i++ {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		v := make([]byte, 100)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		send(v)
		next = next.Add(interval)
	}
	return warm + n
}

// waitFor waits until the consumer has seen want records (warm-up
// included) or fails after a minute.
func (l *latencies) waitFor(tb testing.TB, want int64) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for l.got.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("consumed %d of %d records", l.got.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// e2eRuns counts BenchmarkEndToEndLatency's iterations across -count.
var e2eRuns int

// alternate runs ours and theirs (settling the heap before each) in that
// order on odd runs and reversed on even ones, counting runs in *n across
// -count, so neither client always meets the state the other left.
func alternate(n *int, ours, theirs func()) {
	runs := []func(){ours, theirs}
	if *n++; *n%2 == 0 {
		slices.Reverse(runs)
	}
	for _, run := range runs {
		settle()
		run()
	}
}

// BenchmarkEndToEndLatency: produce 10,000 records/s of 100 bytes for 10 s
// to 8 partitions of our broker (linger 0, acks=all, idempotent: both
// producers' defaults otherwise) while one consumer at its defaults reads
// them, and report the produce-to-poll latency's p50, p99 and p99.9 for our
// producer and consumer, and for kgo's, in the same run.
//
// KAFKIT_BENCH_TRACE=dir writes, per client and run, an execution trace
// (dir/e2e-<client>-<n>.trace) and every measured record's send time and
// latency (dir/e2e-<client>-<n>.records, "<UnixNano> <ns>" a line). The
// trace logs, in category "e2e", the wall clock ("clock", UnixNano) when
// the run starts, to line records up with trace events.
//
//	go test -run '^$' -bench BenchmarkEndToEndLatency -benchtime 1x ./integration/
func BenchmarkEndToEndLatency(b *testing.B) {
	d := e2eDuration()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := broker.NewTest(b, broker.OnDisk())
		ours, theirs := "e2e-ours-"+strconv.Itoa(i), "e2e-kgo-"+strconv.Itoa(i)
		createTopic(b, br.Addr(), ours, e2ePartitions)
		createTopic(b, br.Addr(), theirs, e2ePartitions)
		// A second of load first, so that whichever client is measured
		// first does not pay for warming the broker (and the process).
		createTopic(b, br.Addr(), "e2e-warm-"+strconv.Itoa(i), e2ePartitions)
		kgoLatency(b, br.Addr(), "e2e-warm-"+strconv.Itoa(i), time.Second)
		b.StartTimer()

		var o, k *latencies
		alternate(&e2eRuns,
			func() { o = tracedLatency(b, "ours", func() *latencies { return ourLatency(b, br.Addr(), ours, d) }) },
			func() { k = tracedLatency(b, "kgo", func() *latencies { return kgoLatency(b, br.Addr(), theirs, d) }) })
		for _, m := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p99", 0.99}, {"p99.9", 0.999}} {
			b.ReportMetric(o.percentile(m.q), "ours_"+m.name+"_ms")
			b.ReportMetric(k.percentile(m.q), "kgo_"+m.name+"_ms")
		}
		b.ReportMetric(o.percentile(0.5)/k.percentile(0.5), "p50_ratio")
	}
}

// tracedLatency runs one client's load (run), under KAFKIT_BENCH_TRACE
// tracing it and dumping its records (see BenchmarkEndToEndLatency).
func tracedLatency(tb testing.TB, client string, run func() *latencies) *latencies {
	dir := os.Getenv("KAFKIT_BENCH_TRACE")
	if dir == "" {
		return run()
	}
	base := fmt.Sprintf("%s/e2e-%s-%d", dir, client, traceSeq)
	traceSeq++
	stop := startTrace(tb, base+".trace")
	trace.Log(context.Background(), "e2e", "clock "+strconv.FormatInt(time.Now().UnixNano(), 10))
	e2eKeep = true
	l := run()
	e2eKeep = false
	stop()
	l.dump(tb, base+".records")
	return l
}

// e2eKeep makes e2eLatency keep each record's send time (tracedLatency).
var e2eKeep bool

// ourLatency runs the load through our producer and a consumer assigned
// every partition of topic, both at their defaults (linger 0 aside).
func ourLatency(tb testing.TB, addr, topic string, d time.Duration) *latencies {
	return e2eLatency(tb, addr, topic, d, ourE2EConsumer, ourE2EProducer)
}

// kgoLatency runs the load through kgo's producer and consumer (groupless,
// from the start of the new topic), both at their defaults (linger 0
// aside).
func kgoLatency(tb testing.TB, addr, topic string, d time.Duration) *latencies {
	return e2eLatency(tb, addr, topic, d, kgoE2EConsumer, kgoE2EProducer)
}

// An e2eConsumer starts a consumer of every partition of topic that records
// each record's latency in l until ctx ends, then sends its outcome on the
// channel it returns.
type e2eConsumer func(tb testing.TB, ctx context.Context, addr, topic string, l *latencies) <-chan error

// An e2eProducer returns a function sending one record to topic (linger 0);
// the producer closes when the test ends.
type e2eProducer func(tb testing.TB, ctx context.Context, addr, topic string) func(value []byte)

// e2eLatency runs the load of d through produce and consume and returns
// the latencies seen.
func e2eLatency(tb testing.TB, addr, topic string, d time.Duration, consume e2eConsumer, produce e2eProducer) *latencies {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &latencies{keep: e2eKeep}
	done := consume(tb, ctx, addr, topic, l)
	l.waitFor(tb, int64(e2eProduce(tb, l, d, produce(tb, ctx, addr, topic))))
	cancel()
	if err := <-done; err != nil && err != context.Canceled {
		tb.Fatal(err)
	}
	return l
}

func ourE2EConsumer(tb testing.TB, ctx context.Context, addr, topic string, l *latencies) <-chan error {
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{addr}, AutoOffsetReset: consumer.OffsetResetEarliest})
	if err != nil {
		tb.Fatal(err)
	}
	var tps []kafkit.TopicPartition
	for p := int32(0); p < e2ePartitions; p++ {
		tps = append(tps, kafkit.TopicPartition{Topic: topic, Partition: p})
	}
	if err := c.Assign(tps...); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil && ctx.Err() == nil {
			var recs []*kafkit.Record
			recs, err = c.Poll(ctx)
			now := time.Now()
			for _, r := range recs {
				l.record(r.Value, now)
			}
		}
		c.Close(context.Background())
		done <- err
	}()
	return done
}

func ourE2EProducer(tb testing.TB, ctx context.Context, addr, topic string) func([]byte) {
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, Linger: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return func(v []byte) {
		if err := p.Send(ctx, &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Value: v}, nil); err != nil {
			tb.Error(err)
		}
	}
}

func kgoE2EConsumer(tb testing.TB, ctx context.Context, addr, topic string, l *latencies) <-chan error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil {
				break
			}
			err = fs.Err()
			fs.EachRecord(func(r *kgo.Record) { l.record(r.Value, now) })
		}
		cl.Close()
		done <- err
	}()
	return done
}

func kgoE2EProducer(tb testing.TB, ctx context.Context, addr, topic string) func([]byte) {
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return func(v []byte) { p.Produce(ctx, &kgo.Record{Value: v}, nil) }
}

// BenchmarkEndToEndLatencyCross runs BenchmarkEndToEndLatency's load
// through each producer with each consumer (ours and kgo's), in an order
// that rotates between runs, to tell which side a difference comes from.
// KAFKIT_BENCH_CLIENT=<pair> (ours, kgo, oursP_kgoC, kgoP_oursC) runs that
// pair alone, so that a -memprofile or -cpuprofile holds only its run (and
// the second of kgo's load warming the broker).
//
//	go test -run '^$' -bench BenchmarkEndToEndLatencyCross -benchtime 1x ./integration/
func BenchmarkEndToEndLatencyCross(b *testing.B) {
	d := e2eDuration()
	type pair struct {
		name    string
		produce e2eProducer
		consume e2eConsumer
	}
	pairs := []pair{
		{"ours", ourE2EProducer, ourE2EConsumer},
		{"kgo", kgoE2EProducer, kgoE2EConsumer},
		{"oursP_kgoC", ourE2EProducer, kgoE2EConsumer},
		{"kgoP_oursC", kgoE2EProducer, ourE2EConsumer},
	}
	if only := os.Getenv("KAFKIT_BENCH_CLIENT"); only != "" {
		pairs = slices.DeleteFunc(pairs, func(p pair) bool { return p.name != only })
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := broker.NewTest(b, broker.OnDisk())
		warm := "e2e-warm-" + strconv.Itoa(i)
		createTopic(b, br.Addr(), warm, e2ePartitions)
		kgoLatency(b, br.Addr(), warm, time.Second)
		b.StartTimer()
		for j := range pairs {
			pr := pairs[(j+e2eRuns)%len(pairs)]
			topic := "e2e-" + pr.name + "-" + strconv.Itoa(i)
			createTopic(b, br.Addr(), topic, e2ePartitions)
			settle()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu := processCPU(b, os.Getpid())
			l := e2eLatency(b, br.Addr(), topic, d, pr.consume, pr.produce)
			cpu = processCPU(b, os.Getpid()) - cpu
			runtime.ReadMemStats(&after)
			n := float64(l.got.Load())
			b.ReportMetric(l.percentile(0.5), pr.name+"_p50_ms")
			b.ReportMetric(l.percentile(0.99), pr.name+"_p99_ms")
			// The broker runs in this process: these count its share too,
			// the same for every pair.
			b.ReportMetric(float64(cpu.Nanoseconds())/n, pr.name+"_cpu_ns/rec")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, pr.name+"_B/rec")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, pr.name+"_allocs/rec")
			b.ReportMetric(float64(after.NumGC-before.NumGC), pr.name+"_gcs")
		}
		e2eRuns++
	}
}
