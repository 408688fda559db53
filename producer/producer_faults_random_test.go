package producer

// The randomized fault test of issue 21: faults mixed over many batches and
// partitions, checking the invariants exactly-once services depend on.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// lockedRand is a rand shared by kfake's goroutines and the test.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) chance(p float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64() < p
}

func (l *lockedRand) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// injectFaults makes kfake answer produce requests, per partition, with
// errors applied (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND) or not
// (NOT_LEADER_OR_FOLLOWER, INVALID_RECORD), kill connections before
// applying, and delay requests past the client's request timeout, so that
// the broker applies them but the response is lost. It returns the function
// that stops injecting and the one that counts the faults injected.
func injectFaults(c *kfake.Cluster, rng *lockedRand, delay time.Duration, rejects bool) (stop func(), count func() string) {
	var stopped sync.Mutex
	off := false
	on := func() bool {
		stopped.Lock()
		defer stopped.Unlock()
		return !off
	}
	codes := []struct {
		err *kerr.Error
		p   float64
	}{
		{kerr.RequestTimedOut, 0.06}, {kerr.NotEnoughReplicasAfterAppend, 0.04}, {kerr.NotLeaderForPartition, 0.06},
	}
	if rejects {
		codes = append(codes, struct {
			err *kerr.Error
			p   float64
		}{kerr.InvalidRecord, 0.03})
	}
	var handles []*kfake.FaultHandle
	for _, code := range codes {
		p := code.p
		handles = append(handles, c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: code.err, Count: -1,
			When: func(kmsg.Request) bool { return on() && rng.chance(p) }}))
	}
	var kills, delays atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !on() {
			return nil, nil, false
		}
		switch {
		case rng.chance(0.04):
			kills.Add(1)
			return nil, errors.New("injected: connection killed"), true
		case rng.chance(0.05):
			delays.Add(1)
			d := time.Duration(rng.intN(int(delay)))
			c.SleepControl(func() { time.Sleep(d) })
		}
		return nil, nil, false
	})
	stop = func() {
		stopped.Lock()
		off = true
		stopped.Unlock()
	}
	count = func() string {
		out := fmt.Sprintf("%d killed, %d delayed", kills.Load(), delays.Load())
		for i, h := range handles {
			out += fmt.Sprintf(", %d %s", h.Hits(), codes[i].err.Message)
		}
		return out
	}
	return stop, count
}

// consumeAll reads every record of topic at level until the log stays
// quiet.
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, level kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	var out []*kgo.Record
	for quiet := 0; quiet < 4; {
		pctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("consuming %s: %v", topic, e.Err)
			}
		}
		recs := fs.Records()
		if len(recs) == 0 {
			quiet++
		} else {
			quiet = 0
		}
		out = append(out, recs...)
	}
	return out
}

// TestFaultsRandomized runs the randomized fault test: a few iterations by
// default, 200 with KAFKIT_PRODUCER_FAULTS_LONG=1. Each iteration logs its
// seed; KAFKIT_PRODUCER_FAULTS_SEED replays one.
func TestFaultsRandomized(t *testing.T) {
	iters := 4
	if os.Getenv("KAFKIT_PRODUCER_FAULTS_LONG") != "" {
		iters = 200
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("KAFKIT_PRODUCER_FAULTS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, iters = v, 1
	}
	for i := range iters {
		seed := base + uint64(i)
		txn := seed%2 == 1
		if !t.Run(fmt.Sprintf("seed=%d/txn=%v", seed, txn), func(t *testing.T) { randomFaultRun(t, seed, txn) }) {
			t.Fatalf("iteration %d failed; replay with KAFKIT_PRODUCER_FAULTS_SEED=%d", i, seed)
		}
	}
}

// outcome is what the producer reported for one record.
type outcome struct {
	rec   *kafkit.Record
	err   error
	calls int
	txn   int // transaction number, -1 outside transactions
}

func randomFaultRun(t *testing.T, seed uint64, txn bool) {
	rng := &lockedRand{r: rand.New(rand.NewPCG(seed, seed>>1))}
	const (
		parts = 4
		topic = "r"
	)
	c := newCluster(t, kfake.SeedTopics(parts, topic))
	requestTimeout := 300 * time.Millisecond
	delivery := 20 * time.Second
	if rng.chance(0.3) {
		delivery = 2 * requestTimeout // batches expire, some on the wire: outcomes unknown
	}
	stop, injected := injectFaults(c, rng, 3*requestTimeout, true)
	cfg := Config{BatchSize: 120, Linger: time.Millisecond, MaxInFlight: 1 + rng.intN(5), RetryBackoff: 5 * time.Millisecond,
		RetryBackoffMax: 50 * time.Millisecond, RequestTimeout: requestTimeout, DeliveryTimeout: delivery}
	if txn {
		cfg.TransactionalID = fmt.Sprint("rnd-", seed)
	}
	p := newProducer(t, c, cfg)
	ctx := testCtx(t)
	if txn {
		if err := p.InitTransactions(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	outs := map[string]*outcome{}
	var wg sync.WaitGroup
	seq := make([]int, parts)
	send := func(txnNo int) error {
		part := int32(rng.intN(parts))
		v := fmt.Sprintf("%d-%06d", part, seq[part])
		seq[part]++
		o := &outcome{txn: txnNo}
		mu.Lock()
		outs[v] = o
		mu.Unlock()
		wg.Add(1)
		err := p.Send(ctx, &kafkit.Record{Topic: topic, Partition: part, Value: []byte(v)}, func(r *kafkit.Record, err error) {
			mu.Lock()
			o.rec, o.err = r, err
			o.calls++
			mu.Unlock()
			wg.Done()
		})
		if err != nil {
			wg.Done()
			mu.Lock()
			delete(outs, v)
			mu.Unlock()
		}
		return err
	}

	committed := map[int]bool{}
	if !txn {
		for range 600 {
			if err := send(-1); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	} else {
		for n := range 8 {
			if err := p.BeginTransaction(); err != nil {
				t.Fatalf("transaction %d: %v", n, err)
			}
			for range 60 {
				if err := send(n); err != nil {
					if !errors.Is(err, ErrAbortableTransaction) {
						t.Fatalf("transaction %d: Send: %v", n, err)
					}
					break
				}
			}
			err := p.CommitTransaction(ctx)
			switch {
			case err == nil:
				committed[n] = true
			case errors.Is(err, ErrAbortableTransaction) && !errors.Is(err, ErrFatal):
				if err := p.AbortTransaction(ctx); err != nil {
					t.Fatalf("transaction %d: abort after %v: %v", n, err, err)
				}
			default:
				t.Fatalf("transaction %d: commit: %v", n, err)
			}
		}
	}
	wg.Wait()

	// The producer is usable once the faults stop.
	stop()
	if txn {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		committed[99] = true
	}
	for range parts * 2 {
		if err := send(99); err != nil {
			t.Fatal(err)
		}
	}
	if txn {
		if err := p.CommitTransaction(ctx); err != nil {
			t.Fatalf("clean transaction after the faults: %v", err)
		}
	} else if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	stored := map[string]int64{}
	epochs := map[string]int16{}
	last := map[int32]string{}
	for _, r := range consumeAll(t, c, topic, kgo.ReadUncommitted()) {
		v := string(r.Value)
		if _, dup := stored[v]; dup {
			t.Fatalf("record %s stored twice (offsets %d and %d, epochs %d and %d; callback %v)", v, stored[v], r.Offset, epochs[v], r.ProducerEpoch, outs[v].err)
		}
		epochs[v] = r.ProducerEpoch
		stored[v] = r.Offset
		if !strings.HasPrefix(v, strconv.Itoa(int(r.Partition))+"-") {
			t.Fatalf("record %s in partition %d", v, r.Partition)
		}
		if v <= last[r.Partition] {
			t.Fatalf("partition %d: %s stored after %s", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
	}
	acked, failed, unknown := 0, 0, 0
	for v, o := range outs {
		if o.calls != 1 {
			t.Fatalf("record %s: %d callbacks", v, o.calls)
		}
		off, ok := stored[v]
		switch {
		case o.err == nil:
			acked++
			if !ok || off != o.rec.Offset {
				t.Fatalf("record %s acknowledged at offset %d, stored: %v at %d", v, o.rec.Offset, ok, off)
			}
		case errors.Is(o.err, kerr.InvalidRecord) && !errors.Is(o.err, ErrUnknownOutcome):
			failed++
			if ok {
				t.Fatalf("record %s rejected (%v) but stored at %d", v, o.err, off)
			}
		default:
			unknown++ // expired, or dropped by an abort: stored at most once, checked above
		}
	}
	if txn {
		visible := map[string]bool{}
		for _, r := range consumeAll(t, c, topic, kgo.ReadCommitted()) {
			visible[string(r.Value)] = true
		}
		for v, o := range outs {
			switch {
			case committed[o.txn] && (o.err != nil || !visible[v]):
				t.Fatalf("record %s of committed transaction %d: err %v, visible %v", v, o.txn, o.err, visible[v])
			case !committed[o.txn] && visible[v]:
				t.Fatalf("record %s of aborted transaction %d is visible to read_committed", v, o.txn)
			}
		}
	}
	t.Logf("%d records: %d acknowledged, %d rejected, %d unknown/aborted; %d transactions committed; faults: %s",
		len(outs), acked, failed, unknown, len(committed), injected())
}
