package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterBenchRuns counts BenchmarkClusterProduce's iterations across
// -count, so which replication factor goes first alternates.
var clusterBenchRuns int

// BenchmarkClusterProduce (issue 12): on one cluster of three cmd/broker
// processes, kgo produces N records (1,000,000 by the issue; KAFKIT_BENCH_
// RECORDS shortens a run) of 100 bytes, uncompressed, acks=all, to a topic
// of 8 partitions with replication factor 3, and to one with replication
// factor 1; the two topics and producers are alike but for the replication
// factor. It reports records/s of both and their ratio, then the p50 and
// p99 produce latency (Produce to acknowledgement) of each at a paced
// 10,000 records/s for KAFKIT_CLUSTER_LATENCY_SECONDS (3 s). The brokers'
// CPU time per record (the three processes together, from /proc) during
// each throughput run is reported too: on a shared machine it varies far
// less than records/s. KAFKIT_CLUSTER_CPUPROFILE=dir writes each broker's
// CPU profile there (the whole run: both topics, both phases), and
// KAFKIT_BROKER_BIN runs a prebuilt cmd/broker, for an A/B of two builds.
//
//	go test -run '^$' -bench BenchmarkClusterProduce -benchtime 1x ./integration/
func BenchmarkClusterProduce(b *testing.B) {
	n := sdkBenchRecords(1_000_000)
	d := 3 * time.Second
	if v, err := strconv.Atoi(os.Getenv("KAFKIT_CLUSTER_LATENCY_SECONDS")); err == nil && v > 0 {
		d = time.Duration(v) * time.Second
	}
	value := bytes.Repeat([]byte("x"), 100)
	b.StopTimer()
	pc := startProcessCluster(b, 3)
	pc.metadata(3)
	admin, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	b.StartTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		topics := map[int16]string{}
		for _, rf := range []int16{3, 1} {
			topics[rf] = fmt.Sprintf("bench-rf%d-%d", rf, i)
			if err := createTopicRetrying(b, admin, topics[rf], benchPartitions, rf, 20*time.Second); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				b.Fatal(err)
			}
			pc.metadata(3, topics[rf])
		}
		b.StartTimer()

		rate := map[int16]float64{}
		cpu := map[int16]float64{}
		lat := map[int16][2]float64{}
		measure := func(rf int16) func() {
			return func() {
				cpu0 := pc.cpu()
				rate[rf] = produceRate(b, pc.addrs[0], topics[rf], n, value, kgo.SeedBrokers(pc.addrs...),
					kgo.ProducerBatchCompression(kgo.NoCompression()))
				cpu[rf] = float64((pc.cpu() - cpu0).Nanoseconds()) / float64(n)
				settle()
				lat[rf] = pacedProduceLatency(b, pc.addrs, topics[rf], d, value)
			}
		}
		alternate(&clusterBenchRuns, measure(3), measure(1))

		b.ReportMetric(rate[3], "rf3_rec/s")
		b.ReportMetric(rate[1], "rf1_rec/s")
		b.ReportMetric(rate[3]/rate[1], "rf3/rf1")
		b.ReportMetric(cpu[3], "rf3_cpu_ns/rec")
		b.ReportMetric(cpu[1], "rf1_cpu_ns/rec")
		b.ReportMetric(lat[3][0], "rf3_p50_ms")
		b.ReportMetric(lat[3][1], "rf3_p99_ms")
		b.ReportMetric(lat[1][0], "rf1_p50_ms")
		b.ReportMetric(lat[1][1], "rf1_p99_ms")
	}
	b.StopTimer()
	if os.Getenv("KAFKIT_CLUSTER_CPUPROFILE") != "" {
		pc.stopAll()
	}
}

// pacedProduceLatency produces 10,000 records/s (e2eRate) to topic for d
// with kgo at acks=all, linger 0, and returns the p50 and p99 in
// milliseconds of the time from Produce to the record's acknowledgement.
func pacedProduceLatency(tb testing.TB, seeds []string, topic string, d time.Duration, value []byte) [2]float64 {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	// Warm up: metadata and connections to every leader.
	for range benchPartitions * 4 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			tb.Fatal(err)
		}
	}
	var mu sync.Mutex
	var samples []time.Duration
	var firstErr error
	total := int(d.Seconds() * e2eRate)
	interval := time.Second / e2eRate
	next := time.Now()
	for range total {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		next = next.Add(interval)
		sent := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			took := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			samples = append(samples, took)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		tb.Fatalf("paced produce: %v", firstErr)
	}
	slices.Sort(samples)
	pct := func(q float64) float64 {
		return float64(samples[min(int(q*float64(len(samples))), len(samples)-1)]) / float64(time.Millisecond)
	}
	return [2]float64{pct(0.50), pct(0.99)}
}
