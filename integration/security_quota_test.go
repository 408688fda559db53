package integration

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// throttleHook counts the throttle times a kgo client is told.
type throttleHook struct{ throttled atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.throttled.Add(1)
	}
}

// TestProducerByteRateQuota is issue 13's quota done-when: a producer whose
// client id has producer_byte_rate 1 MB/s is held near 1 MB/s and is told
// throttle times, while an unlimited producer on the same broker is never
// throttled. The default run measures 3 s over 3 quota windows (so the
// first windows' burst allowance is small); KAFKIT_QUOTA_LONG=1 runs
// Kafka's defaults (11 windows of 1 s) for 10 s after a warm-up, and also
// checks that the unlimited producer outruns the limited one (a speed
// check, so only there).
func TestProducerByteRateQuota(t *testing.T) {
	windows, warmup, measure := "3", 3*time.Second, 3*time.Second
	long := os.Getenv("KAFKIT_QUOTA_LONG") != ""
	if long {
		windows, warmup, measure = "11", 11*time.Second, 10*time.Second
	}
	b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) {
		if err := c.Set(map[string]string{"quota.window.num": windows}); err != nil {
			t.Fatal(err)
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := clientOf(t, b.Addr(), "admin")
	const limit = 1 << 20
	alter := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	e.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: kmsg.StringPtr("limited")}}
	e.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: "producer_byte_rate", Value: limit}}
	alter.Entries = append(alter.Entries, e)
	if ar, err := alter.RequestWith(ctx, admin); err != nil || ar.Entries[0].ErrorCode != 0 {
		t.Fatalf("setting the quota: %v %+v", err, ar)
	}
	describe := kmsg.NewPtrDescribeClientQuotasRequest()
	describe.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "client-id", MatchType: kmsg.QuotasMatchTypeExact, Match: kmsg.StringPtr("limited")}}
	if dr, err := describe.RequestWith(ctx, admin); err != nil || len(dr.Entries) != 1 || dr.Entries[0].Values[0].Value != limit {
		t.Fatalf("describing the quota: %v %+v", err, dr)
	}

	// The topics exist before the clock starts: kgo waits for its next
	// metadata refresh after an auto-creation.
	create := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"q-limited", "q-free"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		create.Topics = append(create.Topics, rt)
	}
	if cr, err := create.RequestWith(ctx, admin); err != nil || cr.Topics[0].ErrorCode != 0 || cr.Topics[1].ErrorCode != 0 {
		t.Fatalf("creating the topics: %v %+v", err, cr)
	}
	value := make([]byte, 16<<10)
	run := func(clientID string, hook *throttleHook) (rate float64) {
		cl := clientOf(t, b.Addr(), clientID, kgo.WithHooks(hook), kgo.DefaultProduceTopic("q-"+clientID),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordDeliveryTimeout(time.Minute),
			kgo.MaxBufferedRecords(16)) // a small backlog, so the run ends soon after the measurement
		start := time.Now()
		from, until := start.Add(warmup), start.Add(warmup+measure)
		var acked atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for time.Now().Before(until) && ctx.Err() == nil {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				if now := time.Now(); err == nil && now.After(from) && now.Before(until) {
					acked.Add(int64(len(r.Value)))
				}
			})
		}
		wg.Wait()
		if err := firstErr.Load(); err != nil {
			t.Errorf("%s: %v", clientID, err)
		}
		return float64(acked.Load()) / measure.Seconds()
	}
	var limited, free throttleHook
	var limitedRate, freeRate float64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); limitedRate = run("limited", &limited) }()
	go func() { defer wg.Done(); freeRate = run("free", &free) }()
	wg.Wait()
	t.Logf("limited: %.2f MB/s, %d throttled responses; unlimited: %.2f MB/s, %d throttled", limitedRate/(1<<20), limited.throttled.Load(), freeRate/(1<<20), free.throttled.Load())
	if limitedRate > 1.2*limit || limitedRate < 0.5*limit {
		t.Errorf("limited producer ran at %.2f MB/s, want near 1 MB/s (at most 20%% over)", limitedRate/(1<<20))
	}
	if limited.throttled.Load() == 0 {
		t.Error("the limited producer was never told a throttle time")
	}
	if free.throttled.Load() != 0 {
		t.Errorf("the unlimited producer was throttled %d times", free.throttled.Load())
	}
	if long && freeRate < 1.5*limitedRate {
		t.Errorf("the unlimited producer ran at %.2f MB/s, no faster than the limited one", freeRate/(1<<20))
	}
}
