package consumer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// produce writes records with kgo (not our producer, which is written
// concurrently) and fails the test on any error.
func produce(t *testing.T, c cluster, records ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(testCtx(t, 30*time.Second), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// spread returns n records on topic spread round-robin over partitions, with
// values "0".."n-1".
func spread(topic string, partitions int32, from, n int) []*kgo.Record {
	out := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(strconv.Itoa(i))})
	}
	return out
}

func newConsumer(t *testing.T, c cluster, mod func(*Config)) *Consumer {
	t.Helper()
	cfg := Config{
		BootstrapServers:  c.ListenAddrs(),
		SessionTimeout:    2 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		FetchMaxWait:      100 * time.Millisecond,
		RetryBackoff:      20 * time.Millisecond,
		RetryBackoffMax:   200 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	if _, ok := c.(interface{ consumerProtocol() }); ok {
		onConsumerProtocol(&cfg)
	}
	cons, err := New(testCtx(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close(context.Background()) })
	return cons
}

// pollN polls until n records arrived or ctx ends.
func pollN(t *testing.T, ctx context.Context, cons *Consumer, n int) []*kafkit.Record {
	t.Helper()
	var out []*kafkit.Record
	for len(out) < n {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

func TestAssignOffsetReset(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, spread("t", 1, 0, 100)...)
	tp := kafkit.TopicPartition{Topic: "t", Partition: 0}

	t.Run("earliest", func(t *testing.T) {
		cons := newConsumer(t, c, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetEarliest })
		if err := cons.Assign(tp); err != nil {
			t.Fatal(err)
		}
		recs := pollN(t, testCtx(t, 20*time.Second), cons, 100)
		for i, r := range recs {
			if r.Offset != int64(i) || string(r.Value) != strconv.Itoa(i) || r.Topic != "t" || r.Partition != 0 {
				t.Fatalf("record %d = %+v", i, r)
			}
		}
		if len(recs) != 100 {
			t.Fatalf("got %d records, want 100", len(recs))
		}
	})

	t.Run("latest", func(t *testing.T) {
		cons := newConsumer(t, c, nil) // latest is the default
		if err := cons.Assign(tp); err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t, 20*time.Second)
		pos, err := cons.Position(ctx, tp)
		if err != nil || pos != 100 {
			t.Fatalf("position = %d, %v; want 100", pos, err)
		}
		produce(t, c, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("new")})
		recs := pollN(t, ctx, cons, 1)
		if len(recs) != 1 || recs[0].Offset != 100 || string(recs[0].Value) != "new" {
			t.Fatalf("got %+v, want only the new record at offset 100", recs[0])
		}
	})

	t.Run("none", func(t *testing.T) {
		cons := newConsumer(t, c, func(cfg *Config) {
			cfg.AutoOffsetReset = OffsetResetNone
			cfg.GroupID = "no-commits"
		})
		if err := cons.Assign(tp); err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t, 20*time.Second)
		if _, err := cons.Poll(ctx); !errors.Is(err, ErrNoOffset) {
			t.Fatalf("Poll: %v, want ErrNoOffset", err)
		}
		if err := cons.Seek(ctx, tp, 98); err != nil {
			t.Fatal(err)
		}
		recs := pollN(t, ctx, cons, 2)
		if recs[0].Offset != 98 || recs[1].Offset != 99 {
			t.Fatalf("after Seek(98): offsets %d, %d", recs[0].Offset, recs[1].Offset)
		}
	})

	t.Run("out of range", func(t *testing.T) {
		cons := newConsumer(t, c, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetEarliest })
		if err := cons.Assign(tp); err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t, 20*time.Second)
		if err := cons.Seek(ctx, tp, 5000); err != nil {
			t.Fatal(err)
		}
		recs := pollN(t, ctx, cons, 1)
		if recs[0].Offset != 0 {
			t.Fatalf("after an out-of-range position with earliest: first offset %d, want 0", recs[0].Offset)
		}
	})
}

func TestSeekToTimestampAndLag(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "ts"))
	base := time.UnixMilli(1_700_000_000_000)
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Topic: "ts", Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	produce(t, c, recs...)
	tp := kafkit.TopicPartition{Topic: "ts", Partition: 0}
	cons := newConsumer(t, c, func(cfg *Config) { cfg.GroupID = "ts-group" })
	if err := cons.Assign(tp); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)

	if err := cons.SeekToTimestamp(ctx, base.Add(49500*time.Millisecond), tp); err != nil {
		t.Fatal(err)
	}
	got := pollN(t, ctx, cons, 1)
	if got[0].Offset != 50 || !got[0].Timestamp.Equal(base.Add(50*time.Second)) {
		t.Fatalf("after SeekToTimestamp(49.5s): offset %d ts %v, want offset 50", got[0].Offset, got[0].Timestamp)
	}
	if err := cons.SeekToTimestamp(ctx, base.Add(time.Hour), tp); err != nil {
		t.Fatal(err)
	}
	if pos, _ := cons.Position(ctx, tp); pos != 100 {
		t.Fatalf("SeekToTimestamp past the last record: position %d, want the end (100)", pos)
	}

	if err := cons.SeekToBeginning(ctx, tp); err != nil {
		t.Fatal(err)
	}
	pollN(t, ctx, cons, 30)
	if err := cons.Seek(ctx, tp, 30); err != nil { // drop what was prefetched beyond 30
		t.Fatal(err)
	}
	if err := cons.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	committed, err := cons.Committed(ctx, tp)
	if err != nil || committed[tp] != 30 {
		t.Fatalf("committed = %v, %v; want 30", committed, err)
	}
	lag, err := cons.Lag(ctx)
	if err != nil || lag[tp] != 70 {
		t.Fatalf("lag = %v, %v; want 70", lag, err)
	}
	ends, err := cons.EndOffsets(ctx, tp)
	if err != nil || ends[tp] != 100 {
		t.Fatalf("end offsets = %v, %v", ends, err)
	}
	begins, err := cons.BeginningOffsets(ctx, tp)
	if err != nil || begins[tp] != 0 {
		t.Fatalf("beginning offsets = %v, %v", begins, err)
	}
	tp1 := kafkit.TopicPartition{Topic: "ts", Partition: 0}
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{{base, 0}, {base.Add(49500 * time.Millisecond), 50}, {base.Add(99 * time.Second), 99}, {base.Add(time.Hour), -1}} {
		got, err := cons.OffsetsForTimes(ctx, map[kafkit.TopicPartition]time.Time{tp1: tc.at})
		if err != nil || got[tp1] != tc.want {
			t.Errorf("OffsetsForTimes(%v) = %v, %v; want %d", tc.at.Sub(base), got, err, tc.want)
		}
	}
}

func TestPauseResume(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "pr"))
	produce(t, c, spread("pr", 2, 0, 20)...)
	p0, p1 := kafkit.TopicPartition{Topic: "pr", Partition: 0}, kafkit.TopicPartition{Topic: "pr", Partition: 1}
	cons := newConsumer(t, c, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetEarliest })
	if err := cons.Assign(p0, p1); err != nil {
		t.Fatal(err)
	}
	if err := cons.Pause(p1); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	for _, r := range pollN(t, ctx, cons, 10) {
		if r.Partition != 0 {
			t.Fatalf("record from paused partition: %+v", r)
		}
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if recs, err := cons.Poll(short); err == nil {
		t.Fatalf("paused partition delivered %d records", len(recs))
	}
	if err := cons.Resume(p1); err != nil {
		t.Fatal(err)
	}
	for _, r := range pollN(t, ctx, cons, 10) {
		if r.Partition != 1 {
			t.Fatalf("unexpected record %+v", r)
		}
	}
}

// groupMember runs one consumer of a group test in a goroutine, recording
// what it processed and its rebalance callbacks.
type groupMember struct {
	cons *Consumer
	mu   sync.Mutex
	seen []string // values processed
	owns map[kafkit.TopicPartition]bool
	revd [][]kafkit.TopicPartition
	lost [][]kafkit.TopicPartition
	stop context.CancelFunc
	done chan error
}

func startMember(t *testing.T, c cluster, topic string, mod func(*Config)) *groupMember {
	t.Helper()
	m := &groupMember{owns: make(map[kafkit.TopicPartition]bool), done: make(chan error, 1)}
	m.cons = newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID = "g"
		cfg.AutoOffsetReset = OffsetResetEarliest
		cfg.AutoCommitInterval = 100 * time.Millisecond
		cfg.OnAssigned = func(tps []kafkit.TopicPartition) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, tp := range tps {
				m.owns[tp] = true
			}
		}
		cfg.OnRevoked = func(tps []kafkit.TopicPartition) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.revd = append(m.revd, tps)
			for _, tp := range tps {
				delete(m.owns, tp)
			}
		}
		cfg.OnLost = func(tps []kafkit.TopicPartition) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.lost = append(m.lost, tps)
			for _, tp := range tps {
				delete(m.owns, tp)
			}
		}
		if mod != nil {
			mod(cfg)
		}
	})
	if err := m.cons.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		for {
			recs, err := m.cons.Poll(ctx)
			if err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				m.done <- err
				return
			}
			m.mu.Lock()
			for _, r := range recs {
				m.seen = append(m.seen, string(r.Value))
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { m.halt(t) })
	return m
}

// halt stops the Poll loop (the consumer stays in the group until Close).
func (m *groupMember) halt(t *testing.T) {
	if m.stop == nil {
		return
	}
	m.stop()
	m.stop = nil
	if err := <-m.done; err != nil {
		t.Errorf("poll loop: %v", err)
	}
}

func (m *groupMember) owned() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owns)
}

func (m *groupMember) processed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestGroupThreeMembersExactlyOnce(t *testing.T) {
	onBoth(t, 12, []string{"orders"}, testGroupThreeMembersExactlyOnce)
}

func testGroupThreeMembersExactlyOnce(t *testing.T, c cluster) {
	const total = 60000
	produce(t, c, spread("orders", 12, 0, total/2)...)
	var members []*groupMember
	for range 3 {
		members = append(members, startMember(t, c, "orders", nil))
	}
	waitFor(t, "12 partitions over 3 members", 20*time.Second, func() bool {
		return members[0].owned() == 4 && members[1].owned() == 4 && members[2].owned() == 4
	})
	produce(t, c, spread("orders", 12, total/2, total/2)...)

	count := func() int {
		n := 0
		for _, m := range members {
			n += len(m.processed())
		}
		return n
	}
	waitFor(t, fmt.Sprintf("%d records", total), 40*time.Second, func() bool { return count() >= total })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	seen := make(map[string]int, total)
	for i, m := range members {
		got := m.processed()
		if len(got) == 0 {
			t.Errorf("member %d processed nothing", i)
		}
		for _, v := range got {
			seen[v]++
		}
	}
	for i := range total {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Fatalf("record %d processed %d times", i, n)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct records, want %d", len(seen), total)
	}
}

func TestCooperativeStickyAddMember(t *testing.T) {
	onBoth(t, 12, []string{"sticky"}, testCooperativeStickyAddMember)
}

func testCooperativeStickyAddMember(t *testing.T, c cluster) {
	coop := func(cfg *Config) { cfg.PartitionAssignmentStrategy = []string{AssignorCooperativeSticky} }
	var members []*groupMember
	for range 3 {
		members = append(members, startMember(t, c, "sticky", coop))
	}
	waitFor(t, "4 partitions each", 20*time.Second, func() bool {
		return members[0].owned() == 4 && members[1].owned() == 4 && members[2].owned() == 4
	})
	before := make([]map[kafkit.TopicPartition]bool, 3)
	for i, m := range members {
		m.mu.Lock()
		before[i] = make(map[kafkit.TopicPartition]bool)
		for tp := range m.owns {
			before[i][tp] = true
		}
		m.revd = nil
		m.mu.Unlock()
	}

	members = append(members, startMember(t, c, "sticky", coop))
	waitFor(t, "3 partitions each", 20*time.Second, func() bool {
		for _, m := range members {
			if m.owned() != 3 {
				return false
			}
		}
		return true
	})
	for i, m := range members[:3] {
		m.mu.Lock()
		var revoked []kafkit.TopicPartition
		for _, r := range m.revd {
			revoked = append(revoked, r...)
		}
		lost := len(m.lost)
		still := make(map[kafkit.TopicPartition]bool)
		for tp := range m.owns {
			still[tp] = true
		}
		m.mu.Unlock()
		if len(revoked) != 1 || lost != 0 {
			t.Errorf("member %d revoked %v (lost %d times), want exactly the one partition that moves", i, revoked, lost)
		}
		for tp := range still {
			if !before[i][tp] {
				t.Errorf("member %d gained %v; only the new member should gain", i, tp)
			}
		}
	}
}

func TestKilledMemberRedelivers(t *testing.T) {
	onBoth(t, 4, []string{"k"}, testKilledMemberRedelivers)
}

func testKilledMemberRedelivers(t *testing.T, c cluster) {
	const total = 2000
	produce(t, c, spread("k", 4, 0, total)...)
	manual := func(cfg *Config) {
		cfg.DisableAutoCommit = true
		cfg.SessionTimeout = time.Second
		cfg.MaxPollRecords = 50
	}

	// The victim consumes a little, commits it, consumes more without
	// committing, and dies without LeaveGroup.
	victim := newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID = "g"
		cfg.AutoOffsetReset = OffsetResetEarliest
		manual(cfg)
	})
	if err := victim.Subscribe("k"); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 40*time.Second)
	committedVals := make(map[string]bool)
	for len(committedVals) < 200 {
		recs, err := victim.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			committedVals[string(r.Value)] = true
		}
	}
	if err := victim.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	uncommitted := make(map[string]bool)
	for len(uncommitted) < 100 {
		recs, err := victim.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			uncommitted[string(r.Value)] = true
		}
	}
	victim.kill()

	survivor := startMember(t, c, "k", manual)
	waitFor(t, "the survivor to take all 4 partitions after the session timeout", 20*time.Second, func() bool { return survivor.owned() == 4 })
	waitFor(t, "the rest of the records", 20*time.Second, func() bool {
		got := make(map[string]bool)
		for _, v := range survivor.processed() {
			got[v] = true
		}
		for i := range total {
			if v := strconv.Itoa(i); !got[v] && !committedVals[v] {
				return false
			}
		}
		return true
	})
	got := make(map[string]bool)
	for _, v := range survivor.processed() {
		if committedVals[v] {
			t.Fatalf("record %s was committed by the dead member but delivered again", v)
		}
		got[v] = true
	}
	for v := range uncommitted {
		if !committedVals[v] && !got[v] {
			t.Fatalf("record %s processed by the dead member after its last commit was not re-delivered", v)
		}
	}
}

// kill stops the consumer as a crash would: no commit, no LeaveGroup.
func (c *Consumer) kill() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.cl.Close()
}

func TestSubscribePattern(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "logs-a", "logs-b", "metrics"))
	produce(t, c, &kgo.Record{Topic: "logs-a", Value: []byte("a")}, &kgo.Record{Topic: "logs-b", Value: []byte("b")}, &kgo.Record{Topic: "metrics", Value: []byte("m")})
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID = "pattern"
		cfg.AutoOffsetReset = OffsetResetEarliest
	})
	if err := cons.SubscribePattern(regexp.MustCompile(`^logs-`)); err != nil {
		t.Fatal(err)
	}
	recs := pollN(t, testCtx(t, 20*time.Second), cons, 2)
	var vals []string
	for _, r := range recs {
		vals = append(vals, string(r.Value))
	}
	slices.Sort(vals)
	if !slices.Equal(vals, []string{"a", "b"}) {
		t.Fatalf("pattern ^logs- consumed %v", vals)
	}
}
