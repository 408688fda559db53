package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkPoll measures end-to-end consumption from kfake (fetch, decode,
// Poll) of 100-byte records in 4 partitions, for kafkit and for franz-go's kgo
// in the same run.
func BenchmarkPoll(b *testing.B) {
	const (
		records   = 100_000
		valueSize = 100
	)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, valueSize)
	for range records {
		prod.Produce(context.Background(), &kgo.Record{Value: value}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	prod.Close()
	report := func(b *testing.B, n int, start time.Time) {
		s := time.Since(start).Seconds()
		b.ReportMetric(float64(n)/s, "records/s")
		b.ReportMetric(float64(n*valueSize)/s/1e6, "MB/s")
	}

	b.Run("kafkit", func(b *testing.B) {
		start := time.Now()
		n := 0
		for n < b.N {
			cons, err := New(context.Background(), Config{BootstrapServers: c.ListenAddrs(), AutoOffsetReset: OffsetResetEarliest})
			if err != nil {
				b.Fatal(err)
			}
			var tps []kafkit.TopicPartition
			for p := range int32(4) {
				tps = append(tps, kafkit.TopicPartition{Topic: "bench", Partition: p})
			}
			if err := cons.Assign(tps...); err != nil {
				b.Fatal(err)
			}
			for got := 0; got < records && n < b.N; {
				recs, err := cons.Poll(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				got += len(recs)
				n += len(recs)
			}
			cons.Close(context.Background())
		}
		report(b, n, start)
	})

	b.Run("franz-go", func(b *testing.B) {
		start := time.Now()
		n := 0
		for n < b.N {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			for got := 0; got < records && n < b.N; {
				fs := cl.PollFetches(context.Background())
				if err := fs.Err(); err != nil {
					b.Fatal(err)
				}
				got += fs.NumRecords()
				n += fs.NumRecords()
			}
			cl.Close()
		}
		report(b, n, start)
	})
}

// BenchmarkPollTail: a consumer of 8 partitions reading records as they
// arrive. Each op produces one 100-byte record (kgo, linger 0, waiting for
// its acknowledgement) and polls until it comes back, so each op is a Fetch
// answered with one small batch, decoded and returned. allocs/op counts the
// consumer's, kgo's and kfake's allocations; theirs are the same for any
// consumer.
//
//	go test -run '^$' -bench BenchmarkPollTail -benchmem ./consumer/
func BenchmarkPollTail(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "tail"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("tail"), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	cons, err := New(ctx, Config{BootstrapServers: c.ListenAddrs(), AutoOffsetReset: OffsetResetEarliest})
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close(ctx)
	var tps []kafkit.TopicPartition
	for p := range int32(8) {
		tps = append(tps, kafkit.TopicPartition{Topic: "tail", Partition: p})
	}
	if err := cons.Assign(tps...); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	one := func() {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		for got := 0; got == 0; {
			recs, err := cons.Poll(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got = len(recs)
		}
	}
	for range 100 {
		one()
	}
	b.ReportAllocs()
	for b.Loop() {
		one()
	}
}
