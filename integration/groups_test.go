package integration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit/broker"
)

// TestKgoCooperativeStickyGroup drives the coordinator with franz-go's
// consumer group (cooperative-sticky, incremental rebalances): members join
// one by one and one leaves while records flow; every record is consumed,
// and the offsets kgo committed are what sarama's admin reads back, so two
// independent clients agree on the group's state.
func TestKgoCooperativeStickyGroup(t *testing.T) {
	b := broker.NewTest(t)
	const topic, group, total = "kgo-coop", "kgo-coop-g", 12_000
	createTopic(t, b.Addr(), topic, 6)
	tr := newTracker()

	var assignedMu sync.Mutex        // guards assigned
	assigned := make(map[string]int) // partitions each member was given, over time
	newMember := func(name string) (stop func()) {
		cl, err := kgo.NewClient(
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				assignedMu.Lock()
				assigned[name] += len(ps[topic])
				assignedMu.Unlock()
			}),
			kgo.SeedBrokers(b.Addr()),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.AutoCommitInterval(100*time.Millisecond),
			kgo.FetchMaxWait(100*time.Millisecond),
		)
		if err != nil {
			t.Fatal(err)
		}
		return consumeSeqs(t, cl, name, tr)
	}

	// Records arrive in three phases, each after a membership change, so
	// every member surely holds partitions that receive records.
	third := total / 3
	go produceSeq(t, b.Addr(), topic, 0, third)
	first := newMember("k0")
	waitFor(t, 20*time.Second, "the first third", func() bool { return tr.distinct() == third })
	stops := []func(){newMember("k1"), newMember("k2")}
	produceSeq(t, b.Addr(), topic, third, 2*third)
	waitFor(t, 20*time.Second, "the joiners' partitions", func() bool {
		assignedMu.Lock()
		defer assignedMu.Unlock()
		return assigned["k1"] > 0 && assigned["k2"] > 0
	})
	first()
	produceSeq(t, b.Addr(), topic, 2*third, total)
	waitFor(t, 30*time.Second, "every record", func() bool { return tr.distinct() == total })
	tr.mu.Lock()
	for seq := range total {
		if who := tr.seen[seq]; len(who) > 2 || len(who) == 2 && who[0] == who[1] {
			t.Errorf("record %d consumed by %v", seq, who)
		}
	}
	tr.mu.Unlock()
	if tr.consumedBy("k1") == 0 || tr.consumedBy("k2") == 0 {
		t.Errorf("a joiner consumed nothing: k1 %d, k2 %d", tr.consumedBy("k1"), tr.consumedBy("k2"))
	}
	for _, stop := range stops {
		stop()
	}

	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if got := committedTotal(t, admin, group, topic); got != total {
		t.Errorf("sarama reads %d committed records for kgo's group, want %d", got, total)
	}
	desc, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || desc[0].State != "Empty" || desc[0].ProtocolType != "consumer" {
		t.Errorf("group after every kgo member left: %v %+v", err, desc)
	}
}

// cooperativeStrategy is the method set of sarama's cooperative-sticky
// strategy, so that a wrapper keeps its optional interfaces.
type cooperativeStrategy interface {
	sarama.BalanceStrategy
	SupportedProtocols() []sarama.RebalanceProtocol
	SubscriptionUserData(topics []string) ([]byte, error)
	OnAssignment(assignment *sarama.ConsumerGroupMemberAssignment, generationID int32)
}

// stallingPlan is sarama's cooperative-sticky strategy whose Plan stalls
// from the second rebalance on: the leader's time between its JoinGroup
// answer and its SyncGroup, which a loaded sarama client spends waiting
// for its fetch long-polls to release the broker connections' locks.
type stallingPlan struct {
	cooperativeStrategy
	stall time.Duration
	plans atomic.Int32
}

func (s *stallingPlan) Plan(members map[string]sarama.ConsumerGroupMemberMetadata, topics map[string][]int32) (sarama.BalanceStrategyPlan, error) {
	if s.plans.Add(1) > 1 {
		time.Sleep(s.stall)
	}
	return s.cooperativeStrategy.Plan(members, topics)
}

// sessionHandler keeps its member's latest session; cooperative rebalances
// change the session's claims without a new Setup.
type sessionHandler struct {
	sess atomic.Pointer[sarama.ConsumerGroupSession]
}

func (h *sessionHandler) Setup(s sarama.ConsumerGroupSession) error { h.sess.Store(&s); return nil }
func (*sessionHandler) Cleanup(sarama.ConsumerGroupSession) error   { return nil }
func (*sessionHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
	}
	return nil
}

func (h *sessionHandler) claimed(topic string) int {
	if s := h.sess.Load(); s != nil {
		return len((*s).Claims()[topic])
	}
	return 0
}

// TestSaramaCooperativeLeaderLateSync is how sarama's
// TestFuncConsumerGroupCooperative flakes on a loaded machine, made
// deterministic: a cooperative leader that holds partitions and sends its
// SyncGroup later than the rebalance timeout after the join phase is
// removed by the coordinator (Kafka's expirePendingSync), so the SyncGroup
// is answered UNKNOWN_MEMBER_ID and sarama ends Consume with "The provided
// member is not known in the current generation" (lostHeldAssignment);
// the other member takes every partition.
func TestSaramaCooperativeLeaderLateSync(t *testing.T) {
	b := broker.NewTest(t)
	const topic, group = "coop-late", "coop-late-g"
	createTopic(t, b.Addr(), topic, 4)
	const rebalance = 2 * time.Second
	newConfig := func(s sarama.BalanceStrategy) *sarama.Config {
		cfg := groupConfig()
		cfg.Consumer.Group.Rebalance.Timeout = rebalance
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{s}
		return cfg
	}
	late := &stallingPlan{cooperativeStrategy: sarama.NewBalanceStrategyCooperativeSticky().(cooperativeStrategy), stall: rebalance + time.Second}
	g1, err := sarama.NewConsumerGroup([]string{b.Addr()}, group, newConfig(late))
	if err != nil {
		t.Fatal(err)
	}
	defer g1.Close()
	h1 := &sessionHandler{}
	consumed := make(chan error, 1)
	go func() { consumed <- g1.Consume(context.Background(), []string{topic}, h1) }()
	waitFor(t, 20*time.Second, "the first member's partitions", func() bool { return h1.claimed(topic) == 4 })

	g2, err := sarama.NewConsumerGroup([]string{b.Addr()}, group, newConfig(sarama.NewBalanceStrategyCooperativeSticky()))
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	h2 := &sessionHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := g2.Consume(ctx, []string{topic}, h2); err != nil {
				return
			}
		}
	}()

	select {
	case err := <-consumed:
		if !errors.Is(err, sarama.ErrUnknownMemberId) {
			t.Fatalf("the late leader's Consume ended with %v, want UNKNOWN_MEMBER_ID", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the late leader kept its membership")
	}
	if n := late.plans.Load(); n < 2 {
		t.Fatalf("the first member planned %d rebalances: it lost its membership before it led the second", n)
	}
	waitFor(t, 20*time.Second, "the second member's partitions", func() bool { return h2.claimed(topic) == 4 })
}
