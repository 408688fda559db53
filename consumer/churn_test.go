package consumer

// Issue 19's churn test with issue 22's invariants: members join, close, are
// killed without leaving, stop polling, and the coordinator restarts (our
// broker) or moves (kfake), in random order and timing, for every assignor.
// A short run is part of go test; KAFKIT_CHURN_LONG=1 runs 100 iterations
// (KAFKIT_CHURN_LONG=N: N) per assignor and target and logs the
// redeliveries per scenario.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
)

const (
	churnPartitions = 6
	churnChunk      = 300 // records produced at the start and as each scenario begins
)

var churnScenarios = []string{"join", "close", "kill", "stall", "coordinator"}

// churnTarget is a cluster the churn test can restart (or move) the group
// coordinator of.
type churnTarget interface {
	cluster
	restartCoordinator(t *testing.T)
}

type fakeChurn struct{ *kfake.Cluster }

// kfake keeps groups cluster-wide: rehashing moves the coordinator, so every
// member sees NOT_COORDINATOR and looks it up again.
func (f fakeChurn) restartCoordinator(*testing.T) { f.RehashCoordinators() }

// brokerChurn is our broker on disk, restarted on the same address.
type brokerChurn struct {
	mu  sync.Mutex
	cfg broker.Config
	b   *broker.Broker
}

func newBrokerChurn(t *testing.T, props ...map[string]string) *brokerChurn {
	cfg := broker.DefaultConfig()
	for _, p := range append([]map[string]string{broker.DevOverrides}, props...) {
		if err := cfg.Set(p); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Listen, cfg.DataDir, cfg.GroupMinSessionTimeoutMs = "127.0.0.1:0", t.TempDir(), 100
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = b.Addr()
	bc := &brokerChurn{cfg: cfg, b: b}
	t.Cleanup(func() {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		bc.close(t)
	})
	return bc
}

func (bc *brokerChurn) ListenAddrs() []string { return []string{bc.cfg.Listen} }

func (bc *brokerChurn) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bc.b.Close(ctx); err != nil {
		t.Errorf("closing the broker: %v", err)
	}
}

func (bc *brokerChurn) restartCoordinator(t *testing.T) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.close(t)
	var err error
	for range 50 { // the port may linger briefly
		if bc.b, err = broker.New(bc.cfg); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restarting the broker: %v", err)
}

func TestGroupChurn(t *testing.T) {
	iterations := churnIterations()
	targets := map[string]func(t *testing.T) churnTarget{
		"kfake":  func(t *testing.T) churnTarget { return fakeChurn{newCluster(t)} },
		"kafkit": func(t *testing.T) churnTarget { return newBrokerChurn(t) },
	}
	// The short run spreads the assignors over the targets; the long one
	// runs every pair.
	short := map[string][]string{
		AssignorRange:             {"kafkit"},
		AssignorRoundRobin:        {"kfake"},
		AssignorCooperativeSticky: {"kafkit"},
	}
	churnPairs(t, iterations, targets, []string{AssignorRange, AssignorRoundRobin, AssignorCooperativeSticky}, short)
}

// churnIterations is 1 for the short run, 100 with KAFKIT_CHURN_LONG=1, N
// with KAFKIT_CHURN_LONG=N.
func churnIterations() int {
	iterations := 1
	if v := os.Getenv("KAFKIT_CHURN_LONG"); v != "" {
		iterations = 100
		if n, err := strconv.Atoi(v); err == nil && n > 1 {
			iterations = n // KAFKIT_CHURN_LONG=N: N iterations
		}
	}
	return iterations
}

// churnPairs runs the churn test for each assignor on the targets short
// names (every target when iterations > 1).
func churnPairs(t *testing.T, iterations int, targets map[string]func(t *testing.T) churnTarget, assignors []string, short map[string][]string) {
	for _, assignor := range assignors {
		names := short[assignor]
		if iterations > 1 {
			names = []string{"kfake", "kafkit"}
		}
		for _, name := range names {
			t.Run(assignor+"/"+name, func(t *testing.T) {
				tg := targets[name](t)
				redelivered := make(map[string]int)
				for i := range iterations {
					runChurn(t, tg, assignor, i, redelivered)
					if t.Failed() {
						t.Fatalf("iteration %d failed", i)
					}
				}
				t.Logf("%d iterations; records redelivered by the scenario before them: %v", iterations, redelivered)
			})
		}
	}
}

// churnLedger records what every member was assigned,
// revoked, lost, delivered and committed, and checks the invariants as
// events arrive.
type churnLedger struct {
	t  *testing.T
	mu sync.Mutex // guards everything below

	scenario   string                                      // the scenario under way, for redelivery figures
	state      map[string]map[kafkit.TopicPartition]string // member → partition → assigned, revoked, lost
	deliverers map[genPartition]string                     // generation and partition → the member that delivered from it
	floor      map[string]map[kafkit.TopicPartition]int64  // member → partition → accepted commit when assigned
	accepted   map[kafkit.TopicPartition]int64             // highest commit accepted
	delivered  map[kafkit.TopicPartition]map[int64]int     // partition → offset → deliveries
	values     map[string]bool                             // distinct values delivered
	redeliv    map[string]int                              // scenario → redelivered records
	violations []string
}

func newChurnLedger(t *testing.T) *churnLedger {
	return &churnLedger{
		t: t, scenario: "start",
		state:      make(map[string]map[kafkit.TopicPartition]string),
		deliverers: make(map[genPartition]string),
		floor:      make(map[string]map[kafkit.TopicPartition]int64),
		accepted:   make(map[kafkit.TopicPartition]int64),
		delivered:  make(map[kafkit.TopicPartition]map[int64]int),
		values:     make(map[string]bool),
		redeliv:    make(map[string]int),
	}
}

func inner[V any](m map[string]map[kafkit.TopicPartition]V, k string) map[kafkit.TopicPartition]V {
	if m[k] == nil {
		m[k] = make(map[kafkit.TopicPartition]V)
	}
	return m[k]
}

func (l *churnLedger) violate(format string, args ...any) {
	if len(l.violations) < 20 {
		l.violations = append(l.violations, fmt.Sprintf(format, args...))
	}
}

func (l *churnLedger) callback(member, kind string, tps []kafkit.TopicPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tp := range tps {
		if kind == "assigned" {
			inner(l.floor, member)[tp] = l.accepted[tp]
		}
		inner(l.state, member)[tp] = kind
	}
}

// genPartition is a partition in one generation of the group.
type genPartition struct {
	generation int32
	tp         kafkit.TopicPartition
}

// deliver checks records Poll returned to member, a member of generation
// gen (as it believes: a member the coordinator expelled keeps fetching
// until it learns so, in Java too): the member owns their partition; no
// other member of the same generation delivered from it; a record
// delivered again is in the uncommitted tail.
func (l *churnLedger) deliver(member string, gen int32, recs []*kafkit.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if st := inner(l.state, member)[tp]; st != "assigned" {
			l.violate("%s delivered %v@%d while its partition is %q", member, tp, r.Offset, st)
		}
		key := genPartition{gen, tp}
		if other, ok := l.deliverers[key]; ok && other != member {
			l.violate("%s and %s, both of generation %d, delivered from %v (%s at offset %d)", other, member, gen, tp, member, r.Offset)
		}
		l.deliverers[key] = member
		if l.delivered[tp] == nil {
			l.delivered[tp] = make(map[int64]int)
		}
		if l.delivered[tp][r.Offset] > 0 {
			l.redeliv[l.scenario]++
			if r.Offset < inner(l.floor, member)[tp] {
				l.violate("%s redelivered %v@%d, below the commit %d accepted before it was assigned", member, tp, r.Offset, l.floor[member][tp])
			}
		}
		l.delivered[tp][r.Offset]++
		l.values[string(r.Value)] = true
	}
}

// committed checks a commit the coordinator accepted from member: the member
// owned each partition (a revoked partition's last commit is answered after
// OnRevoked only when it was sent before), never after losing it.
func (l *churnLedger) committed(member string, offsets map[kafkit.TopicPartition]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for tp, o := range offsets {
		if o < l.accepted[tp] {
			l.violate("a commit of %v=%d by %s accepted after %d was (during %s)", tp, o, member, l.accepted[tp], l.scenario)
		}
		if st := inner(l.state, member)[tp]; st != "assigned" && st != "revoked" {
			l.violate("a commit of %v=%d by %s accepted while its partition is %q", tp, o, member, st)
		}
		l.accepted[tp] = max(l.accepted[tp], o)
	}
}

type ledgerInterceptor struct {
	l      *churnLedger
	member string
}

func (ledgerInterceptor) OnConsume(context.Context, []*kafkit.Record) {}

func (i ledgerInterceptor) OnCommit(_ context.Context, offsets map[kafkit.TopicPartition]int64, err error) {
	if err == nil {
		i.l.committed(i.member, offsets)
	}
}

type churnMember struct {
	name string
	cons *Consumer
	stop func() // stops the Poll loop
}

func runChurn(t *testing.T, tg churnTarget, assignor string, iteration int, redelivered map[string]int) {
	rng := rand.New(rand.NewPCG(uint64(iteration), 19))
	topic, group := fmt.Sprintf("churn%d", iteration), fmt.Sprintf("churn-g%d", iteration)
	createTopics(t, tg, churnPartitions, topic)
	l := newChurnLedger(t)
	produced := 0
	produceChunk := func() {
		produce(t, tg, spread(topic, churnPartitions, produced, churnChunk)...)
		produced += churnChunk
	}

	var members []*churnMember // live and polling
	var idle []*churnMember    // stalled: closed at the end
	next := 0
	join := func() {
		name := fmt.Sprintf("m%d", next)
		next++
		cons := newConsumer(t, tg, func(cfg *Config) {
			cfg.GroupID = group
			cfg.AutoOffsetReset = OffsetResetEarliest
			cfg.AutoCommitInterval = 100 * time.Millisecond
			cfg.SessionTimeout = time.Second
			cfg.MaxPollInterval = time.Second
			cfg.PartitionAssignmentStrategy = []string{assignor}
			cfg.Interceptors = []Interceptor{ledgerInterceptor{l, name}}
			cfg.OnAssigned = func(tps []kafkit.TopicPartition) { l.callback(name, "assigned", tps) }
			cfg.OnRevoked = func(tps []kafkit.TopicPartition) { l.callback(name, "revoked", tps) }
			cfg.OnLost = func(tps []kafkit.TopicPartition) { l.callback(name, "lost", tps) }
		})
		if err := cons.Subscribe(topic); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				recs, err := cons.Poll(ctx)
				if err != nil {
					if ctx.Err() == nil {
						time.Sleep(20 * time.Millisecond) // a membership hiccup: Poll again
					}
					continue
				}
				l.deliver(name, cons.GroupMetadata().GenerationID, recs)
			}
		}()
		members = append(members, &churnMember{name: name, cons: cons, stop: func() { cancel(); <-done }})
	}
	take := func() *churnMember {
		if len(members) < 2 {
			join()
		}
		i := rng.IntN(len(members))
		m := members[i]
		members = slices.Delete(members, i, i+1)
		m.stop()
		return m
	}

	// The committed offsets, seen from outside, never move backwards.
	watcher := newConsumer(t, tg, func(cfg *Config) { cfg.GroupID = group })
	var all []kafkit.TopicPartition
	for p := range int32(churnPartitions) {
		all = append(all, kafkit.TopicPartition{Topic: topic, Partition: p})
	}
	var commitMu sync.Mutex // serializes watch; guards lastCommitted
	lastCommitted := make(map[kafkit.TopicPartition]int64)
	watch := func() map[kafkit.TopicPartition]int64 {
		// One at a time: answers to overlapping requests may arrive
		// in either order.
		commitMu.Lock()
		defer commitMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		got, err := watcher.Committed(ctx, all...)
		if err != nil {
			return nil // the coordinator is restarting
		}
		for tp, o := range got {
			if o < lastCommitted[tp] {
				l.mu.Lock()
				l.violate("committed offset of %v moved back from %d to %d (during %s)", tp, lastCommitted[tp], o, l.scenario)
				l.mu.Unlock()
			}
			lastCommitted[tp] = max(lastCommitted[tp], o)
		}
		return got
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for watchCtx.Err() == nil {
			watch()
			select {
			case <-watchCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer func() { stopWatch(); <-watchDone }()

	// settle waits until every record is delivered and the committed
	// offsets reach the end of every partition, within a bound set by the
	// timeouts (session and poll timeouts of 1 s, a restart, a few
	// rebalances), so that redeliveries count against the scenario before.
	settle := func(sc string) {
		end := int64(produced / churnPartitions)
		deadline := time.Now().Add(60 * time.Second)
		for {
			l.mu.Lock()
			n := len(l.values)
			l.mu.Unlock()
			got := watch()
			atEnd := len(got) == churnPartitions
			for _, o := range got {
				atEnd = atEnd && o == end
			}
			if n == produced && atEnd {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("60 s after %s: %d of %d records delivered, committed %v (want %d each)", sc, n, produced, got, end)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for range 3 {
		join()
	}
	produceChunk()
	settle("start")
	for _, i := range rng.Perm(len(churnScenarios)) {
		sc := churnScenarios[i]
		// While the members consume a new chunk, so that some of it
		// is not committed yet.
		produceChunk()
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		l.mu.Lock()
		l.scenario = sc
		l.mu.Unlock()
		switch sc {
		case "join":
			join()
		case "close":
			m := take()
			if err := m.cons.Close(testCtx(t, 10*time.Second)); err != nil {
				t.Logf("close %s: %v", m.name, err)
			}
		case "kill":
			take().cons.kill()
		case "stall":
			idle = append(idle, take())
		case "coordinator":
			tg.restartCoordinator(t)
		}
		settle(sc)
	}
	for _, m := range append(members, idle...) {
		if m.stop != nil {
			m.stop()
		}
		_ = m.cons.Close(testCtx(t, 10*time.Second))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Error(v)
	}
	for sc, n := range l.redeliv {
		redelivered[sc] += n
	}
	if testing.Verbose() {
		t.Logf("iteration %d: redelivered %v", iteration, maps.Clone(l.redeliv))
	}
}
