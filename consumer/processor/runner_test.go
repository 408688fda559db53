package processor_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/consumer/processor"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/producer"
)

// backends are the clusters every runner test runs against: our broker and
// franz-go's kfake, an independent implementation.
var backends = []struct {
	name  string
	start func(t *testing.T) []string
}{
	{"broker", func(t *testing.T) []string { return []string{broker.NewTest(t).Addr()} }},
	{"kfake", func(t *testing.T) []string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()
	}},
}

func forEachBackend(t *testing.T, test func(t *testing.T, addrs []string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.start(t)) })
	}
}

func createTopic(t *testing.T, addrs []string, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
}

// produce sends records 0..n-1 to topic: the value is the id, the key one
// of 97 so keys spread over the partitions.
func produce(t testing.TB, addrs []string, topic string, n int, icpt ...producer.Interceptor) {
	t.Helper()
	p, err := producer.New(producer.Config{BootstrapServers: addrs, Interceptors: icpt})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var failed sync.Once
	for i := range n {
		r := &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Key: fmt.Appendf(nil, "k%d", i%97), Value: strconv.AppendInt(nil, int64(i), 10)}
		if err := p.Send(ctx, r, func(_ *kafkit.Record, err error) {
			if err != nil {
				failed.Do(func() { t.Errorf("produce: %v", err) })
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func consumerConfig(addrs []string, group string) consumer.Config {
	return consumer.Config{
		BootstrapServers:  addrs,
		GroupID:           group,
		AutoOffsetReset:   consumer.OffsetResetEarliest,
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		FetchMaxWait:      100 * time.Millisecond,
	}
}

// readAll reads every record of topic's partitions from the beginning until
// want arrived (or 20 s passed).
func readAll(t *testing.T, addrs []string, topic string, partitions int32, want int) []*kafkit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: addrs, AutoOffsetReset: consumer.OffsetResetEarliest, FetchMaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(context.Background()) }()
	var tps []kafkit.TopicPartition
	for p := range partitions {
		tps = append(tps, kafkit.TopicPartition{Topic: topic, Partition: p})
	}
	if err := c.Assign(tps...); err != nil {
		t.Fatal(err)
	}
	var out []*kafkit.Record
	for len(out) < want {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("reading %s: %d of %d records: %v", topic, len(out), want, err)
		}
		out = append(out, recs...)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ledger records what handlers did, across runners.
type ledger struct {
	t        *testing.T
	mu       sync.Mutex            // guards the fields below
	handled  map[int]int           // id → successful handler returns
	attempts map[int]int           // id → handler calls
	origin   map[int]kafkit.Record // id → where it was read (partition, offset)
	last     map[string]int64      // runner/partition → offset of the latest call
	running  map[int]int           // id → handler calls in progress
	inFlight map[int]bool          // ids running when the shutdown began, or started after
	stopping bool
}

func newLedger(t *testing.T) *ledger {
	return &ledger{t: t, handled: map[int]int{}, attempts: map[int]int{}, origin: map[int]kafkit.Record{},
		last: map[string]int64{}, running: map[int]int{}, inFlight: map[int]bool{}}
}

func permanentID(id int) bool { return id%1000 == 3 } // 0.1%
func transientID(id int) bool { return id%100 == 7 }  // 1%, fails its first attempt

var errTransient = errors.New("transient failure")

// handler returns the test handler for the runner named run. While the
// ledger is stopping, a third of the records wait for their ctx (the
// runner abandons them) and still report success, as a handler whose side
// effect happened but whose commit did not would.
func (l *ledger) handler(run string) processor.Handler {
	return func(ctx context.Context, r *kafkit.Record) error {
		id, err := strconv.Atoi(string(r.Value))
		if err != nil {
			l.t.Errorf("record value %q", r.Value)
			return processor.Permanent(err)
		}
		l.mu.Lock()
		key := fmt.Sprintf("%s/%d", run, r.Partition)
		if last, ok := l.last[key]; ok && r.Offset < last {
			l.t.Errorf("%s partition %d: offset %d handled after %d", run, r.Partition, r.Offset, last)
		}
		l.last[key] = r.Offset
		l.attempts[id]++
		attempt := l.attempts[id]
		l.origin[id] = *r
		l.running[id]++
		if l.stopping {
			l.inFlight[id] = true
		}
		stopping := l.stopping
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			l.running[id]--
			l.mu.Unlock()
		}()

		switch {
		case stopping && id%3 == 0:
			<-ctx.Done() // runs until abandoned, and is not handled
			return ctx.Err()
		case permanentID(id):
			return processor.Permanent(fmt.Errorf("record %d is malformed", id))
		case transientID(id) && attempt == 1:
			return errTransient
		}
		l.mu.Lock()
		l.handled[id]++
		l.mu.Unlock()
		return nil
	}
}

// stop marks the records running now as in flight at shutdown.
func (l *ledger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping = true
	for id, n := range l.running {
		if n > 0 {
			l.inFlight[id] = true
		}
	}
}

func (l *ledger) distinctHandled() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.handled)
}

func (l *ledger) permanentAttempted(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := 3; id < n; id += 1000 {
		if l.attempts[id] == 0 {
			return false
		}
	}
	return true
}

func startRunner(t *testing.T, cfg processor.Config) (stop func()) {
	t.Helper()
	r, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestRunnerFailuresShutdownRestart: 20,000 records over 12 partitions,
// concurrency 16, 1% transient and 0.1% permanent failures; the runner is
// stopped halfway and a new one takes over. Every record is handled or
// dead-lettered with its headers, order holds per partition, and only
// records in flight at the shutdown are handled twice.
func TestRunnerFailuresShutdownRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		const topic, dlt, group, n = "orders", "orders.DLT", "orders-svc", 20_000
		createTopic(t, addrs, topic, 12)
		createTopic(t, addrs, dlt, 1)
		produce(t, addrs, topic, n)

		l := newLedger(t)
		cfg := func(run string) processor.Config {
			return processor.Config{
				Consumer:                consumerConfig(addrs, group),
				Topics:                  []string{topic},
				Handler:                 l.handler(run),
				Concurrency:             16,
				MaxInFlightPerPartition: 200, // exercise pause/resume
				RetryBackoff:            time.Millisecond,
				RetryBackoffMax:         5 * time.Millisecond,
				CommitInterval:          100 * time.Millisecond,
				ShutdownTimeout:         300 * time.Millisecond,
			}
		}
		stop := startRunner(t, cfg("first"))
		waitFor(t, 30*time.Second, "half the records", func() bool { return l.distinctHandled() >= n/2 })
		l.stop()
		stop()
		l.mu.Lock()
		l.stopping = false
		inFlight := len(l.inFlight)
		l.mu.Unlock()
		t.Logf("stopped after %d handled, %d in flight", l.distinctHandled(), inFlight)

		stop = startRunner(t, cfg("second"))
		permanents := n / 1000
		waitFor(t, 40*time.Second, "every record", func() bool {
			return l.distinctHandled() == n-permanents && l.permanentAttempted(n)
		})
		stop()

		l.mu.Lock()
		defer l.mu.Unlock()
		dups := 0
		for id := range n {
			h := l.handled[id]
			switch {
			case permanentID(id) && h != 0:
				t.Errorf("permanent failure %d handled", id)
			case !permanentID(id) && h == 0:
				t.Errorf("record %d never handled", id)
			case h > 1:
				dups++
				if !l.inFlight[id] {
					t.Errorf("record %d handled %d times but was not in flight at the shutdown", id, h)
				}
			}
			if transientID(id) && !permanentID(id) && l.attempts[id] < 2 {
				t.Errorf("transient failure %d not retried", id)
			}
		}
		t.Logf("%d records handled twice, all in flight at the shutdown", dups)

		dead := readAll(t, addrs, dlt, 1, permanents)
		seen := map[int]bool{}
		for _, r := range dead {
			id, _ := strconv.Atoi(string(r.Value))
			d, err := processor.ParseDeadLetter(r)
			if err != nil {
				t.Fatal(err)
			}
			o := l.origin[id]
			if !permanentID(id) || d.Topic != topic || d.Partition != o.Partition || d.Offset != o.Offset || d.Group != group ||
				d.Error != fmt.Sprintf("record %d is malformed", id) || d.ErrorType != "*errors.errorString" {
				t.Errorf("dead letter %d: %+v, read from %d@%d", id, d, o.Partition, o.Offset)
			}
			if seen[id] && !l.inFlight[id] {
				t.Errorf("record %d dead-lettered twice", id)
			}
			seen[id] = true
		}
		if len(seen) != permanents {
			t.Errorf("%d records dead-lettered, want %d", len(seen), permanents)
		}
	})
}

// TestRunnerRebalance: a second runner joins the group mid-stream; the
// first drains and commits the revoked partitions, so no record is lost or
// handled twice (none is abandoned: handlers finish within the timeout).
func TestRunnerRebalance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		const topic, group, n = "events", "events-svc", 6_000
		createTopic(t, addrs, topic, 12)
		produce(t, addrs, topic, n)

		var mu sync.Mutex // guards handled, by
		handled := map[int]int{}
		by := map[string]int{}
		handler := func(name string) processor.Handler {
			return func(ctx context.Context, r *kafkit.Record) error {
				time.Sleep(time.Millisecond)
				id, _ := strconv.Atoi(string(r.Value))
				mu.Lock()
				handled[id]++
				by[name]++
				mu.Unlock()
				return nil
			}
		}
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(handled) }
		cfg := func(name string) processor.Config {
			return processor.Config{
				Consumer:       consumerConfig(addrs, group),
				Topics:         []string{topic},
				Handler:        handler(name),
				Concurrency:    4,
				CommitInterval: 200 * time.Millisecond,
			}
		}
		stopA := startRunner(t, cfg("a"))
		waitFor(t, 30*time.Second, "a to start", func() bool { return count() >= 500 })
		stopB := startRunner(t, cfg("b"))
		waitFor(t, 40*time.Second, "every record", func() bool { return count() == n })
		stopB()
		stopA()

		mu.Lock()
		defer mu.Unlock()
		for id := range n {
			if handled[id] != 1 {
				t.Errorf("record %d handled %d times", id, handled[id])
			}
		}
		if by["b"] == 0 {
			t.Error("the second runner handled nothing: no rebalance happened")
		}
		t.Logf("handled by a: %d, by b: %d", by["a"], by["b"])
	})
}

// TestRunnerContinuesTrace: the handler's ctx continues the producer's
// trace from the record headers, with and without a process span.
func TestRunnerContinuesTrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		const topic = "traced"
		createTopic(t, addrs, topic, 2)
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tracing := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
		produce(t, addrs, topic, 4, tracing)
		producerTrace := map[int]trace.TraceID{} // record id → the trace of its send span
		for _, s := range exp.GetSpans() {
			for _, a := range s.Attributes {
				if a.Key == "messaging.kafka.offset" {
					producerTrace[len(producerTrace)] = s.SpanContext.TraceID()
				}
			}
		}
		if len(producerTrace) != 4 {
			t.Fatalf("%d producer spans", len(producerTrace))
		}
		traces := map[trace.TraceID]bool{}
		for _, id := range producerTrace {
			traces[id] = true
		}

		for _, withSpan := range []bool{false, true} {
			var mu sync.Mutex
			var got []trace.SpanContext
			cfg := processor.Config{
				Consumer: consumerConfig(addrs, fmt.Sprintf("traced-%v", withSpan)),
				Topics:   []string{topic},
				Handler: func(ctx context.Context, r *kafkit.Record) error {
					mu.Lock()
					got = append(got, trace.SpanContextFromContext(ctx))
					mu.Unlock()
					return nil
				},
			}
			if withSpan {
				cfg.Tracing = tracing
			}
			stop := startRunner(t, cfg)
			waitFor(t, 20*time.Second, "4 records", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 4 })
			stop()
			for _, sc := range got {
				if !traces[sc.TraceID()] {
					t.Errorf("process span %v: handler ctx trace %v is not a producer's trace", withSpan, sc.TraceID())
				}
				if sc.IsRemote() == withSpan {
					t.Errorf("process span %v: remote=%v", withSpan, sc.IsRemote())
				}
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	h := func(context.Context, *kafkit.Record) error { return nil }
	ok := processor.Config{Consumer: consumer.Config{BootstrapServers: []string{"x:9092"}, GroupID: "g"}, Topics: []string{"t"}, Handler: h}
	tests := []struct {
		name string
		mod  func(*processor.Config)
		want string // substring of the error; "" valid
	}{
		{"valid", func(*processor.Config) {}, ""},
		{"no group", func(c *processor.Config) { c.Consumer.GroupID = "" }, "group.id"},
		{"no topics", func(c *processor.Config) { c.Topics = nil }, "Topics"},
		{"two handlers", func(c *processor.Config) {
			c.BatchHandler = func(context.Context, []*kafkit.Record) error { return nil }
		}, "exactly one"},
		{"batch size without batch handler", func(c *processor.Config) { c.MaxBatchSize = 10 }, "MaxBatchSize"},
		{"negative", func(c *processor.Config) { c.Concurrency = -1 }, "Concurrency"},
		{"ordering", func(c *processor.Config) { c.Ordering = 9 }, "Ordering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, processor.ErrInvalidConfig) || !contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestRunnerBatchByKey: a BatchHandler in OrderKey mode gets batches of one
// key of one partition, at most MaxBatchSize long, each key's records in
// offset order; a failing batch is retried whole.
func TestRunnerBatchByKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		const topic, n, maxBatch = "batches", 3_000, 16
		createTopic(t, addrs, topic, 4)
		produce(t, addrs, topic, n)

		var mu sync.Mutex // guards the maps
		handled := map[int]int{}
		lastByKey := map[string]int64{}
		failedOnce := map[int]bool{}
		stop := startRunner(t, processor.Config{
			Consumer:     consumerConfig(addrs, "batch-svc"),
			Topics:       []string{topic},
			Ordering:     processor.OrderKey,
			Concurrency:  8,
			MaxBatchSize: maxBatch,
			RetryBackoff: time.Millisecond,
			BatchHandler: func(ctx context.Context, recs []*kafkit.Record) error {
				mu.Lock()
				defer mu.Unlock()
				if len(recs) == 0 || len(recs) > maxBatch {
					t.Errorf("batch of %d", len(recs))
				}
				first, _ := strconv.Atoi(string(recs[0].Value))
				if first%50 == 0 && !failedOnce[first] {
					failedOnce[first] = true
					return errTransient
				}
				for _, r := range recs {
					if string(r.Key) != string(recs[0].Key) || r.Partition != recs[0].Partition {
						t.Errorf("batch mixes %s[%d] and %s[%d]", recs[0].Key, recs[0].Partition, r.Key, r.Partition)
					}
					k := fmt.Sprintf("%d/%s", r.Partition, r.Key)
					if last, ok := lastByKey[k]; ok && r.Offset <= last {
						t.Errorf("key %s: offset %d after %d", k, r.Offset, last)
					}
					lastByKey[k] = r.Offset
					id, _ := strconv.Atoi(string(r.Value))
					handled[id]++
				}
				return nil
			},
		})
		waitFor(t, 30*time.Second, "every record", func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == n })
		stop()
		mu.Lock()
		defer mu.Unlock()
		for id := range n {
			if handled[id] != 1 {
				t.Errorf("record %d handled %d times", id, handled[id])
			}
		}
	})
}

// TestRunnerBackpressure: with a small in-flight limit the partition is
// paused and resumed many times; resuming must not wait for the next
// periodic commit (an hour here) to deliver the records buffered before the
// pause. The final commit at shutdown covers everything: a second runner of
// the group finds nothing to do.
func TestRunnerBackpressure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		const topic, group, n = "bp", "bp-svc", 3_000
		createTopic(t, addrs, topic, 1)
		produce(t, addrs, topic, n)
		var handled atomic.Int64
		cfg := processor.Config{
			Consumer:                consumerConfig(addrs, group),
			Topics:                  []string{topic},
			Concurrency:             4,
			MaxInFlightPerPartition: 20,
			CommitInterval:          time.Hour,
			Handler: func(context.Context, *kafkit.Record) error {
				handled.Add(1)
				return nil
			},
		}
		stop := startRunner(t, cfg)
		waitFor(t, 20*time.Second, "every record", func() bool { return handled.Load() == n })
		stop()

		var again atomic.Int64
		cfg.Handler = func(context.Context, *kafkit.Record) error { again.Add(1); return nil }
		var assigned atomic.Bool
		cfg.Consumer.OnAssigned = func([]kafkit.TopicPartition) { assigned.Store(true) }
		stop = startRunner(t, cfg)
		waitFor(t, 20*time.Second, "the second runner's assignment", assigned.Load)
		time.Sleep(300 * time.Millisecond) // a window for wrongly redelivered records
		stop()
		if again.Load() != 0 {
			t.Errorf("%d records delivered again after a clean shutdown", again.Load())
		}
	})
}
