package producer

import (
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// A partition's batches go out one at a time until the broker acknowledged
// one under the producer's id (an epoch bump keeps it known: the broker takes
// a new epoch only from sequence 0). A broker that does not know the
// producer takes any sequence as its first (Kafka 2.8+), and requests to
// one broker are not tied to one connection: TestProducerSurvivesBrokerRestarts
// saw sequence 0's request fail on a refused dial while the broker
// restarted, the request behind it dial again and be written first, and
// sequence 0 answered OUT_OF_ORDER_SEQUENCE_NUMBER until it expired. Here
// the broker holds the first batch; the second must wait for its ack.
func TestFaultFirstBatchAloneUntilAcked(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	hold := make(chan struct{})
	var n atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n.Add(1) == 1 {
			c.SleepControl(func() { <-hold })
		}
		return nil, nil, false
	})
	p := newProducer(t, c, Config{Linger: -1, MaxInFlight: 5})
	ctx := testCtx(t)
	tp := kafkit.TopicPartition{Topic: "t"}
	a := newAcks()
	if err := a.send(t, p, &kafkit.Record{Topic: "t", Value: []byte("A")}); err != nil {
		t.Fatal(err)
	}
	waitInflight(t, p, tp, 1)
	if err := a.send(t, p, &kafkit.Record{Topic: "t", Value: []byte("B")}); err != nil {
		t.Fatal(err)
	}
	// B is queued before the first call is posted, so the drain of the
	// sender's loop turn that runs the first call has seen it by the time
	// the second call returns.
	noop := func() {}
	var inflight, queued int
	for range 2 {
		if err := p.snd.call(ctx, noop); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.snd.call(ctx, func() {
		pq := p.acc.parts.Load().byTP[tp]
		pq.mu.Lock()
		inflight, queued = pq.inflight, len(pq.batches)
		pq.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if inflight != 1 || queued != 1 {
		t.Errorf("with the first batch unacknowledged: %d batches on the wire and %d queued, want 1 and 1", inflight, queued)
	}
	close(hold)
	a.wg.Wait()
	for v, want := range map[string]int64{"A": 0, "B": 1} {
		if a.errs[v] != nil || a.recs[v].Offset != want {
			t.Fatalf("%s: %v at offset %d, want stored at %d", v, a.errs[v], a.recs[v].Offset, want)
		}
	}
	// Once the broker knows the producer, batches are pipelined again.
	if err := p.snd.call(ctx, func() {
		if pq := p.acc.parts.Load().byTP[tp]; !pq.known {
			t.Error("partition not known after its acknowledgement")
		}
	}); err != nil {
		t.Fatal(err)
	}
}
