package producer

// The randomized fault test of issue 21: faults mixed over many batches and
// partitions, checking the invariants exactly-once services depend on.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
)

// faultPlan injects the randomized test's faults into kfake's produce
// handling, per partition of each request: errors the broker answers after
// writing (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND) or instead of
// writing (NOT_LEADER_OR_FOLLOWER, INVALID_RECORD), and per request killed
// connections and delays past the client's request timeout (the broker then
// writes what the client gave up on, as Kafka does with a request it read
// before the client hung up).
//
// Each decision is drawn from the seed and the attempt itself (partition,
// producer id and epoch, base sequence, record count, and how often that
// batch arrived), not from the order requests reach kfake's goroutines, so a
// seed brings the same faults to the same batches. How records fall into
// batches still depends on timing. trace keeps what kfake was sent and what
// it was told to do, for the failure report.
type faultPlan struct {
	c     *kfake.Cluster
	seed  uint64
	delay time.Duration
	codes []faultCode
	hits  []*kfake.FaultHandle // per code

	mu      sync.Mutex // guards the fields below: kfake's goroutines and the test share them
	off     bool
	seen    map[attemptKey]int             // arrivals per attempt
	drawn   map[kmsg.Request]map[int32]int // per request: each partition's code (-1: none)
	trace   []string
	kills   int
	delays  int
	started time.Time
}

type faultCode struct {
	err *kerr.Error
	p   float64
}

type attemptKey struct {
	partition int32
	id        int64
	epoch     int16
	seq, n    int32
}

// mix hashes vals to a number in [0, 1) (splitmix64 steps).
func mix(vals ...uint64) float64 {
	var h uint64
	for _, v := range vals {
		h += v + 0x9e3779b97f4a7c15
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
		h = (h ^ (h >> 27)) * 0x94d049bb133111eb
		h ^= h >> 31
	}
	return float64(h>>11) / (1 << 53)
}

func injectFaults(c *kfake.Cluster, seed uint64, parts int32, delay time.Duration, rejects bool) *faultPlan {
	f := &faultPlan{c: c, seed: seed, delay: delay, seen: map[attemptKey]int{}, drawn: map[kmsg.Request]map[int32]int{},
		started: time.Now(), codes: []faultCode{{kerr.RequestTimedOut, 0.06}, {kerr.NotEnoughReplicasAfterAppend, 0.04},
			{kerr.NotLeaderForPartition, 0.06}}}
	if rejects {
		f.codes = append(f.codes, faultCode{kerr.InvalidRecord, 0.03})
	}
	for i, code := range f.codes {
		var fs []kfake.Fault
		for p := range parts {
			fs = append(fs, kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Partitions: []int32{p}, Err: code.err, Count: -1,
				When: func(req kmsg.Request) bool { return f.code(req, p) == i }})
		}
		f.hits = append(f.hits, c.Fault(fs...))
	}
	c.ControlKey(int16(kmsg.Produce), f.control)
	return f
}

// code is the fault drawn for partition p of req.
func (f *faultPlan) code(req kmsg.Request, p int32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.drawn[req][p]; ok {
		return c
	}
	return -1
}

// control runs once per produce request, before kfake handles it: it draws
// the request's faults, kills its connection or delays it.
func (f *faultPlan) control(req kmsg.Request) (kmsg.Response, error, bool) {
	f.c.KeepControl()
	f.mu.Lock()
	if f.off {
		f.mu.Unlock()
		return nil, nil, false
	}
	line := fmt.Sprintf("%6dms produce", time.Since(f.started).Milliseconds())
	draws := []uint64{f.seed}
	codes := map[int32]int{}
	for _, t := range req.(*kmsg.ProduceRequest).Topics {
		for _, p := range t.Partitions {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(p.Records); err != nil {
				continue
			}
			k := attemptKey{p.Partition, b.ProducerID, b.ProducerEpoch, b.FirstSequence, b.NumRecords}
			att := f.seen[k]
			f.seen[k]++
			u := mix(f.seed, uint64(k.partition), uint64(k.id), uint64(k.epoch), uint64(k.seq), uint64(k.n), uint64(att))
			draws = append(draws, uint64(u*(1<<53)))
			code, sum := -1, 0.0
			for i, c := range f.codes {
				if sum += c.p; code < 0 && u < sum {
					code = i
				}
			}
			codes[k.partition] = code
			line += fmt.Sprintf(" [p%d epoch %d seq %d+%d attempt %d", k.partition, k.epoch, k.seq, k.n, att)
			if code >= 0 {
				line += " -> " + f.codes[code].err.Message
			}
			line += "]"
		}
	}
	f.drawn[req] = codes
	u := mix(draws...)
	kill := u < 0.04
	var d time.Duration
	switch {
	case kill:
		f.kills++
		line += " KILLED"
	case u < 0.09:
		f.delays++
		d = time.Duration(mix(append(draws, 1)...) * float64(f.delay))
		line += fmt.Sprintf(" delayed %v", d.Round(time.Millisecond))
	}
	f.trace = append(f.trace, line)
	f.mu.Unlock()
	if kill {
		return nil, errors.New("injected: connection killed"), true
	}
	if d > 0 {
		f.c.SleepControl(func() { time.Sleep(d) })
	}
	return nil, nil, false
}

// stop ends the faults.
func (f *faultPlan) stop() {
	f.mu.Lock()
	f.off = true
	f.mu.Unlock()
}

// String counts the faults injected.
func (f *faultPlan) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := fmt.Sprintf("%d killed, %d delayed", f.kills, f.delays)
	for i, h := range f.hits {
		out += fmt.Sprintf(", %d %s", h.Hits(), f.codes[i].err.Message)
	}
	return out
}

// traceOf is the trace of the requests that carried partition p.
func (f *faultPlan) traceOf(p int32) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out strings.Builder
	for _, l := range f.trace {
		if strings.Contains(l, fmt.Sprintf("[p%d ", p)) {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}

// consumeAll reads every record of topic at level, up to each partition's
// log end offset as it is now: control records are read to know how far the
// log was read, and left out, so a slow fetch on a loaded machine cannot end
// the reading early. A transaction left open keeps read_committed short of
// the end: the test then fails on its deadline, naming the partitions.
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, level kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	unread := map[int32]int64{} // partition → its last offset, until read
	for _, p := range mresp.Topics[0].Partitions {
		if end := endOffset(t, c, topic, p.Partition); end > 0 {
			unread[p.Partition] = end - 1
		}
	}
	var out []*kgo.Record
	for len(unread) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %v; partitions not read to their last offset: %v", topic, ctx.Err(), unread)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("consuming %s: %v", topic, e.Err)
		}
		for _, r := range fs.Records() {
			if last, ok := unread[r.Partition]; ok && r.Offset >= last {
				delete(unread, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		}
	}
	return out
}

// TestFaultsRandomized runs the randomized fault test: by default a few
// fixed seeds (so that `go test ./...` runs the same configurations every
// time), 200 random ones with KAFKIT_PRODUCER_FAULTS_LONG=1 (or
// KAFKIT_PRODUCER_FAULTS_ITERS of them). Each iteration logs its seed;
// KAFKIT_PRODUCER_FAULTS_SEED replays one.
func TestFaultsRandomized(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4} // odd: transactional
	if os.Getenv("KAFKIT_PRODUCER_FAULTS_LONG") != "" {
		iters := 200
		if s := os.Getenv("KAFKIT_PRODUCER_FAULTS_ITERS"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			iters = n
		}
		base := uint64(time.Now().UnixNano())
		seeds = seeds[:0]
		for i := range iters {
			seeds = append(seeds, base+uint64(i))
		}
	}
	if s := os.Getenv("KAFKIT_PRODUCER_FAULTS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{v}
	}
	for i, seed := range seeds {
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

// linesAbout is the lines of log about partition p.
func linesAbout(log string, p int32) string {
	var out strings.Builder
	for _, l := range strings.SplitAfter(log, "\n") {
		if strings.Contains(l, fmt.Sprintf(" partition=%d ", p)) {
			out.WriteString(l)
		}
	}
	return out.String()
}

func randomFaultRun(t *testing.T, seed uint64, txn bool) {
	rng := rand.New(rand.NewPCG(seed, seed>>1)) // the workload's; only this goroutine draws from it
	const (
		parts = 4
		topic = "r"
	)
	c := newCluster(t, kfake.SeedTopics(parts, topic))
	requestTimeout := 300 * time.Millisecond
	delivery := 20 * time.Second
	if rng.Float64() < 0.3 {
		delivery = 2 * requestTimeout // batches expire, some on the wire: outcomes unknown
	}
	faults := injectFaults(c, seed, parts, 3*requestTimeout, true)
	log := &syncbuf.Buffer{}
	cfg := Config{BatchSize: 120, Linger: time.Millisecond, MaxInFlight: 1 + rng.IntN(5), RetryBackoff: 5 * time.Millisecond,
		RetryBackoffMax: 50 * time.Millisecond, RequestTimeout: requestTimeout, DeliveryTimeout: delivery,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if txn {
		cfg.TransactionalID = fmt.Sprint("rnd-", seed)
	}
	p := newProducer(t, c, cfg)
	// Generous: under -race on a loaded machine an iteration's commits and
	// flushes take many times their usual second or two.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if txn {
		if err := p.InitTransactions(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// fatalf reports a broken invariant of partition part with what the
	// broker was sent and what the producer saw.
	fatalf := func(part int32, format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		t.Logf("config: max in flight %d, delivery timeout %v; faults: %v", cfg.MaxInFlight, delivery, faults)
		t.Logf("partition %d, as the broker was sent it:\n%s", part, faults.traceOf(part))
		t.Logf("partition %d, as the producer saw it:\n%s", part, linesAbout(log.String(), part))
		t.FailNow()
	}

	var mu sync.Mutex
	outs := map[string]*outcome{}
	var wg sync.WaitGroup
	seq := make([]int, parts)
	send := func(txnNo int) error {
		part := int32(rng.IntN(parts))
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
	faults.stop()
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

	// Every record is stored at most once. A transaction the producer
	// aborted may hold a record twice: after a rejected batch the later
	// ones move down over its sequences (as Java's
	// adjustSequencesDueToFailedBatch), and an attempt the client gave up
	// on can then be written next to its resend
	// (TestFaultStaleAttemptAfterTransaction); read_committed readers never
	// see either copy (checked below).
	stored := map[string]int64{}
	epochs := map[string]int16{}
	last := map[int32]string{}
	for _, r := range consumeAll(t, c, topic, kgo.ReadUncommitted()) {
		v := string(r.Value)
		if off, dup := stored[v]; dup {
			if o := outs[v]; txn && o != nil && !committed[o.txn] {
				continue
			}
			fatalf(r.Partition, "record %s stored twice (offsets %d and %d, epochs %d and %d; callback %v)", v, off, r.Offset, epochs[v], r.ProducerEpoch, outs[v].err)
		}
		epochs[v] = r.ProducerEpoch
		stored[v] = r.Offset
		if !strings.HasPrefix(v, strconv.Itoa(int(r.Partition))+"-") {
			fatalf(r.Partition, "record %s in partition %d", v, r.Partition)
		}
		if v <= last[r.Partition] {
			fatalf(r.Partition, "partition %d: %s stored after %s", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
	}
	acked, failed, unknown := 0, 0, 0
	for v, o := range outs {
		part := int32(v[0] - '0')
		if o.calls != 1 {
			fatalf(part, "record %s: %d callbacks", v, o.calls)
		}
		off, ok := stored[v]
		switch {
		case o.err == nil:
			acked++
			if !ok || off != o.rec.Offset {
				fatalf(part, "record %s acknowledged at offset %d, stored: %v at %d", v, o.rec.Offset, ok, off)
			}
		case errors.Is(o.err, kerr.InvalidRecord) && !errors.Is(o.err, ErrUnknownOutcome):
			failed++
			if ok {
				fatalf(part, "record %s rejected (%v) but stored at %d", v, o.err, off)
			}
		default:
			unknown++ // expired, or dropped by an abort: stored at most once, checked above
		}
	}
	if txn {
		visible := map[string]int{}
		for _, r := range consumeAll(t, c, topic, kgo.ReadCommitted()) {
			visible[string(r.Value)]++
		}
		for v, o := range outs {
			part := int32(v[0] - '0')
			switch {
			case committed[o.txn] && (o.err != nil || visible[v] != 1):
				fatalf(part, "record %s of committed transaction %d: err %v, visible %d times", v, o.txn, o.err, visible[v])
			case !committed[o.txn] && visible[v] > 0:
				fatalf(part, "record %s of aborted transaction %d is visible to read_committed", v, o.txn)
			}
		}
	}
	t.Logf("%d records: %d acknowledged, %d rejected, %d unknown/aborted; %d transactions committed; faults: %v",
		len(outs), acked, failed, unknown, len(committed), faults)
}
