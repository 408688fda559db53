package integration

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit/broker"
)

// shareLedger records what share consumers did with every record.
type shareLedger struct {
	mu         sync.Mutex
	deliveries map[int][]int32 // value -> delivery counts seen, in order
	accepted   map[int]int
	rejected   map[int]int
	ackErrors  atomic.Int64 // acknowledgements the broker did not confirm
}

func newShareLedger() *shareLedger {
	return &shareLedger{deliveries: map[int][]int32{}, accepted: map[int]int{}, rejected: map[int]int{}}
}

// decide is the workload's rule: 0.1% rejected, 1% released on their first
// delivery, the rest accepted.
func (l *shareLedger) decide(v int, dc int32) kgo.AckStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries[v] = append(l.deliveries[v], dc)
	switch {
	case v%1000 == 0:
		l.rejected[v]++
		return kgo.AckReject
	case v%100 == 50 && dc == 1:
		return kgo.AckRelease
	}
	l.accepted[v]++
	return kgo.AckAccept
}

func (l *shareLedger) done(total int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)+len(l.rejected) == total
}

// check verifies the ledger: every record accepted or rejected (none
// lost), never both; the released ones delivered again with a higher
// count; no count above the limit; and no record delivered again after an
// acknowledgement the broker confirmed (duplicates only if some were not).
func (l *shareLedger) check(t *testing.T, total int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	dups := 0
	for v := range total {
		dcs := l.deliveries[v]
		_, acc := l.accepted[v]
		_, rej := l.rejected[v]
		switch {
		case len(dcs) == 0:
			t.Errorf("record %d never delivered", v)
			continue
		case acc == rej:
			t.Errorf("record %d accepted %v rejected %v", v, acc, rej)
		case v%100 == 50 && v%1000 != 0 && slices.Max(dcs) < 2:
			// (A release the restart lost is redelivered with the same
			// count: acquisitions are not durable, as in Kafka.)
			t.Errorf("record %d released once, then delivered with counts %v", v, dcs)
		}
		for i, dc := range dcs {
			if dc < 1 || dc > 5 || (i > 0 && dc < dcs[i-1]) {
				t.Errorf("record %d delivery counts %v", v, dcs)
				break
			}
		}
		if n := l.accepted[v] + l.rejected[v]; n > 1 {
			dups += n - 1
		}
	}
	t.Logf("%d records: %d accepted, %d rejected, %d acknowledged twice, %d acknowledgement errors", total, len(l.accepted), len(l.rejected), dups, l.ackErrors.Load())
	if dups > 0 && l.ackErrors.Load() == 0 {
		t.Errorf("%d records acknowledged more than once though every acknowledgement was confirmed", dups)
	}
}

// runShareConsumer polls with kgo's share consumer until ctx ends,
// acknowledging by the ledger's rule.
func runShareConsumer(ctx context.Context, t *testing.T, seeds []string, group, topic string, l *shareLedger) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.ShareMaxRecords(200),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
			for _, r := range rs {
				if r.Err != nil {
					l.ackErrors.Add(1)
				}
			}
		}))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		cl.PollRecords(ctx, 200).EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			r.Ack(l.decide(v, r.DeliveryCount()))
		})
		cl.FlushAcks(ctx)
	}
}

// TestShareGroupWorkloadWithRestart is the share-group workload:
// 4 kgo share consumers on one 2-partition topic, 1% of the records
// released once and 0.1% rejected, our broker restarted in the middle.
// 10,000 records by default, 100,000 with KAFKIT_SHARE_LONG=1.
func TestShareGroupWorkloadWithRestart(t *testing.T) {
	total := 10_000
	if os.Getenv("KAFKIT_SHARE_LONG") != "" {
		total = 100_000
	}
	cfg := broker.DefaultConfig()
	cfg.Set(broker.DevOverrides)
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = b.Addr() // the restart comes back on the same address
	defer func() { b.Close(context.Background()) }()
	seeds := []string{b.Addr()}
	const topic, group = "share-workload", "share-workload-g"
	createTopicOn(t, seeds, topic, 2)
	setGroupConfigs(t, seeds, group, "share.auto.offset.reset", "earliest")
	produceValues(t, seeds, topic, 0, total)

	l := newShareLedger()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runShareConsumer(ctx, t, seeds, group, topic, l)
		}()
	}
	restarted := false
	for !l.done(total) && ctx.Err() == nil {
		l.mu.Lock()
		half := len(l.accepted) >= total/2
		l.mu.Unlock()
		if half && !restarted {
			restarted = true
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if b, err = broker.New(cfg); err != nil {
				t.Fatalf("restart: %v", err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if !restarted {
		t.Error("the broker was never restarted")
	}
	l.check(t, total)
}
