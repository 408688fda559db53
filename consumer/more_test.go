package consumer

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReadCommitted(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "tx"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("tx-producer"), kgo.DefaultProduceTopic("tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t, 30*time.Second)
	txn := func(commit bool, vals ...string) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	produce(t, c, &kgo.Record{Topic: "tx", Value: []byte("plain")})
	txn(true, "c1", "c2")
	txn(false, "a1", "a2", "a3")
	txn(true, "c3") // the log ends with its commit marker

	for _, tc := range []struct {
		level string
		want  []string
	}{
		{ReadCommitted, []string{"plain", "c1", "c2", "c3"}},
		{ReadUncommitted, []string{"plain", "c1", "c2", "a1", "a2", "a3", "c3"}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			cons := newConsumer(t, c, func(cfg *Config) {
				cfg.IsolationLevel = tc.level
				cfg.AutoOffsetReset = OffsetResetEarliest
			})
			if err := cons.Assign(kafkit.TopicPartition{Topic: "tx", Partition: 0}); err != nil {
				t.Fatal(err)
			}
			recs := pollN(t, ctx, cons, len(tc.want))
			for i, r := range recs {
				if string(r.Value) != tc.want[i] {
					t.Fatalf("record %d = %q, want %q (all: %v)", i, r.Value, tc.want[i], values(recs))
				}
			}
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			if more, err := cons.Poll(short); err == nil {
				t.Fatalf("extra records %v (control records or aborted data leaked)", values(more))
			}
			// The position moved past the trailing transaction markers.
			lag, err := cons.Lag(ctx)
			if err != nil || lag[kafkit.TopicPartition{Topic: "tx"}] != 0 {
				t.Fatalf("lag after consuming everything: %v, %v; want 0", lag, err)
			}
		})
	}
}

func values(recs []*kafkit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

func TestCompressionCodecs(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "gzip", "snappy", "lz4", "zstd"))
	for _, tc := range []struct {
		topic string
		codec kgo.CompressionCodec
	}{
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchCompression(tc.codec), kgo.ProducerLinger(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := testCtx(t, 20*time.Second)
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Topic: tc.topic, Key: []byte("k"), Value: []byte(strconv.Itoa(i)), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			cons := newConsumer(t, c, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetEarliest })
			if err := cons.Assign(kafkit.TopicPartition{Topic: tc.topic}); err != nil {
				t.Fatal(err)
			}
			for i, r := range pollN(t, ctx, cons, 200) {
				if string(r.Value) != strconv.Itoa(i) || string(r.Key) != "k" || len(r.Headers) != 1 || r.Headers[0].Key != "h" {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
		})
	}
}

type recordingInterceptor struct {
	mu       sync.Mutex
	consumed int
	commits  []map[kafkit.TopicPartition]int64
}

func (r *recordingInterceptor) OnConsume(_ context.Context, recs []*kafkit.Record) {
	r.mu.Lock()
	r.consumed += len(recs)
	r.mu.Unlock()
}

func (r *recordingInterceptor) OnCommit(_ context.Context, offsets map[kafkit.TopicPartition]int64, err error) {
	if err != nil {
		return
	}
	r.mu.Lock()
	r.commits = append(r.commits, offsets)
	r.mu.Unlock()
}

func TestInterceptorsAndCommitAsync(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "i"))
	produce(t, c, spread("i", 1, 0, 10)...)
	icpt := &recordingInterceptor{}
	tp := kafkit.TopicPartition{Topic: "i"}
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID = "ig"
		cfg.DisableAutoCommit = true
		cfg.AutoOffsetReset = OffsetResetEarliest
		cfg.Interceptors = []Interceptor{icpt}
	})
	if err := cons.Assign(tp); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	pollN(t, ctx, cons, 10)
	done := make(chan error, 1)
	cons.CommitAsync(map[kafkit.TopicPartition]int64{tp: 7}, func(offsets map[kafkit.TopicPartition]int64, err error) {
		if offsets[tp] != 7 {
			err = errors.New("callback got the wrong offsets")
		}
		done <- err
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := cons.Committed(ctx, tp)
	if err != nil || got[tp] != 7 {
		t.Fatalf("committed %v, %v; want 7", got, err)
	}
	icpt.mu.Lock()
	defer icpt.mu.Unlock()
	if icpt.consumed != 10 || len(icpt.commits) != 1 || icpt.commits[0][tp] != 7 {
		t.Fatalf("interceptor saw %d records and commits %v", icpt.consumed, icpt.commits)
	}
}

func TestAutoCommitOnlyReturnedRecords(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "ac"))
	produce(t, c, spread("ac", 1, 0, 100)...)
	tp := kafkit.TopicPartition{Topic: "ac"}
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID = "acg"
		cfg.AutoOffsetReset = OffsetResetEarliest
		cfg.AutoCommitInterval = time.Millisecond
		cfg.MaxPollRecords = 10
	})
	if err := cons.Assign(tp); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	pollN(t, ctx, cons, 30) // prefetched records beyond 30 must not be committed
	if err := cons.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check := newConsumer(t, c, func(cfg *Config) { cfg.GroupID = "acg" })
	got, err := check.Committed(ctx, tp)
	if err != nil || got[tp] != 30 {
		t.Fatalf("committed after 30 returned records: %v, %v; want 30", got, err)
	}
}

func TestFollowsLeaderMove(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "lm"))
	produce(t, c, spread("lm", 1, 0, 50)...)
	cons := newConsumer(t, c, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetEarliest })
	if err := cons.Assign(kafkit.TopicPartition{Topic: "lm"}); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	pollN(t, ctx, cons, 50)
	// Paused across the move until the new leader has records of its
	// epoch: kfake, unlike Kafka, answers the OffsetForLeaderEpoch that
	// validates the position after a leader change with an unknown epoch
	// until then, which resets the position (as Java's consumer would).
	tp := kafkit.TopicPartition{Topic: "lm"}
	if err := cons.Pause(tp); err != nil {
		t.Fatal(err)
	}
	leader := c.LeaderFor("lm", 0)
	if err := c.MoveTopicPartition("lm", 0, (leader+1)%3); err != nil {
		t.Fatal(err)
	}
	produce(t, c, spread("lm", 1, 50, 50)...)
	if err := cons.Resume(tp); err != nil {
		t.Fatal(err)
	}
	for i, r := range pollN(t, ctx, cons, 50) {
		if r.Offset != int64(50+i) {
			t.Fatalf("after the leader move: record %d at offset %d", i, r.Offset)
		}
	}
}

func TestStaticMembershipRestart(t *testing.T) {
	testStaticMembershipRestart(t, newCluster(t, kfake.SeedTopics(4, "st")))
}

func testStaticMembershipRestart(t *testing.T, c cluster) {
	static := func(id string) func(*Config) {
		return func(cfg *Config) {
			cfg.GroupInstanceID = id
			cfg.SessionTimeout = 5 * time.Second
			cfg.PartitionAssignmentStrategy = []string{AssignorRange}
		}
	}
	a := startMember(t, c, "st", static("a"))
	b := startMember(t, c, "st", static("b"))
	waitFor(t, "2 partitions each", 20*time.Second, func() bool { return a.owned() == 2 && b.owned() == 2 })
	b.mu.Lock()
	bBefore := len(b.revd)
	b.mu.Unlock()

	// A static member closes (no LeaveGroup) and comes back under the same
	// instance id before session.timeout.ms: no rebalance, same partitions.
	a.mu.Lock()
	aOwned := make(map[kafkit.TopicPartition]bool)
	for tp := range a.owns {
		aOwned[tp] = true
	}
	a.mu.Unlock()
	a.halt(t)
	if err := a.cons.Close(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	a2 := startMember(t, c, "st", static("a"))
	waitFor(t, "the restarted member's assignment", 10*time.Second, func() bool { return a2.owned() == 2 })
	a2.mu.Lock()
	for tp := range a2.owns {
		if !aOwned[tp] {
			t.Errorf("restarted static member got %v, not its old partitions %v", tp, aOwned)
		}
	}
	a2.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.revd) != bBefore || len(b.lost) != 0 {
		t.Errorf("the other member was rebalanced: revoked %v lost %v", b.revd[bBefore:], b.lost)
	}
}

func TestMaxPollIntervalLeaves(t *testing.T) {
	testMaxPollIntervalLeaves(t, newCluster(t, kfake.SeedTopics(2, "mp")))
}

func testMaxPollIntervalLeaves(t *testing.T, c cluster) {
	fast := func(cfg *Config) {
		cfg.MaxPollInterval = 500 * time.Millisecond
		cfg.PartitionAssignmentStrategy = []string{AssignorRange}
	}
	a := startMember(t, c, "mp", fast)
	b := startMember(t, c, "mp", fast)
	waitFor(t, "one partition each", 20*time.Second, func() bool { return a.owned() == 1 && b.owned() == 1 })
	a.halt(t) // stops calling Poll
	waitFor(t, "the polling member to take both partitions", 20*time.Second, func() bool { return b.owned() == 2 })
}

func TestCloseLeavesGroupAndLeaksNothing(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "cl"))
	produce(t, c, spread("cl", 2, 0, 20)...)
	before := runtime.NumGoroutine()
	a := startMember(t, c, "cl", nil)
	b := startMember(t, c, "cl", func(cfg *Config) { cfg.SessionTimeout = time.Minute })
	waitFor(t, "one partition each", 20*time.Second, func() bool { return a.owned() == 1 && b.owned() == 1 })
	waitFor(t, "all records", 20*time.Second, func() bool { return len(a.processed())+len(b.processed()) == 20 })

	// b leaves with LeaveGroup: a gets both partitions long before b's
	// one-minute session timeout.
	b.halt(t)
	if err := b.cons.Close(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	revokedOnClose := len(b.revd) > 0
	b.mu.Unlock()
	if !revokedOnClose {
		t.Error("Close did not call OnRevoked")
	}
	waitFor(t, "the remaining member to own both partitions", 10*time.Second, func() bool { return a.owned() == 2 })
	a.halt(t)
	if err := a.cons.Close(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cons.Poll(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Poll after Close: %v", err)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 200 {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseWakesPoll(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "w"))
	cons := newConsumer(t, c, nil)
	if err := cons.Assign(kafkit.TopicPartition{Topic: "w"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := cons.Poll(context.Background())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Poll block; Close must wake it either way
	if err := cons.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Poll returned %v at Close, want ErrClosed", err)
	}
}

func TestGroupSurvivesFailures(t *testing.T) {
	const total = 3000
	c := newCluster(t, kfake.SeedTopics(6, "f"))
	produce(t, c, spread("f", 6, 0, total/2)...)
	a := startMember(t, c, "f", nil)
	b := startMember(t, c, "f", nil)
	waitFor(t, "3 partitions each", 20*time.Second, func() bool { return a.owned() == 3 && b.owned() == 3 })

	ctx := testCtx(t, 20*time.Second)
	faults := []*kfake.FaultHandle{
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Err: kerr.NotCoordinator, Count: 2, TopLevel: true}),
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.CoordinatorLoadInProgress, Count: 2}),
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: 3}),
	}
	for _, f := range faults {
		if err := f.Wait(ctx, 1); err != nil {
			t.Fatalf("fault never hit: %v", err)
		}
	}
	c.ShufflePartitionLeaders()
	produce(t, c, spread("f", 6, total/2, total/2)...)

	waitFor(t, "every record", 20*time.Second, func() bool {
		seen := make(map[string]bool)
		for _, m := range []*groupMember{a, b} {
			for _, v := range m.processed() {
				seen[v] = true
			}
		}
		return len(seen) == total
	})
	if len(a.lost)+len(b.lost) != 0 {
		t.Errorf("membership lost: %v %v", a.lost, b.lost)
	}
}

func TestIdlePollKeepsMembership(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "idle"))
	m := startMember(t, c, "idle", func(cfg *Config) { cfg.MaxPollInterval = 200 * time.Millisecond })
	waitFor(t, "the assignment", 20*time.Second, func() bool { return m.owned() == 1 })
	time.Sleep(time.Second) // Poll blocks on an empty topic far longer than max.poll.interval.ms
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.lost) != 0 || len(m.revd) != 0 {
		t.Fatalf("a consumer waiting inside Poll lost its partitions: revoked %v lost %v", m.revd, m.lost)
	}
}

func TestLostMembershipRejoins(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "lost"))
	m := startMember(t, c, "lost", nil)
	waitFor(t, "the assignment", 20*time.Second, func() bool { return m.owned() == 2 })
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Err: kerr.UnknownMemberID, TopLevel: true})
	waitFor(t, "OnLost", 20*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.lost) == 1
	})
	waitFor(t, "the partitions back after rejoining", 20*time.Second, func() bool { return m.owned() == 2 })
	produce(t, c, spread("lost", 2, 0, 10)...)
	waitFor(t, "records after rejoining", 20*time.Second, func() bool { return len(m.processed()) == 10 })
}

func TestUnsubscribeThenAssign(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "u1", "u2"))
	produce(t, c, spread("u1", 2, 0, 10)...)
	produce(t, c, spread("u2", 2, 100, 10)...)
	m := startMember(t, c, "u1", nil)
	other := startMember(t, c, "u1", func(cfg *Config) { cfg.SessionTimeout = time.Minute })
	waitFor(t, "u1 consumed", 20*time.Second, func() bool { return len(m.processed())+len(other.processed()) == 10 })
	m.halt(t)
	ctx := testCtx(t, 20*time.Second)
	if err := m.cons.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.cons.Assignment(); len(got) != 0 {
		t.Fatalf("assignment after Unsubscribe: %v", got)
	}
	// It left the group: the other member takes everything well before
	// its one-minute session timeout would have.
	waitFor(t, "the other member to own both partitions", 10*time.Second, func() bool { return other.owned() == 2 })
	// An empty group accepts the commits of a manually assigned consumer
	// (Kafka rejects them while the group has members).
	other.halt(t)
	if err := other.cons.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if err := m.cons.Assign(kafkit.TopicPartition{Topic: "u2", Partition: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.cons.SeekToBeginning(ctx, kafkit.TopicPartition{Topic: "u2", Partition: 1}); err != nil {
		t.Fatal(err)
	}
	for _, r := range pollN(t, ctx, m.cons, 5) {
		if r.Topic != "u2" || r.Partition != 1 {
			t.Fatalf("after Assign: %+v", r)
		}
	}
	if err := m.cons.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.cons.Subscribe("u2"); err != nil {
		t.Fatalf("Subscribe after Unsubscribe: %v", err)
	}
	waitFor(t, "the resubscribed assignment", 20*time.Second, func() bool {
		m.cons.Poll(testCtx(t, 50*time.Millisecond)) // assignments are installed inside Poll
		return len(m.cons.Assignment()) == 2
	})
}

func TestGroupErrorReachesPoll(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "ge"))
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Err: kerr.GroupAuthorizationFailed, TopLevel: true})
	cons := newConsumer(t, c, func(cfg *Config) { cfg.GroupID = "ge" })
	if err := cons.Subscribe("ge"); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	if _, err := cons.Poll(ctx); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("Poll: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	// The fault was one-shot: the membership goroutine retries and joins.
	for len(cons.Assignment()) == 0 {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		cons.Poll(short)
		cancel()
		if ctx.Err() != nil {
			t.Fatal("never joined after the error")
		}
	}
}
