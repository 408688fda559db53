package integration

import (
	"context"
	"sync"
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
