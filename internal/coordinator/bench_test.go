package coordinator

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
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

// BenchmarkConsumerGroupRebalance measures how long a KIP-848 group of 100
// members on a topic of 1,000 partitions takes to settle (every member
// Stable at the target epoch) when all join at once, when one more joins,
// and when one leaves. Members answer at once (no heartbeat interval in
// between), so the time is the coordinator's work over the rounds of
// heartbeats the protocol needs; rounds/settle reports those rounds, each
// of which costs a real client one heartbeat interval at most.
func BenchmarkConsumerGroupRebalance(b *testing.B) {
	const members, partitions = 100, 1000
	f := newFakeTopics(map[string]int32{"t": partitions})
	h := start(b, Config{Topics: f}, nil)
	defer h.stop()
	settle := func(group string, ms []*cgMember) int {
		for round := 1; ; round++ {
			for _, m := range ms {
				if r := m.beat(); r.ErrorCode != 0 {
					b.Fatalf("heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
				}
			}
			if describeCG(b, h, group).State == "Stable" {
				return round
			}
		}
	}
	join := func(group string, n int) []*cgMember {
		ms := make([]*cgMember, n)
		for i := range ms {
			ms[i] = h.member(f, group, fmt.Sprint("m", i))
			if r := ms[i].join("t"); r.ErrorCode != 0 {
				b.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
			}
		}
		return ms
	}
	run := func(b *testing.B, change func(group string, ms []*cgMember) []*cgMember) {
		rounds := 0
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			group := fmt.Sprint(b.Name(), i)
			ms := join(group, members)
			settle(group, ms)
			b.StartTimer()
			ms = change(group, ms)
			rounds += settle(group, ms)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/settle")
		b.ReportMetric(float64(rounds)/float64(b.N), "rounds/settle")
	}
	b.Run("join-all", func(b *testing.B) {
		rounds := 0
		for i := 0; i < b.N; i++ {
			group := fmt.Sprint("all", i)
			rounds += settle(group, join(group, members))
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/settle")
		b.ReportMetric(float64(rounds)/float64(b.N), "rounds/settle")
	})
	b.Run("join-one", func(b *testing.B) {
		run(b, func(group string, ms []*cgMember) []*cgMember {
			m := h.member(f, group, "late")
			m.join("t")
			return append(ms, m)
		})
	})
	b.Run("leave-one", func(b *testing.B) {
		run(b, func(group string, ms []*cgMember) []*cgMember {
			leave := ms[0].request()
			leave.MemberEpoch = leaveEpoch
			ms[0].send(leave)
			return ms[1:]
		})
	})
}
