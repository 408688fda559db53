package integration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/internal/testutil"
)

// confirmations tracks what the broker confirmed of our share consumers'
// acknowledgements, per record value, and fails on any record delivered
// again after its acceptance or rejection was confirmed.
type confirmations struct {
	t         *testing.T
	mu        sync.Mutex
	pending   map[kafkit.TopicPartition]map[int64]int // offset -> value, acknowledged not yet confirmed
	decided   map[int64]consumer.AcknowledgeType      // pending decisions by offset (single-partition topics)
	confirmed map[int]consumer.AcknowledgeType        // value -> final type confirmed
	delivered map[int][]int16                         // value -> delivery counts
	by        map[string]int                          // consumer -> records delivered
}

func newConfirmations(t *testing.T) *confirmations {
	return &confirmations{t: t, pending: map[kafkit.TopicPartition]map[int64]int{}, decided: map[int64]consumer.AcknowledgeType{},
		confirmed: map[int]consumer.AcknowledgeType{}, delivered: map[int][]int16{}, by: map[string]int{}}
}

// deliver records a delivery and returns the workload's decision: 10% of
// the values rejected, 10% released on their first delivery.
func (c *confirmations) deliver(name string, r *consumer.ShareRecord) consumer.AcknowledgeType {
	v, _ := strconv.Atoi(string(r.Value))
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.confirmed[v]; ok {
		c.t.Errorf("record %d delivered again (count %d) after %v was confirmed", v, r.DeliveryCount, t)
	}
	c.delivered[v] = append(c.delivered[v], r.DeliveryCount)
	c.by[name]++
	tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
	if c.pending[tp] == nil {
		c.pending[tp] = map[int64]int{}
	}
	c.pending[tp][r.Offset] = v
	t := consumer.Accept
	switch {
	case v%10 == 0:
		t = consumer.Reject
	case v%10 == 5 && r.DeliveryCount == 1:
		t = consumer.Release
	}
	c.decided[r.Offset] = t
	return t
}

// onCommit is the consumers' OnAcknowledgementCommit.
func (c *confirmations) onCommit(tp kafkit.TopicPartition, offsets []int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, off := range offsets {
		v, ok := c.pending[tp][off]
		if !ok {
			continue
		}
		delete(c.pending[tp], off)
		if t := c.decided[off]; err == nil && t != consumer.Release {
			c.confirmed[v] = t
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
		t, ok := c.confirmed[v]
		switch {
		case !ok:
			c.t.Errorf("record %d never confirmed (deliveries %v)", v, c.delivered[v])
		case (v%10 == 0) != (t == consumer.Reject):
			c.t.Errorf("record %d confirmed %v", v, t)
		case v%10 == 5 && (len(c.delivered[v]) < 2 || c.delivered[v][1] < 2):
			c.t.Errorf("record %d released once, delivered with counts %v", v, c.delivered[v])
		}
	}
}

func newShareConsumer(t *testing.T, seeds []string, group, topic string, c *confirmations, mode string) *consumer.ShareConsumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := consumer.NewShare(ctx, consumer.ShareConfig{BootstrapServers: seeds, GroupID: group, AcknowledgementMode: mode,
		MaxPollRecords: 50, FetchMaxWait: 200 * time.Millisecond, OnAcknowledgementCommit: c.onCommit})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	return sc
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
		for i := range 2 {
			name := "c" + strconv.Itoa(i)
			sc := newShareConsumer(t, tg.Bootstrap, group, topic, conf, consumer.AcknowledgeExplicit)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sc.Close(context.Background())
				for !conf.done(total) && ctx.Err() == nil {
					pctx, pcancel := context.WithTimeout(ctx, time.Second)
					recs, err := sc.Poll(pctx)
					pcancel()
					if err != nil && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s poll: %v", name, err)
						return
					}
					for _, r := range recs {
						if err := sc.Acknowledge(r, conf.deliver(name, r)); err != nil {
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
