package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
)

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newProducer(t testing.TB, c *kfake.Cluster, cfg Config) *Producer {
	t.Helper()
	cfg.BootstrapServers = c.ListenAddrs()
	p, err := New(cfg)
	// New tries the seeds once, each within request.timeout.ms; tests with
	// short ones may miss it on a loaded machine.
	for deadline := time.Now().Add(30 * time.Second); client.IsRetriable(err) && time.Now().Before(deadline); {
		p, err = New(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// newOfflineProducer returns a producer without connections or sender,
// whose metadata of topic is set by hand: partition i has leader leaders[i]
// (-1: none). Its Sends fill batches that nothing drains: it shows what
// Send itself does.
func newOfflineProducer(cfg Config, topic string, leaders []int32) *Producer {
	cfg.BootstrapServers = []string{"x:1"}
	p := &Producer{s: cfg.settings()}
	p.setPartitioner()
	p.acc = newAccumulator(&p.s, func() {})
	tm := client.TopicMeta{Name: topic}
	for i, l := range leaders {
		tm.Partitions = append(tm.Partitions, client.PartitionMeta{ID: int32(i), Leader: l})
	}
	p.setTopicMeta(topic, &tm)
	return p
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consume reads n records of topic with kgo (an independent client) from
// the start.
func consume(t testing.TB, c *kfake.Cluster, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(out), n, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// acks collects callback outcomes.
type acks struct {
	mu   sync.Mutex
	recs map[string]*kafkit.Record // by value
	errs map[string]error
	n    map[string]int // callbacks per value
	wg   sync.WaitGroup
}

func newAcks() *acks {
	return &acks{recs: map[string]*kafkit.Record{}, errs: map[string]error{}, n: map[string]int{}}
}

func (a *acks) send(t testing.TB, p *Producer, r *kafkit.Record) error {
	a.wg.Add(1)
	err := p.Send(context.Background(), r, func(r *kafkit.Record, err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		v := string(r.Value)
		a.recs[v], a.errs[v] = r, err
		a.n[v]++
		a.wg.Done()
	})
	if err != nil {
		a.wg.Done()
	}
	return err
}

func TestProduceRoundTripEveryCodec(t *testing.T) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(3, "t"))
			p := newProducer(t, c, Config{CompressionType: codec})
			const n = 300
			a := newAcks()
			for i := range n {
				r := &kafkit.Record{Topic: "t", Partition: int32(i % 3), Key: []byte("k" + strconv.Itoa(i)),
					Value: []byte(fmt.Sprintf("%s-%d", codec, i)), Headers: []kafkit.Header{{Key: "h", Value: []byte(strconv.Itoa(i))}}}
				if err := a.send(t, p, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			a.wg.Wait()
			got := consume(t, c, "t", n)
			if len(got) != n {
				t.Fatalf("consumed %d, want %d", len(got), n)
			}
			for _, r := range got {
				ack := a.recs[string(r.Value)]
				if ack == nil || a.errs[string(r.Value)] != nil {
					t.Fatalf("record %s: ack %v err %v", r.Value, ack, a.errs[string(r.Value)])
				}
				if ack.Partition != r.Partition || ack.Offset != r.Offset || !ack.Timestamp.Equal(r.Timestamp) {
					t.Fatalf("record %s: acked %d/%d/%v, stored %d/%d/%v", r.Value, ack.Partition, ack.Offset, ack.Timestamp, r.Partition, r.Offset, r.Timestamp)
				}
				if len(r.Headers) != 1 || "k"+string(r.Headers[0].Value) != string(r.Key) {
					t.Fatalf("record %s: key %s headers %v", r.Value, r.Key, r.Headers)
				}
			}
		})
	}
}

func TestSendSyncAndPartitioner(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "t"))
	p := newProducer(t, c, Config{})
	r := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Key: []byte("user-42"), Value: []byte("v")}
	if err := p.SendSync(testCtx(t), r); err != nil {
		t.Fatal(err)
	}
	if want := murmur2Mod([]byte("user-42"), 4); r.Partition != want || r.Offset != 0 {
		t.Fatalf("partition %d offset %d, want partition %d offset 0", r.Partition, r.Offset, want)
	}
	err := p.SendSync(testCtx(t), &kafkit.Record{Topic: "t", Partition: 9, Value: []byte("v")})
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("partition 9 of 4: %v", err)
	}
}

// TestSendTimestamps: a record without a timestamp gets the wall-clock
// time of its Send in milliseconds (Send's clock is cheaper than
// time.Now), one with a timestamp keeps it, and the broker stores both.
func TestSendTimestamps(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c, Config{})
	explicit := time.UnixMilli(1_600_000_000_123)
	var recs []*kafkit.Record
	for i := range 200 {
		r := &kafkit.Record{Topic: "t", Partition: 0, Value: []byte(strconv.Itoa(i))}
		if i%2 == 1 {
			r.Timestamp = explicit
		}
		before := time.Now().UnixMilli()
		if err := p.Send(testCtx(t), r, nil); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixMilli()
		if ms := r.Timestamp.UnixMilli(); i%2 == 0 && (ms < before || ms > after || !r.Timestamp.Equal(time.UnixMilli(ms))) {
			t.Fatalf("record %d: timestamp %v (%d ms), want whole milliseconds in [%d, %d]", i, r.Timestamp, ms, before, after)
		}
		if i%2 == 1 && !r.Timestamp.Equal(explicit) {
			t.Fatalf("record %d: explicit timestamp changed to %v", i, r.Timestamp)
		}
		recs = append(recs, r)
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for i, got := range consume(t, c, "t", len(recs)) {
		if want := recs[i].Timestamp; !got.Timestamp.Equal(want) {
			t.Fatalf("record %d stored with timestamp %v, sent with %v", i, got.Timestamp, want)
		}
	}
}

func TestAcksZero(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	p := newProducer(t, c, Config{Acks: AcksNone})
	a := newAcks()
	for i := range 100 {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: int32(i % 2), Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait()
	for v, err := range a.errs {
		if err != nil || a.recs[v].Offset != -1 {
			t.Fatalf("record %s: offset %d err %v", v, a.recs[v].Offset, err)
		}
	}
	if got := consume(t, c, "t", 100); len(got) != 100 {
		t.Fatalf("consumed %d", len(got))
	}
}

func TestMetadataTimeoutForMissingTopic(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c, Config{MaxBlock: 300 * time.Millisecond})
	err := p.Send(testCtx(t), &kafkit.Record{Topic: "missing", Partition: kafkit.AnyPartition, Value: []byte("v")}, nil)
	if !errors.Is(err, ErrMetadataTimeout) {
		t.Fatalf("got %v, want ErrMetadataTimeout", err)
	}
}

func TestCloseFlushesAndRejects(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	cfg := Config{Linger: time.Hour, DeliveryTimeout: 2 * time.Hour, BootstrapServers: c.ListenAddrs()}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	for i := range 10 {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: 0, Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait() // every callback ran before Close returned
	for v, err := range a.errs {
		if err != nil {
			t.Fatalf("record %s: %v", v, err)
		}
	}
	if err := p.Send(testCtx(t), &kafkit.Record{Topic: "t", Value: []byte("late")}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if got := consume(t, c, "t", 10); len(got) != 10 {
		t.Fatalf("consumed %d", len(got))
	}
}

// TestCloseDeadlineFailsPending: the broker never answers; Close's ctx ends,
// so Close fails every pending record (each callback runs once) and returns
// ctx's error.
func TestCloseDeadlineFailsPending(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	defer close(release)
	p, err := New(Config{BootstrapServers: c.ListenAddrs(), Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	for i := range 20 {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: 0, Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want DeadlineExceeded", err)
	}
	a.wg.Wait()
	for v, n := range a.n {
		if n != 1 || !errors.Is(a.errs[v], ErrClosed) {
			t.Fatalf("record %s: %d callbacks, err %v, want ErrClosed", v, n, a.errs[v])
		}
	}
	if len(a.n) != 20 {
		t.Fatalf("%d callbacks, want 20", len(a.n))
	}
}

type countingInterceptor struct {
	mu          sync.Mutex
	sends, acks int
	ctxOK       bool
}

type recordCtxKey struct{}

func (ci *countingInterceptor) OnSend(ctx context.Context, r *kafkit.Record) context.Context {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.sends++
	r.Headers = append(r.Headers, kafkit.Header{Key: "traced", Value: []byte("yes")})
	return context.WithValue(ctx, recordCtxKey{}, r)
}

func (ci *countingInterceptor) OnAck(ctx context.Context, r *kafkit.Record, err error) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.acks++
	ci.ctxOK = ctx.Value(recordCtxKey{}) == r && err == nil && r.Offset >= 0
}

func TestInterceptors(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	ci := &countingInterceptor{}
	p := newProducer(t, c, Config{Interceptors: []Interceptor{ci}})
	if err := p.SendSync(testCtx(t), &kafkit.Record{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	ci.mu.Lock()
	if ci.sends != 1 || ci.acks != 1 || !ci.ctxOK {
		t.Fatalf("sends %d acks %d ctx carried %v", ci.sends, ci.acks, ci.ctxOK)
	}
	ci.mu.Unlock()
	got := consume(t, c, "t", 1)
	if len(got[0].Headers) != 1 || got[0].Headers[0].Key != "traced" {
		t.Fatalf("headers %v", got[0].Headers)
	}
}
