package integration

import (
	"bytes"
	"context"
	"os"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// benchRecords is the record count of the broker benchmarks; the issue's
// workload is 2,000,000 and KAFKIT_BENCH_RECORDS shortens a local run.
func benchRecords() int {
	if v, err := strconv.Atoi(os.Getenv("KAFKIT_BENCH_RECORDS")); err == nil && v > 0 {
		return v
	}
	return 2_000_000
}

// benchPartitions is the broker benchmark's partition count.
const benchPartitions = 8

// BenchmarkBrokerVsKfake drives our broker (cmd/broker persisting to disk
// with the default flush policy) and franz-go's kfake (in memory) with the
// same load client, franz-go kgo: produce N records of 100 bytes to 8
// partitions with acks=all, then consume them all. Each broker runs as a child
// process, so the load client's process (its heap, its garbage collector) is
// the same for both and each broker's own CPU time per record comes from
// /proc. Records are sent uncompressed, as kafka-producer-perf-test does by
// default, so the brokers move every byte (with kgo's default snappy the 100
// repeated bytes shrink 14:1 and the client's decompression is all there is
// to measure; KAFKIT_BENCH_COMPRESSION=snappy runs that). The consumer uses
// kgo's default fetch sizes. Which broker goes first alternates between runs
// (-count); KAFKIT_BENCH_CPUPROFILE=file writes our broker's CPU profile.
//
//	go test -run '^$' -bench BenchmarkBrokerVsKfake -benchtime 1x -count 5 ./integration/
//
// brokerBenchRuns counts BenchmarkBrokerVsKfake's iterations across -count.
var brokerBenchRuns int

func BenchmarkBrokerVsKfake(b *testing.B) {
	n := benchRecords()
	value := bytes.Repeat([]byte("x"), 100)
	codec := kgo.NoCompression()
	if os.Getenv("KAFKIT_BENCH_COMPRESSION") == "snappy" {
		codec = kgo.SnappyCompression()
	}
	for i := 0; i < b.N; i++ {
		topic := "bench-" + strconv.Itoa(i)

		b.StopTimer()
		var args []string
		if prof := os.Getenv("KAFKIT_BENCH_CPUPROFILE"); prof != "" {
			args = append(args, "--cpuprofile", prof)
		}
		ours := startBrokerProcess(b, b.TempDir(), args...)
		createTopic(b, ours.addr, topic, benchPartitions)
		kf := startKfakeProcess(b, topic)
		b.StartTimer()

		var rate, cpu [2][2]float64 // [ours, kfake][produce, consume]
		measure := func(who, phase int, run func(addr string) float64) {
			p := [2]*brokerProcess{ours, kf}[who]
			settle()
			cpu0 := processCPU(b, p.cmd.Process.Pid)
			rate[who][phase] = run(p.addr)
			cpu[who][phase] = float64((processCPU(b, p.cmd.Process.Pid) - cpu0).Nanoseconds()) / float64(n)
		}
		// Which broker goes first alternates between runs, so neither
		// always meets the page cache and load client state the other left.
		order := []int{0, 1}
		if brokerBenchRuns++; brokerBenchRuns%2 == 0 {
			order = []int{1, 0}
		}
		for _, who := range order {
			measure(who, 0, func(addr string) float64 {
				return produceRate(b, addr, topic, n, value, kgo.ProducerBatchCompression(codec))
			})
		}
		for _, who := range order {
			measure(who, 1, func(addr string) float64 { return consumeRate(b, addr, topic, n) })
		}

		b.StopTimer()
		ours.stop(b) // SIGTERM, so a CPU profile is written
		kf.stop(b)
		b.StartTimer()

		b.ReportMetric(rate[0][0], "ours_produce_rec/s")
		b.ReportMetric(rate[1][0], "kfake_produce_rec/s")
		b.ReportMetric(rate[0][0]/rate[1][0], "produce_ratio")
		b.ReportMetric(rate[0][1], "ours_consume_rec/s")
		b.ReportMetric(rate[1][1], "kfake_consume_rec/s")
		b.ReportMetric(rate[0][1]/rate[1][1], "consume_ratio")
		b.ReportMetric(cpu[0][0], "ours_produce_cpu_ns/rec")
		b.ReportMetric(cpu[1][0], "kfake_produce_cpu_ns/rec")
		b.ReportMetric(cpu[0][1], "ours_consume_cpu_ns/rec")
		b.ReportMetric(cpu[1][1], "kfake_consume_cpu_ns/rec")
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
	errs := newFirstErr()
	cb := func(_ *kgo.Record, err error) { errs.set(err) } // one closure, as ourProduceRate's
	start := time.Now()
	region := trace.StartRegion(ctx, produceRegion)
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: value}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	region.End()
	errs.check(tb)
	return float64(n) / elapsed.Seconds()
}

// consumeRate reads n records of topic from the start with kgo and its
// default fetch sizes (50 MiB per response, 1 MiB per partition).
func consumeRate(tb testing.TB, addr, topic string, n int) float64 {
	tb.Helper()
	return kgoConsumeRate(tb, addr, topic, n, 0)
}

// kgoConsumeRate reads n records of topic from the start with kgo, taking
// up to maxPoll records per poll (all buffered ones when 0). The clock
// starts before the client is made (it may connect and ask for metadata at
// once), as ourConsumeRate's does.
func kgoConsumeRate(tb testing.TB, addr, topic string, n, maxPoll int, opts ...kgo.Opt) float64 {
	tb.Helper()
	start := time.Now()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	got := 0
	for got < n {
		fs := cl.PollRecords(ctx, maxPoll)
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

// machineCPU is the CPU time all processes of the machine have used (user,
// nice and system time of every CPU, and the time the hypervisor took them
// away: steal), from /proc/stat (clock ticks of 10 ms). Interrupt time is
// left out: most of it during a benchmark is the loopback traffic of the
// process measured, which its own CPU time does not count.
func machineCPU(tb testing.TB) time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// "cpu user nice system idle iowait irq softirq steal guest guest_nice"
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	var ticks int64
	for _, i := range []int{1, 2, 3, 8} {
		if i < len(fields) {
			v, _ := strconv.ParseInt(fields[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
