package integration

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/internal/testutil"
)

// confirmations tracks what the broker confirmed of our share consumers'
// acknowledgements, per record value, and fails on any record delivered
// again after its acceptance or rejection was confirmed, or confirmed
// twice.
type confirmations struct {
	t         *testing.T
	reject    func(v int) bool // the values the workload rejects
	release   func(v int) bool // the values it releases on their first delivery
	mu        sync.Mutex
	pending   map[pendingKey]map[int64]decision // acknowledged, not yet confirmed
	confirmed map[int]decision                  // value -> final decision confirmed
	failed    int                               // acknowledgements the broker refused or never got
	released  map[int]int16                     // value -> delivery count of its last confirmed release
	delivered map[int][]int16                   // value -> delivery counts
	by        map[string]int                    // consumer -> records delivered
}

// pendingKey is a consumer's partition: each consumer's outcomes are
// matched with its own acknowledgements (a record whose acknowledgement
// failed may be delivered to another consumer before the failure is
// reported).
type pendingKey struct {
	consumer string
	tp       kafkit.TopicPartition
}

// decision is what a consumer did with one delivery of a record.
type decision struct {
	value int
	ack   consumer.AcknowledgeType
	count int16 // the delivery count of that delivery
}

// newConfirmations tracks a workload that rejects 10% of the values and
// releases 10% on their first delivery.
func newConfirmations(t *testing.T) *confirmations {
	return &confirmations{t: t, pending: map[pendingKey]map[int64]decision{},
		reject: func(v int) bool { return v%10 == 0 }, release: func(v int) bool { return v%10 == 5 },
		confirmed: map[int]decision{}, released: map[int]int16{}, delivered: map[int][]int16{}, by: map[string]int{}}
}

// deliver records a delivery and returns the workload's decision.
func (c *confirmations) deliver(name string, r *consumer.ShareRecord) consumer.AcknowledgeType {
	v, _ := strconv.Atoi(string(r.Value))
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.confirmed[v]; ok {
		c.t.Errorf("record %d delivered again (count %d) after %v was confirmed", v, r.DeliveryCount, d.ack)
	}
	if n, ok := c.released[v]; ok && r.DeliveryCount <= n {
		c.t.Errorf("record %d delivered with count %d after its release at delivery %d was confirmed", v, r.DeliveryCount, n)
	}
	c.delivered[v] = append(c.delivered[v], r.DeliveryCount)
	c.by[name]++
	t := consumer.Accept
	switch {
	case c.reject(v):
		t = consumer.Reject
	case c.release(v) && r.DeliveryCount == 1:
		t = consumer.Release
	}
	return t
}

// acked notes that consumer name acknowledged r with t: the broker's
// confirmation is pending.
func (c *confirmations) acked(name string, r *consumer.ShareRecord, t consumer.AcknowledgeType) {
	v, _ := strconv.Atoi(string(r.Value))
	k := pendingKey{name, kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[k] == nil {
		c.pending[k] = map[int64]decision{}
	}
	c.pending[k][r.Offset] = decision{v, t, r.DeliveryCount}
}

// onCommit is consumer name's OnAcknowledgementCommit.
func (c *confirmations) onCommit(name string, tp kafkit.TopicPartition, offsets []int64, err error) {
	k := pendingKey{name, tp}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, off := range offsets {
		d, ok := c.pending[k][off]
		if !ok {
			continue
		}
		delete(c.pending[k], off)
		switch {
		case err != nil:
			c.failed++
		case d.ack == consumer.Release:
			c.released[d.value] = d.count
		default:
			if prev, ok := c.confirmed[d.value]; ok {
				c.t.Errorf("record %d: %v confirmed at delivery %d after %v at delivery %d", d.value, d.ack, d.count, prev.ack, prev.count)
			}
			c.confirmed[d.value] = d
		}
	}
}

func (c *confirmations) done(total int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.confirmed) == total
}

func (c *confirmations) check(total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for v := range total {
		d, ok := c.confirmed[v]
		switch {
		case !ok:
			c.t.Errorf("record %d never confirmed (deliveries %v)", v, c.delivered[v])
		case c.reject(v) != (d.ack == consumer.Reject):
			c.t.Errorf("record %d confirmed %v", v, d.ack)
		case c.release(v) && !c.reject(v) && d.count < 2:
			c.t.Errorf("record %d released once, confirmed at delivery %d (counts %v)", v, d.count, c.delivered[v])
		}
		dcs := c.delivered[v]
		for i, dc := range dcs {
			if dc < 1 || dc > shareDeliveryLimit || (i > 0 && dc < dcs[i-1]) {
				c.t.Errorf("record %d delivery counts %v", v, dcs)
				break
			}
		}
	}
}

// shareDeliveryLimit is group.share.delivery.count.limit at its default.
const shareDeliveryLimit = 5

func newShareConsumer(t *testing.T, seeds []string, group, topic, name string, c *confirmations, mode string) *consumer.ShareConsumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := consumer.NewShare(ctx, consumer.ShareConfig{BootstrapServers: seeds, GroupID: group, AcknowledgementMode: mode,
		MaxPollRecords: 50, FetchMaxWait: 200 * time.Millisecond, OnAcknowledgementCommit: func(tp kafkit.TopicPartition, offsets []int64, err error) { c.onCommit(name, tp, offsets, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	return sc
}

// waitShareAssigned waits until the share group has n members, each
// assigned a partition.
func waitShareAssigned(t *testing.T, seeds []string, group string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req := kmsg.NewPtrShareGroupDescribeRequest()
		req.GroupIDs = []string{group}
		resp, err := req.RequestWith(context.Background(), cl)
		if err == nil && len(resp.Groups) == 1 {
			assigned := 0
			for _, m := range resp.Groups[0].Members {
				if len(m.Assignment.TopicPartitions) > 0 {
					assigned++
				}
			}
			if assigned == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("share group %s: not %d members with partitions in 30 s", group, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShareConsumerSDKExplicit: two of our share consumers in explicit mode
// share one partition; rejected records never come back, released ones
// come back with a delivery count of 2, every record is accepted or
// rejected once, as the broker confirmed through OnAcknowledgementCommit.
func TestShareConsumerSDKExplicit(t *testing.T) {
	shareTargets(t, func(t *testing.T, tg testutil.Target) {
		const topic, group, total = "share-sdk", "share-sdk-g", 1000
		createTopicOn(t, tg.Bootstrap, topic, 1)
		setGroupConfigs(t, tg.Bootstrap, group, "share.auto.offset.reset", "earliest")
		produceValues(t, tg.Bootstrap, topic, 0, total)
		conf := newConfirmations(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		var scs []*consumer.ShareConsumer
		for i := range 2 {
			scs = append(scs, newShareConsumer(t, tg.Bootstrap, group, topic, "c"+strconv.Itoa(i), conf, consumer.AcknowledgeExplicit))
		}
		// Both poll from when both hold the partition, so that neither
		// takes every record before the other joined; and each holds its
		// first records (at most max.poll.records are acquired per fetch)
		// until the other has some too or 10 s passed: on a loaded machine
		// one consumer's goroutine could otherwise work through all of
		// them before the other's first Poll.
		waitShareAssigned(t, tg.Bootstrap, group, 2)
		var holding atomic.Int32
		bothHold := make(chan struct{})
		for i, sc := range scs {
			name := "c" + strconv.Itoa(i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sc.Close(context.Background())
				held := false
				for !conf.done(total) && ctx.Err() == nil {
					pctx, pcancel := context.WithTimeout(ctx, time.Second)
					recs, err := sc.Poll(pctx)
					pcancel()
					if err != nil && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s poll: %v", name, err)
						return
					}
					if len(recs) > 0 && !held {
						held = true
						if holding.Add(1) == 2 {
							close(bothHold)
						}
						select {
						case <-bothHold:
						case <-time.After(10 * time.Second):
						}
					}
					for _, r := range recs {
						d := conf.deliver(name, r)
						conf.acked(name, r, d)
						if err := sc.Acknowledge(r, d); err != nil {
							t.Errorf("acknowledge: %v", err)
						}
					}
					sc.CommitAsync()
					time.Sleep(time.Millisecond)
				}
			}()
		}
		wg.Wait()
		conf.check(total)
		if conf.by["c0"] == 0 || conf.by["c1"] == 0 {
			t.Errorf("deliveries per consumer %v: the partition was not shared", conf.by)
		}
	})
}

// TestShareConsumerSDKChurn: share consumers of a 2-partition topic come and
// go (each polls a few times, then closes, and a new one takes its place)
// while they work through the records: none is lost, none is delivered
// again once its acknowledgement was confirmed. 2,000 records by default,
// 20,000 with KAFKIT_SHARE_LONG=1.
func TestShareConsumerSDKChurn(t *testing.T) {
	total := 2000
	if os.Getenv("KAFKIT_SHARE_LONG") != "" {
		total = 20_000
	}
	shareTargets(t, func(t *testing.T, tg testutil.Target) {
		const topic, group = "share-churn", "share-churn-g"
		createTopicOn(t, tg.Bootstrap, topic, 2)
		setGroupConfigs(t, tg.Bootstrap, group, "share.auto.offset.reset", "earliest", "share.heartbeat.interval.ms", "1000")
		produceValues(t, tg.Bootstrap, topic, 0, total)
		conf := newConfirmations(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		for slot := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(slot), 14))
				for gen := 0; !conf.done(total) && ctx.Err() == nil; gen++ {
					name := "s" + strconv.Itoa(slot) + "g" + strconv.Itoa(gen)
					mode := consumer.AcknowledgeExplicit
					sc := newShareConsumer(t, tg.Bootstrap, group, topic, name, conf, mode)
					for polls := 1 + rng.IntN(8); polls > 0 && !conf.done(total) && ctx.Err() == nil; polls-- {
						pctx, pcancel := context.WithTimeout(ctx, time.Second)
						recs, err := sc.Poll(pctx)
						pcancel()
						if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
							t.Errorf("%s poll: %v", name, err)
						}
						for _, r := range recs {
							// Now and then a record of a consumer's last poll is
							// left unacknowledged: Close releases it for another.
							d := conf.deliver(name, r)
							if polls == 1 && rng.IntN(10) == 0 {
								continue
							}
							conf.acked(name, r, d)
							if err := sc.Acknowledge(r, d); err != nil {
								t.Errorf("acknowledge: %v", err)
							}
						}
						if rng.IntN(2) == 0 {
							if _, err := sc.CommitSync(ctx); err != nil && ctx.Err() == nil {
								t.Errorf("%s commit: %v", name, err)
							}
						}
					}
					if err := sc.Close(context.Background()); err != nil {
						t.Errorf("%s close: %v", name, err)
					}
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			t.Errorf("the consumers did not finish in time")
		}
		conf.check(total)
	})
}

// TestShareConsumerAckOutlivesPollDeadline: an acknowledgement riding on a
// ShareFetch whose Poll gives up (its ctx ends while the broker holds the
// fetch for fetch.max.wait.ms) still gets its outcome: the broker applied
// it, so it is reported as taking effect, never as failed.
func TestShareConsumerAckOutlivesPollDeadline(t *testing.T) {
	b := broker.NewTest(t)
	seeds := []string{b.Addr()}
	const topic, group = "share-ack-deadline", "share-ack-deadline-g"
	createTopicOn(t, seeds, topic, 1)
	setGroupConfigs(t, seeds, group, "share.auto.offset.reset", "earliest")
	produceValues(t, seeds, topic, 0, 1)
	var mu sync.Mutex // guards outcomes
	var outcomes []error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := consumer.NewShare(ctx, consumer.ShareConfig{BootstrapServers: seeds, GroupID: group, AcknowledgementMode: consumer.AcknowledgeExplicit,
		FetchMaxWait: 2 * time.Second, OnAcknowledgementCommit: func(_ kafkit.TopicPartition, offsets []int64, err error) {
			mu.Lock()
			defer mu.Unlock()
			for range offsets {
				outcomes = append(outcomes, err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close(context.Background())
	if err := sc.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	var recs []*consumer.ShareRecord
	for len(recs) == 0 && ctx.Err() == nil {
		if recs, err = sc.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Acknowledge(recs[0], consumer.Accept); err != nil {
		t.Fatal(err)
	}
	// The fetch carrying the acknowledgement finds nothing new and waits
	// 2 s at the broker; this Poll gives up after 200 ms.
	pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer pcancel()
	sc.Poll(pctx)
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 1 || outcomes[0] != nil {
		t.Errorf("acknowledgement outcomes %v, want one success", outcomes)
	}
	if !shareGroupDone(ctx, seeds, group, 1) {
		t.Error("the broker did not apply the acknowledgement")
	}
}
