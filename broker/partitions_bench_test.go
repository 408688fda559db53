package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Benchmarks of issue 16's broker figures: CreateTopics per partition,
// Metadata for 10,000 partitions, start-up with 10,000 partitions on disk,
// each beside kfake where kfake can do the same work. Run with
//
//	go test -run '^$' -bench 'CreateTopics|Metadata10k|Startup10k' -benchtime 3x ./broker/

// benchTarget is a broker to measure: ours on disk or in memory, or kfake.
type benchTarget struct {
	name  string
	start func(b *testing.B) string // returns the bootstrap address
}

func benchTargets() []benchTarget {
	ours := func(opts ...TestOption) func(b *testing.B) string {
		return func(b *testing.B) string { return NewTest(b, opts...).Addr() }
	}
	return []benchTarget{
		{"kafkit-disk", ours(OnDisk())},
		{"kafkit-memory", ours()},
		{"kfake", func(b *testing.B) string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			return c.ListenAddrs()[0]
		}},
	}
}

func benchClient(b *testing.B, addr string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestTimeoutOverhead(time.Minute), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

func createTopicsRequest(name string, partitions int32) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 600_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	return req
}

func mustCreate(b *testing.B, cl *kgo.Client, name string, partitions int32) {
	resp, err := createTopicsRequest(name, partitions).RequestWith(context.Background(), cl)
	if err != nil {
		b.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		b.Fatalf("CreateTopics %s: error %d %v", name, code, resp.Topics[0].ErrorMessage)
	}
}

// BenchmarkCreateTopics: one CreateTopics of 1,000 partitions per
// iteration; reports ms/partition (target on disk: <= 0.2).
func BenchmarkCreateTopics(b *testing.B) {
	for _, bt := range benchTargets() {
		b.Run(bt.name, func(b *testing.B) {
			cl := benchClient(b, bt.start(b))
			const parts = 1000
			i := 0
			for b.Loop() {
				mustCreate(b, cl, fmt.Sprintf("t%d", i), parts)
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(i*parts), "ms/partition")
		})
	}
}

// BenchmarkMetadata10kPartitions: a Metadata request for every topic when
// one topic has 10,000 partitions (target: <= 5 ms).
func BenchmarkMetadata10kPartitions(b *testing.B) {
	for _, bt := range benchTargets() {
		b.Run(bt.name, func(b *testing.B) {
			cl := benchClient(b, bt.start(b))
			mustCreate(b, cl, "wide", 10_000)
			req := kmsg.NewPtrMetadataRequest()
			for b.Loop() {
				resp, err := req.RequestWith(context.Background(), cl)
				if err != nil {
					b.Fatal(err)
				}
				if n := len(resp.Topics[0].Partitions); len(resp.Topics) != 1 || n != 10_000 {
					b.Fatalf("%d topics, %d partitions", len(resp.Topics), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkStartup10kPartitions: New (open and check every log, listen) on
// a data directory holding a topic of 10,000 partitions, each with a record,
// after a clean shutdown (target: <= 1 s). kfake keeps nothing on disk.
func BenchmarkStartup10kPartitions(b *testing.B) {
	cfg := DefaultConfig()
	if err := cfg.Set(DevOverrides); err != nil {
		b.Fatal(err)
	}
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", b.TempDir()
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cl := benchClient(b, br.Addr())
	mustCreate(b, cl, "wide", 10_000)
	produceEach(b, cl, "wide", 10_000)
	cl.Close()
	if err := br.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		br, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := br.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/startup")
}

// produceEach writes one record to each of the topic's partitions.
func produceEach(tb testing.TB, cl *kgo.Client, topic string, partitions int32) {
	tb.Helper()
	ctx := context.Background()
	errs := make(chan error, partitions)
	for p := range partitions {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d", p)}, func(_ *kgo.Record, err error) { errs <- err })
	}
	for range partitions {
		if err := <-errs; err != nil {
			tb.Fatal(err)
		}
	}
}
