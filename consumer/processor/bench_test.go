package processor_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer/processor"
)

// BenchmarkRunner measures records handled per second by a Runner with a
// handler that only counts, for b.N records over 12 partitions of kfake,
// from the first record handled (joining the group is not counted).
func BenchmarkRunner(b *testing.B) {
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, "bench"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			produce(b, c.ListenAddrs(), "bench", b.N)
			var handled atomic.Int64
			r, err := processor.New(processor.Config{
				Consumer:    consumerConfig(c.ListenAddrs(), "bench"),
				Topics:      []string{"bench"},
				Concurrency: conc,
				Handler: func(context.Context, *kafkit.Record) error {
					handled.Add(1)
					return nil
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			for handled.Load() == 0 {
				time.Sleep(100 * time.Microsecond)
			}
			b.ResetTimer()
			start := time.Now()
			for handled.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}
