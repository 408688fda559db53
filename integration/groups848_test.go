package integration

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// fastConsumerGroups makes KIP-848 members heartbeat every 100 ms so tests
// do not wait on the 5 s default.
func fastConsumerGroups() broker.TestOption {
	return broker.WithConfig(func(c *broker.Config) {
		c.GroupConsumerHeartbeatIntervalMs = 100
		c.GroupConsumerSessionTimeoutMs = 6000
	})
}

// kgoMember848 is a franz-go consumer in a KIP-848 group that records what
// it consumes into tr and every assignment change into its log.
type kgoMember848 struct {
	name string
	mu   sync.Mutex // guards owned and the counters
	// owned is what the member holds now; revoked and assigned count
	// partitions through the member's life (a stop-the-world rebalance
	// revokes and assigns again what a member keeps).
	owned    map[int32]bool
	revoked  int
	assigned int
	stop     func()
}

func newKgoMember848(t *testing.T, addr, group, topic, name string, tr *tracker, extra ...kgo.Opt) *kgoMember848 {
	m := &kgoMember848{name: name, owned: make(map[int32]bool)}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.StickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				m.owned[p] = true
				m.assigned++
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("%s: commit on revoke: %v", name, err)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				delete(m.owned, p)
				m.revoked++
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				delete(m.owned, p)
			}
		}),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.stop = consumeSeqs(t, cl, name, tr)
	return m
}

// consumeSeqs polls cl in the background, recording each record's
// sequence number (its value) as consumed by name. stop (also a cleanup)
// ends polling and closes the client, which commits what was polled and
// leaves the group.
func consumeSeqs(t *testing.T, cl *kgo.Client, name string, tr *tracker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				seq, err := strconv.Atoi(string(r.Value))
				if err != nil {
					t.Errorf("record value %q", r.Value)
					return
				}
				tr.mu.Lock()
				tr.seen[seq] = append(tr.seen[seq], name)
				tr.mu.Unlock()
			})
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			cl.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func (m *kgoMember848) ownedNow() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// TestKgoConsumerProtocolGroup runs franz-go's KIP-848 consumer
// (ServerSideBalancer) against our broker: members join one by one and one
// leaves while records flow. Every record is consumed, none by two members
// unless a handoff re-delivered it after the last commit, and rebalances
// are incremental: the first member keeps the partitions it is not asked
// to give up (it is never revoked more than it hands over).
func TestKgoConsumerProtocolGroup(t *testing.T) {
	b := broker.NewTest(t, fastConsumerGroups())
	const topic, group, total = "kgo-848", "kgo-848-g", 12_000
	createTopic(t, b.Addr(), topic, 6)
	tr := newTracker()

	third := total / 3
	go produceSeq(t, b.Addr(), topic, 0, third)
	k0 := newKgoMember848(t, b.Addr(), group, topic, "k0", tr)
	waitFor(t, 20*time.Second, "the first third", func() bool { return tr.distinct() == third })
	if got := k0.ownedNow(); len(got) != 6 {
		t.Fatalf("the only member owns %v, want all 6 partitions", got)
	}
	k1 := newKgoMember848(t, b.Addr(), group, topic, "k1", tr)
	k2 := newKgoMember848(t, b.Addr(), group, topic, "k2", tr)
	produceSeq(t, b.Addr(), topic, third, 2*third)
	waitFor(t, 20*time.Second, "two partitions per member", func() bool {
		return len(k0.ownedNow()) == 2 && len(k1.ownedNow()) == 2 && len(k2.ownedNow()) == 2
	})
	k0.mu.Lock()
	if k0.revoked != 4 || k0.assigned != 6 {
		t.Errorf("k0 was revoked %d and assigned %d partitions while two members joined; an incremental rebalance revokes only the 4 it hands over and assigns none again", k0.revoked, k0.assigned)
	}
	k0.mu.Unlock()

	cl := newKgoClient(t, b.Addr())
	dreq := kmsg.NewPtrConsumerGroupDescribeRequest()
	dreq.Groups = []string{group}
	dresp, err := dreq.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	d := dresp.Groups[0]
	if d.ErrorCode != 0 || d.State != "Stable" || len(d.Members) != 3 || d.AssignorName != "uniform" {
		t.Errorf("ConsumerGroupDescribe: error %d, state %q, assignor %q, %d members", d.ErrorCode, d.State, d.AssignorName, len(d.Members))
	}
	for _, m := range d.Members {
		if ps := m.Assignment.TopicPartitions; m.MemberType != 1 || len(ps) != 1 || ps[0].Topic != topic || len(ps[0].Partitions) != 2 {
			t.Errorf("member %s (type %d) is assigned %+v, want 2 partitions of %s", m.MemberID, m.MemberType, ps, topic)
		}
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"consumer"}
	lresp, err := lreq.RequestWith(context.Background(), cl)
	if err != nil || len(lresp.Groups) != 1 || lresp.Groups[0].GroupType != "consumer" || lresp.Groups[0].GroupState != "Stable" {
		t.Errorf("ListGroups of type consumer: %v %+v", err, lresp)
	}

	k0.stop()
	produceSeq(t, b.Addr(), topic, 2*third, total)
	waitFor(t, 30*time.Second, "every record", func() bool { return tr.distinct() == total })
	tr.mu.Lock()
	for seq := range total {
		if who := tr.seen[seq]; len(who) > 2 || len(who) == 2 && who[0] == who[1] {
			t.Errorf("record %d consumed by %v", seq, who)
		}
	}
	tr.mu.Unlock()
	k1.stop()
	k2.stop()
	if got := committedTotal848(t, cl, group, topic, 6); got != total {
		t.Errorf("the group committed %d records, want %d", got, total)
	}
}

// committedTotal848 sums the group's committed offsets of topic's
// partitions (an admin OffsetFetch, without member).
func committedTotal848(t *testing.T, cl *kgo.Client, group, topic string, partitions int32) int64 {
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{rt}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				sum += max(p.Offset, 0)
			}
		}
	}
	return sum
}

func newKgoClient(t *testing.T, addr string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
