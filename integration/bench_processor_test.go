package integration

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/consumer/processor"
	"github.com/kafkit/kafkit/producer"
)

// BenchmarkProcessorOverhead measures the processor framework's cost per
// record against our broker, both ways BenchmarkConsumerVsKgo and
// BenchmarkEndToEndLatency measure the consumer: "throughput" reads N
// pre-written records of 100 bytes from 8 partitions through a Runner with
// a no-op handler (consumer at its defaults, one group member) and through
// a plain Poll loop of our consumer at its defaults, in the same run;
// "latency" produces 10,000 records/s for 10 s with our producer (linger 0)
// and reports the produce-to-handler latency's p50/p99/p99.9.
//
//	go test -run '^$' -bench BenchmarkProcessorOverhead -benchtime 1x ./integration/
func BenchmarkProcessorOverhead(b *testing.B) {
	b.Run("throughput", func(b *testing.B) {
		n := sdkBenchRecords(1_000_000)
		for i := 0; i < b.N; i++ {
			addr, topic := preloaded(b, "proc-"+strconv.Itoa(i), n, bytes.Repeat([]byte("v"), 100), kgo.NoCompression())
			settle()
			procRate := processorRate(b, addr, topic, n)
			settle()
			pollRate := ourConsumeRate(b, addr, topic, n, consumer.Config{})
			b.ReportMetric(procRate, "processor_rec/s")
			b.ReportMetric(pollRate, "poll_rec/s")
			b.ReportMetric(procRate/pollRate, "ratio")
		}
	})
	b.Run("latency", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			br := broker.NewTest(b, broker.OnDisk())
			topic := "proc-e2e-" + strconv.Itoa(i)
			createTopic(b, br.Addr(), topic, e2ePartitions)
			b.StartTimer()
			l := processorLatency(b, br.Addr(), topic, e2eDuration())
			for _, m := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}, {"p99.9", 0.999}} {
				b.ReportMetric(l.percentile(m.q), "processor_"+m.name+"_ms")
			}
		}
	})
}

// runProcessor runs a Runner over topic (group "bench-"+topic, from the
// earliest offset) calling handle for every record, until stop is called;
// stop waits for Run to return.
func runProcessor(tb testing.TB, addr, topic string, handle func(*kafkit.Record)) (stop func()) {
	r, err := processor.New(processor.Config{
		Consumer: consumer.Config{BootstrapServers: []string{addr}, GroupID: "bench-" + topic, AutoOffsetReset: consumer.OffsetResetEarliest},
		Topics:   []string{topic},
		Handler: func(_ context.Context, rec *kafkit.Record) error {
			handle(rec)
			return nil
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			tb.Errorf("processor: %v", err)
		}
	}
}

// processorRate returns records/s through a no-op handler, counted from the
// first record handled (joining the group is not counted).
func processorRate(tb testing.TB, addr, topic string, n int) float64 {
	var handled atomic.Int64
	var start atomic.Pointer[time.Time]
	stop := runProcessor(tb, addr, topic, func(*kafkit.Record) {
		if handled.Add(1) == 1 {
			now := time.Now()
			start.Store(&now)
		}
	})
	defer stop()
	deadline := time.Now().Add(5 * time.Minute)
	for handled.Load() < int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("handled %d of %d records", handled.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return float64(n-1) / time.Since(*start.Load()).Seconds()
}

// processorLatency produces the e2e load with our producer while a Runner
// records each record's latency in its handler.
func processorLatency(tb testing.TB, addr, topic string, d time.Duration) *latencies {
	l := &latencies{}
	var mu sync.Mutex // handlers of different partitions may run one after another on different goroutines
	stop := runProcessor(tb, addr, topic, func(rec *kafkit.Record) {
		now := time.Now()
		mu.Lock()
		l.record(rec.Value, now)
		mu.Unlock()
	})
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, Linger: -1})
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	l.waitFor(tb, int64(e2eProduce(tb, l, d, func(v []byte) {
		if err := p.Send(ctx, &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Value: v}, nil); err != nil {
			tb.Error(err)
		}
	})))
	stop()
	return l
}
