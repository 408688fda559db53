package coordinator

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkCommitOffsets measures the coordinator loop's offset-commit rate
// (one request of 6 partitions per op, records encoded, memory store).
func BenchmarkCommitOffsets(b *testing.B) {
	c, err := New(Config{}, &memStore{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := c.Load(ctx, func(func(LogRecord, error) bool) {}); err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.Generation = "bench", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p := range int32(6) {
		rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, LeaderEpoch: -1})
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for p := range rt.Partitions {
			rt.Partitions[p].Offset = int64(i)
		}
		resp, err := c.CommitOffsets(ctx, req)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
