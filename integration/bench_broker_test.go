package integration

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit/broker"
)

// benchRecords is the record count of the broker benchmarks; the issue's
// workload is 2,000,000 and KAFKIT_BENCH_RECORDS shortens a local run.
func benchRecords() int {
	if v, err := strconv.Atoi(os.Getenv("KAFKIT_BENCH_RECORDS")); err == nil && v > 0 {
		return v
	}
	return 2_000_000
}

// BenchmarkBrokerVsKfake drives our broker (persisting to disk with the
// default flush policy) and franz-go's kfake (in memory) with the same load
// client, franz-go kgo: produce N records of 100 bytes to 8 partitions with
// acks=all, then consume them all. The rates compare like with like: both
// brokers run in the benchmark's process, so the ratios ours/kfake measure
// the brokers, not a process boundary. A second pass runs cmd/broker as a
// child process with the same load to read its own CPU time from /proc, so
// the client's CPU is not counted (KAFKIT_BENCH_CPUPROFILE=file also writes
// its CPU profile).
//
//	go test -run '^$' -bench BenchmarkBrokerVsKfake -benchtime 1x ./integration/
//
// brokerBenchRuns counts BenchmarkBrokerVsKfake's iterations across -count.
var brokerBenchRuns int

func BenchmarkBrokerVsKfake(b *testing.B) {
	n := benchRecords()
	value := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < b.N; i++ {
		topic := "bench-" + strconv.Itoa(i)

		b.StopTimer()
		ours := broker.NewTest(b, broker.OnDisk(), broker.WithConfig(func(c *broker.Config) { c.Logger = nil }))
		createTopic(b, ours.Addr(), topic, 8)
		kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, topic))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		// Which broker goes first alternates between runs (-count), so
		// neither always meets the heap and page cache the other left.
		var oursProduce, kfProduce, oursConsume, kfConsume float64
		produceOurs := func() { settle(); oursProduce = produceRate(b, ours.Addr(), topic, n, value) }
		produceKfake := func() { settle(); kfProduce = produceRate(b, kf.ListenAddrs()[0], topic, n, value) }
		consumeOurs := func() { settle(); oursConsume = consumeRate(b, ours.Addr(), topic, n) }
		consumeKfake := func() { settle(); kfConsume = consumeRate(b, kf.ListenAddrs()[0], topic, n) }
		if brokerBenchRuns++; brokerBenchRuns%2 == 0 {
			produceOurs, produceKfake = produceKfake, produceOurs
			consumeOurs, consumeKfake = consumeKfake, consumeOurs
		}
		produceOurs()
		produceKfake()
		consumeOurs()
		consumeKfake()
		kf.Close()

		b.StopTimer()
		var args []string
		if prof := os.Getenv("KAFKIT_BENCH_CPUPROFILE"); prof != "" {
			args = append(args, "--cpuprofile", prof)
		}
		proc := startBrokerProcess(b, b.TempDir(), args...)
		createTopic(b, proc.addr, topic, 8)
		settle()
		cpu0 := processCPU(b, proc.cmd.Process.Pid)
		produceRate(b, proc.addr, topic, n, value)
		cpu1 := processCPU(b, proc.cmd.Process.Pid)
		settle()
		cpu2 := processCPU(b, proc.cmd.Process.Pid)
		consumeRate(b, proc.addr, topic, n)
		cpu3 := processCPU(b, proc.cmd.Process.Pid)
		proc.stop(b) // SIGTERM, so a CPU profile is written
		b.StartTimer()

		b.ReportMetric(oursProduce, "ours_produce_rec/s")
		b.ReportMetric(kfProduce, "kfake_produce_rec/s")
		b.ReportMetric(oursProduce/kfProduce, "produce_ratio")
		b.ReportMetric(oursConsume, "ours_consume_rec/s")
		b.ReportMetric(kfConsume, "kfake_consume_rec/s")
		b.ReportMetric(oursConsume/kfConsume, "consume_ratio")
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(n), "broker_produce_cpu_ns/rec")
		b.ReportMetric(float64((cpu3-cpu2).Nanoseconds())/float64(n), "broker_consume_cpu_ns/rec")
	}
}

// produceRate sends n records with kgo at acks=all (kgo's defaults:
// idempotent, up to 5 requests in flight per broker; 1 MiB batches) and
// returns records/s.
func produceRate(tb testing.TB, addr, topic string, n int, value []byte, opts ...kgo.Opt) float64 {
	tb.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(1 << 20), kgo.MaxBufferedRecords(1 << 20)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	errs := make(chan error, 1)
	start := time.Now()
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		tb.Fatalf("produce: %v", err)
	default:
	}
	return float64(n) / elapsed.Seconds()
}

// consumeRate reads n records of topic from the start with kgo.
func consumeRate(tb testing.TB, addr, topic string, n int) float64 {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(10<<20))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		fs.EachError(func(t string, p int32, err error) { tb.Fatalf("fetch %s/%d: %v", t, p, err) })
		got += fs.NumRecords()
	}
	return float64(n) / time.Since(start).Seconds()
}

// processCPU is the user+system CPU time a process has used, from
// /proc/<pid>/stat (clock ticks of 10 ms on Linux).
func processCPU(tb testing.TB, pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the ")" closing the command name: state is field 3;
	// utime and stime are fields 14 and 15.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
