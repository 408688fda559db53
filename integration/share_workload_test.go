package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
)

// The workload's rule: 0.1% of the values rejected, 1% released on their
// first delivery, the rest accepted.
func workloadRejects(v int) bool  { return v%1000 == 0 }
func workloadReleases(v int) bool { return v%100 == 50 }

// TestShareGroupWorkloadWithRestart is the share-group workload: 4
// share consumers on one 2-partition topic, 1% of the records released
// once and 0.1% rejected, our broker restarted when half the records are
// done. Every record must be accepted exactly once or rejected, as the
// broker confirmed it, none lost, no record delivered again after its
// acknowledgement was confirmed (so the restart lost none), delivery
// counts rising past every confirmed release and never over the limit.
// Our SDK's share consumer reports each record's outcome, so its run
// checks exactly that; kgo reports outcomes per partition and request,
// so its run counts a record as confirmed only when every outcome kgo
// reported for its partition over that poll's flush succeeded, and allows
// the others (the records of a partition with a failed outcome) to be
// done without a confirmation when the broker shows them done.
// 10,000 records by default, 100,000 with KAFKIT_SHARE_LONG=1.
func TestShareGroupWorkloadWithRestart(t *testing.T) {
	total := 10_000
	if os.Getenv("KAFKIT_SHARE_LONG") != "" {
		total = 100_000
	}
	t.Run("sdk", func(t *testing.T) {
		conf := newConfirmations(t)
		conf.reject, conf.release = workloadRejects, workloadReleases
		runShareWorkload(t, total, func() int { return conf.progress() }, func(ctx context.Context, seeds []string, group, topic string, name string, stop *atomic.Bool) {
			runSDKShareWorker(ctx, t, seeds, group, topic, name, conf, stop)
		}, func(brokerDone bool) bool { return brokerDone && conf.done(total) }, func() {})
		conf.check(total)
		t.Logf("sdk: %d records, %d acknowledgements failed (each reported for its record), deliveries per consumer %v", total, conf.failed, conf.by)
	})
	t.Run("kgo", func(t *testing.T) {
		l := newKgoShareLedger(total)
		runShareWorkload(t, total, l.progress, func(ctx context.Context, seeds []string, group, topic string, _ string, stop *atomic.Bool) {
			runKgoShareWorker(ctx, t, seeds, group, topic, l, stop)
		}, func(brokerDone bool) bool { return brokerDone }, l.restarting)
		l.check(t)
	})
}

// startRestartableBroker starts a broker with a share group reading topic
// (partitions of it, total records) from the earliest offset, and returns
// its address and the function that restarts it on the same address.
func startRestartableBroker(t *testing.T, topic, group string, partitions int32, total int) (seeds []string, restart func()) {
	cfg := broker.DefaultConfig()
	cfg.Set(broker.DevOverrides)
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = b.Addr() // the restart comes back on the same address
	t.Cleanup(func() { b.Close(context.Background()) })
	seeds = []string{b.Addr()}
	createTopicOn(t, seeds, topic, partitions)
	setGroupConfigs(t, seeds, group, "share.auto.offset.reset", "earliest")
	produceValues(t, seeds, topic, 0, total)
	return seeds, func() {
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if b, err = broker.New(cfg); err != nil {
			t.Fatalf("restart: %v", err)
		}
	}
}

// runShareWorkload starts a broker with the workload's records and runs 4
// workers, restarting the broker once progress reaches half of total
// (restarting is told first); it stops them once done says so, given
// whether the broker shows every record done (each partition's
// share-partition start offset at its end).
func runShareWorkload(t *testing.T, total int, progress func() int,
	worker func(ctx context.Context, seeds []string, group, topic, name string, stop *atomic.Bool),
	done func(brokerDone bool) bool, restarting func()) {
	const topic, group = "share-workload", "share-workload-g"
	seeds, restart := startRestartableBroker(t, topic, group, 2, total)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, seeds, group, topic, "c"+strconv.Itoa(i), &stop)
		}()
	}
	start := time.Now()
	var restartedAt time.Duration
	for ctx.Err() == nil {
		if restartedAt == 0 && progress() >= total/2 {
			restartedAt = time.Since(start)
			restarting()
			restart()
		}
		if restartedAt != 0 && done(shareGroupDone(ctx, seeds, group, int64(total))) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if ctx.Err() != nil {
		t.Errorf("not done in time: %d of %d records confirmed", progress(), total)
	}
	if restartedAt == 0 {
		t.Error("the broker was never restarted")
	}
	t.Logf("%d records in %v, broker restarted after %v", total, time.Since(start).Round(time.Millisecond), restartedAt.Round(time.Millisecond))
}

// shareGroupDone reports whether the broker has every record of the
// group's share-partitions done: their start offsets add up to total (each
// partition holds its share of the records from offset 0).
func shareGroupDone(ctx context.Context, seeds []string, group string, total int64) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return false
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: group}}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		return false
	}
	var sum int64
	for _, tp := range resp.Groups[0].Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				return false
			}
			sum += p.StartOffset
		}
	}
	return sum == total
}

// runSDKShareWorker is one of our share consumers in explicit mode: it
// acknowledges every record it polls by the workload's rule, committing
// synchronously after every other poll and otherwise letting the
// acknowledgements ride on the next fetch. Poll errors are expected while
// the broker restarts.
func runSDKShareWorker(ctx context.Context, t *testing.T, seeds []string, group, topic, name string, conf *confirmations, stop *atomic.Bool) {
	sc := newShareConsumer(t, seeds, group, topic, name, conf, consumer.AcknowledgeExplicit)
	defer func() {
		if err := sc.Close(context.Background()); err != nil {
			t.Logf("%s close: %v", name, err)
		}
	}()
	for i := 0; !stop.Load() && ctx.Err() == nil; i++ {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		recs, err := sc.Poll(pctx)
		pcancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			time.Sleep(20 * time.Millisecond)
		}
		for _, r := range recs {
			d := conf.deliver(name, r)
			conf.acked(name, r, d)
			if err := sc.Acknowledge(r, d); err != nil {
				t.Errorf("%s acknowledge: %v", name, err)
			}
		}
		if i%2 == 0 {
			sc.CommitSync(ctx)
		}
	}
}

func (c *confirmations) progress() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.confirmed)
}

// kgoShareLedger is the kgo run's account of every record.
type kgoShareLedger struct {
	total     int
	mu        sync.Mutex
	delivered map[int][]int32 // value -> delivery counts, stale copies (see deliver) left out
	confirmed map[int][]int32 // value -> delivery counts of confirmed accepts and rejects
	released  map[int]int32   // value -> delivery count of its last confirmed release
	unsure    map[int]int     // value -> acknowledgements in a partition kgo reported a failure for
	failures  int             // failed outcomes kgo reported
	// restarted is set when the broker restart begins; stale counts the
	// deliveries taken for copies fetched before it (see deliver).
	restarted bool
	stale     int
	bad       []string
}

func newKgoShareLedger(total int) *kgoShareLedger {
	return &kgoShareLedger{total: total, delivered: map[int][]int32{}, confirmed: map[int][]int32{},
		released: map[int]int32{}, unsure: map[int]int{}}
}

func (l *kgoShareLedger) progress() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.confirmed)
}

// restarting notes that the broker restart begins.
func (l *kgoShareLedger) restarting() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restarted = true
}

func (l *kgoShareLedger) errorf(format string, args ...any) {
	if len(l.bad) < 20 {
		l.bad = append(l.bad, fmt.Sprintf(format, args...))
	}
}

// deliver notes a delivery and returns the workload's decision, and
// whether the delivery can only be a stale copy.
//
// A record delivered again after its acknowledgement was confirmed, or
// with a count no higher than that of its confirmed release, lost that
// acknowledgement, unless kgo fetched it before the broker restarted:
// kgo hands out the records it had buffered from the old broker after the
// restart (their locks and share session are gone, and kgo fails their
// acknowledgements itself), while another consumer may already have had
// the same records from the restarted broker confirmed. Such a copy's
// count is no higher than the confirmed one (the restarted broker counts
// on from the durable count, at most the copy's), so it is let through
// only after the restart began and with such a count, and settle requires
// its acknowledgement to fail: a record acquired again after a lost
// acknowledgement would be acknowledged successfully or delivered again
// with a higher count.
func (l *kgoShareLedger) deliver(v int, dc int32) (ack kgo.AckStatus, stale bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.confirmed[v]; len(c) > 0 {
		if l.restarted && dc <= slices.Max(c) {
			stale = true
		} else {
			l.errorf("record %d delivered again (count %d) after its acknowledgement at delivery %v was confirmed", v, dc, c)
		}
	}
	if n, ok := l.released[v]; ok && dc <= n {
		if l.restarted {
			stale = true
		} else {
			l.errorf("record %d delivered with count %d after its release at delivery %d was confirmed", v, dc, n)
		}
	}
	if !stale {
		// A stale copy's count belongs to the broker before the restart,
		// so it may be below a count the restarted broker gave since:
		// only live deliveries must count upwards (check).
		l.delivered[v] = append(l.delivered[v], dc)
	}
	switch {
	case workloadRejects(v):
		return kgo.AckReject, stale
	case workloadReleases(v) && dc == 1:
		return kgo.AckRelease, stale
	}
	return kgo.AckAccept, stale
}

// polled is one record of a poll and what became of it.
type polled struct {
	v, partition int
	dc           int32
	ack          kgo.AckStatus
	stale        bool // see deliver
}

// settle records the outcome of a poll's acknowledgements: failed holds
// the partitions kgo reported a failure for during its flush.
func (l *kgoShareLedger) settle(batch []polled, failed map[int32]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range failed {
		l.failures += n
	}
	for _, r := range batch {
		switch {
		case failed[int32(r.partition)] > 0:
			l.unsure[r.v]++
			if r.stale {
				l.stale++
			}
		case r.stale:
			l.errorf("record %d delivered again (count %d) after a confirmed acknowledgement (deliveries %v) was acknowledged successfully: the broker lost the first", r.v, r.dc, l.delivered[r.v])
		case r.ack == kgo.AckRelease:
			l.released[r.v] = r.dc
		default:
			l.confirmed[r.v] = append(l.confirmed[r.v], r.dc)
		}
	}
}

func (l *kgoShareLedger) check(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bad {
		t.Error(b)
	}
	doneUnconfirmed := 0
	for v := range l.total {
		dcs := l.delivered[v]
		switch c := l.confirmed[v]; {
		case len(dcs) == 0:
			t.Errorf("record %d never delivered", v)
		case len(c) > 1:
			t.Errorf("record %d acknowledged and confirmed at deliveries %v", v, c)
		case len(c) == 0 && l.unsure[v] == 0:
			t.Errorf("record %d never confirmed and no failure reported (deliveries %v)", v, dcs)
		case len(c) == 0:
			doneUnconfirmed++ // the broker shows it done
		case workloadReleases(v) && !workloadRejects(v) && c[0] < 2:
			t.Errorf("record %d released once, confirmed at delivery %d (counts %v)", v, c[0], dcs)
		}
		for i, dc := range dcs {
			if dc < 1 || dc > shareDeliveryLimit || (i > 0 && dc < dcs[i-1]) {
				t.Errorf("record %d delivery counts %v", v, dcs)
				break
			}
		}
	}
	t.Logf("kgo: %d records, %d confirmed exactly once, %d done at the broker behind a partition outcome kgo reported failed, %d failed outcomes, %d copies fetched before the restart delivered after it", l.total, len(l.confirmed), doneUnconfirmed, l.failures, l.stale)
}

// runKgoShareWorker runs one kgo share consumer of the workload until
// stop.
func runKgoShareWorker(ctx context.Context, t *testing.T, seeds []string, group, topic string, l *kgoShareLedger, stop *atomic.Bool) {
	w, err := newKgoShareWorker(seeds, group, topic, l)
	if err != nil {
		t.Error(err)
		return
	}
	defer w.cl.Close()
	for !stop.Load() && ctx.Err() == nil {
		if err := w.poll(ctx, 200); err != nil {
			return // the records' outcomes are unknown; the test is over
		}
	}
}

// kgoShareWorker is one kgo share consumer: it acknowledges every record
// it polls by the workload's rule and flushes after each poll, so every
// outcome kgo reports until the flush returns belongs to that poll.
type kgoShareWorker struct {
	cl     *kgo.Client
	l      *kgoShareLedger
	mu     sync.Mutex
	failed map[int32]int // partition -> failed outcomes since the last poll
}

func newKgoShareWorker(seeds []string, group, topic string, l *kgoShareLedger) (*kgoShareWorker, error) {
	w := &kgoShareWorker{l: l, failed: map[int32]int{}}
	var err error
	w.cl, err = kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.ShareMaxRecords(200),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, r := range rs {
				if r.Err != nil {
					w.failed[r.Partition]++
				}
			}
		}))
	return w, err
}

// poll polls up to max records (waiting a second at most), acknowledges
// them, flushes and settles their outcomes in the ledger.
func (w *kgoShareWorker) poll(ctx context.Context, max int) error {
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	fs := w.cl.PollRecords(pctx, max)
	pcancel()
	var batch []polled
	fs.EachRecord(func(r *kgo.Record) {
		v, _ := strconv.Atoi(string(r.Value))
		ack, stale := w.l.deliver(v, r.DeliveryCount())
		r.Ack(ack)
		batch = append(batch, polled{v: v, partition: int(r.Partition), dc: r.DeliveryCount(), ack: ack, stale: stale})
	})
	if err := w.cl.FlushAcks(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.l.settle(batch, w.failed)
	clear(w.failed)
	return nil
}

// TestKgoShareLedgerStaleCopies shows the kgo ledger's allowance for
// copies fetched before a restart (kgoShareLedger.deliver) against the
// real thing: kgo consumer y holds records fetched from the broker
// unpolled while the broker restarts, consumer x gets them from the
// restarted broker and has them confirmed, then y polls its copies. The
// ledger must count them as stale, with failed acknowledgements, and
// report no lost acknowledgement; it still reports one when a copy's
// acknowledgement succeeds.
func TestKgoShareLedgerStaleCopies(t *testing.T) {
	const topic, group, total = "share-stale", "share-stale-g", 10
	seeds, restart := startRestartableBroker(t, topic, group, 1, total)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := newKgoShareLedger(total)
	y, err := newKgoShareWorker(seeds, group, topic, l)
	if err != nil {
		t.Fatal(err)
	}
	defer y.cl.Close()
	// y's one fetch acquires every record; it polls the first and
	// keeps the others buffered.
	for l.progress() == 0 && ctx.Err() == nil {
		if err := y.poll(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	l.restarting()
	restart()
	x, err := newKgoShareWorker(seeds, group, topic, l)
	if err != nil {
		t.Fatal(err)
	}
	defer x.cl.Close()
	for l.progress() < total && ctx.Err() == nil {
		if err := x.poll(ctx, total); err != nil {
			t.Fatal(err)
		}
	}
	if err := y.poll(ctx, total); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	confirmed, bad, stale := len(l.confirmed), slices.Clone(l.bad), l.stale
	l.mu.Unlock()
	if confirmed != total || len(bad) > 0 {
		t.Fatalf("%d of %d records confirmed, lost acknowledgements reported: %v", confirmed, total, bad)
	}
	if stale == 0 {
		t.Fatal("y delivered no copy fetched before the restart: the test shows nothing")
	}
	t.Logf("%d copies fetched before the restart delivered after it, their acknowledgements failed", stale)
	// A copy whose acknowledgement succeeded would have been a record
	// acquired again after its confirmed acknowledgement.
	l.settle([]polled{{v: 1, dc: 1, ack: kgo.AckAccept, stale: true}}, nil)
	if len(l.bad) != 1 {
		t.Fatalf("a confirmed copy was not reported: %v", l.bad)
	}
}
