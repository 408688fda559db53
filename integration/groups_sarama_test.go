package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// groupConfig is a sarama consumer-group config with timeouts short enough
// for tests (group.min.session.timeout.ms is 6s by default).
func groupConfig() *sarama.Config {
	cfg := saramaConfig()
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

func createTopic(t testing.TB, addr, topic string, partitions int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
}

// produceSeq produces records whose key and value are their sequence
// numbers from..to-1, spread over the partitions by key.
func produceSeq(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, saramaConfig())
	if err != nil {
		t.Error(err)
		return
	}
	defer p.Close()
	for lo := from; lo < to; lo += 1000 {
		var msgs []*sarama.ProducerMessage
		for i := lo; i < min(lo+1000, to); i++ {
			s := strconv.Itoa(i)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(s), Value: sarama.StringEncoder(s)})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Error(err)
			return
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tracker records which member consumed each sequence number.
type tracker struct {
	mu       sync.Mutex // guards every field below
	seen     map[int][]string
	sessions map[string][]sessionInfo
}

type sessionInfo struct {
	generation int32
	memberID   string
	claims     map[string][]int32
}

func newTracker() *tracker {
	return &tracker{seen: make(map[int][]string), sessions: make(map[string][]sessionInfo)}
}

func (tr *tracker) distinct() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.seen)
}

func (tr *tracker) consumedBy(name string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, who := range tr.seen {
		for _, w := range who {
			if w == name {
				n++
			}
		}
	}
	return n
}

func (tr *tracker) lastSession(name string) (sessionInfo, int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ss := tr.sessions[name]
	if len(ss) == 0 {
		return sessionInfo{}, 0
	}
	return ss[len(ss)-1], len(ss)
}

// handler is one sarama group member's ConsumerGroupHandler.
type handler struct {
	name string
	tr   *tracker
}

func (h handler) Setup(s sarama.ConsumerGroupSession) error {
	h.tr.mu.Lock()
	h.tr.sessions[h.name] = append(h.tr.sessions[h.name], sessionInfo{s.GenerationID(), s.MemberID(), s.Claims()})
	h.tr.mu.Unlock()
	return nil
}

func (handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		seq, err := strconv.Atoi(string(m.Value))
		if err != nil {
			return err
		}
		h.tr.mu.Lock()
		h.tr.seen[seq] = append(h.tr.seen[seq], h.name)
		h.tr.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// member runs a sarama consumer group member until stop.
type member struct {
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, addr, groupID, topic string, cfg *sarama.Config, h handler) *member {
	t.Helper()
	g, err := sarama.NewConsumerGroup([]string{addr}, groupID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{group: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				t.Logf("%s: consume: %v", h.name, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the member's session (committing its marked offsets) and
// closes it; sarama sends LeaveGroup unless the member is static.
func (m *member) stop() {
	m.cancel()
	<-m.done
	m.group.Close()
}

// committedTotal sums a group's committed offsets of topic.
func committedTotal(t *testing.T, admin sarama.ClusterAdmin, group, topic string) int64 {
	t.Helper()
	resp, err := admin.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range resp.Blocks[topic] {
		if b.Err != sarama.ErrNoError {
			t.Fatalf("offset fetch: %v", b.Err)
		}
		sum += max(b.Offset, 0)
	}
	return sum
}

// TestSaramaGroupRebalances: three members share a 6-partition topic while
// 30,000 records arrive; a fourth joins mid-stream and one leaves. Every
// record is consumed, by one member at a time, and a record is seen twice at
// most (re-delivery of what followed the last commit of a moved partition).
func TestSaramaGroupRebalances(t *testing.T) {
	b := broker.NewTest(t)
	const topic, total = "rebalances", 30_000
	createTopic(t, b.Addr(), topic, 6)
	tr := newTracker()

	// Records keep arriving in three phases: while the group forms, while
	// the fourth member joins, and after the first member left. Each phase
	// follows the previous one's membership change, so the joiner surely
	// holds partitions that receive records.
	third := total / 3
	go produceSeq(t, b.Addr(), topic, 0, third)
	var ms []*member
	for i := range 3 {
		ms = append(ms, startMember(t, b.Addr(), "rebalancers", topic, groupConfig(), handler{fmt.Sprint("m", i), tr}))
	}
	waitFor(t, 30*time.Second, "the first third", func() bool { return tr.distinct() == third })
	startMember(t, b.Addr(), "rebalancers", topic, groupConfig(), handler{"joiner", tr})
	produceSeq(t, b.Addr(), topic, third, 2*third)
	waitFor(t, 30*time.Second, "the joiner's partitions", func() bool {
		s, _ := tr.lastSession("joiner")
		return len(s.claims[topic]) > 0
	})
	ms[0].stop()
	produceSeq(t, b.Addr(), topic, 2*third, total)
	waitFor(t, 30*time.Second, "every record", func() bool { return tr.distinct() == total })

	tr.mu.Lock()
	var redelivered int
	for seq := range total {
		who := tr.seen[seq]
		if len(who) > 2 || len(who) == 2 && who[0] == who[1] {
			t.Errorf("record %d consumed by %v", seq, who)
		}
		if len(who) == 2 {
			redelivered++
		}
	}
	tr.mu.Unlock()
	t.Logf("%d of %d records re-delivered after rebalances", redelivered, total)
	// In every generation each partition has at most one owner, and the
	// last generation's members own all six.
	owners := make(map[int32]map[int32]string) // generation → partition → member
	var last int32
	tr.mu.Lock()
	for name, ss := range tr.sessions {
		for _, s := range ss {
			if owners[s.generation] == nil {
				owners[s.generation] = make(map[int32]string)
			}
			for _, p := range s.claims[topic] {
				if other, ok := owners[s.generation][p]; ok {
					t.Errorf("generation %d: partition %d owned by %s and %s", s.generation, p, other, name)
				}
				owners[s.generation][p] = name
			}
			last = max(last, s.generation)
		}
	}
	tr.mu.Unlock()
	if len(owners[last]) != 6 {
		t.Errorf("generation %d owns %d partitions, want 6", last, len(owners[last]))
	}
	if tr.consumedBy("joiner") == 0 {
		t.Error("the member that joined mid-stream consumed nothing")
	}

	for _, m := range ms[1:] {
		m.stop()
	}
	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Members committed everything they consumed before leaving; the joiner
	// is still in, so wait for its auto-commit.
	waitFor(t, 10*time.Second, "committed offsets to reach the end", func() bool { return committedTotal(t, admin, "rebalancers", topic) == total })
}

// TestSaramaSessionTimeoutExpiresMember: a member that stops heartbeating,
// without LeaveGroup, is removed after its session timeout and its
// partitions go to the remaining member.
func TestSaramaSessionTimeoutExpiresMember(t *testing.T) {
	b := broker.NewTest(t)
	const topic, group = "expiry", "expiry-g"
	createTopic(t, b.Addr(), topic, 6)
	tr := newTracker()
	startMember(t, b.Addr(), group, topic, groupConfig(), handler{"live", tr})
	waitFor(t, 20*time.Second, "the first member to own every partition", func() bool {
		s, _ := tr.lastSession("live")
		return len(s.claims[topic]) == 6
	})

	// A raw member joins, syncs, takes its partitions and goes silent.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = group, "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 6000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	jr, err := join.RequestWith(ctx, cl)
	if err != nil || jr.ErrorCode != 79 { // MEMBER_ID_REQUIRED
		t.Fatalf("first join: %v %+v", err, jr)
	}
	join.MemberID = jr.MemberID
	if jr, err = join.RequestWith(ctx, cl); err != nil || jr.ErrorCode != 0 || jr.LeaderID == jr.MemberID {
		t.Fatalf("join: %v %+v (the live member should lead)", err, jr)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = group, jr.MemberID, jr.Generation
	sync.ProtocolType, sync.Protocol = jr.ProtocolType, jr.Protocol // mandatory from v5
	sr, err := sync.RequestWith(ctx, cl)
	if err != nil || sr.ErrorCode != 0 {
		t.Fatalf("sync: %v %+v", err, sr)
	}
	var assigned kmsg.ConsumerMemberAssignment
	if err := assigned.ReadFrom(sr.MemberAssignment); err != nil || len(assigned.Topics) != 1 || len(assigned.Topics[0].Partitions) != 3 {
		t.Fatalf("silent member's assignment: %v %+v", err, assigned)
	}
	silentSince := time.Now()
	waitFor(t, 20*time.Second, "the live member to hold 3 partitions", func() bool {
		s, _ := tr.lastSession("live")
		return s.generation == jr.Generation && len(s.claims[topic]) == 3
	})
	waitFor(t, 20*time.Second, "the silent member to expire", func() bool {
		s, _ := tr.lastSession("live")
		return s.generation > jr.Generation && len(s.claims[topic]) == 6
	})
	if waited := time.Since(silentSince); waited < 5*time.Second {
		t.Errorf("member expired after %v, before its 6s session timeout", waited)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = group, jr.MemberID, jr.Generation
	if resp, err := hb.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 25 { // UNKNOWN_MEMBER_ID
		t.Errorf("expired member's heartbeat: %v %+v", err, resp)
	}
	// Its partitions are consumed by the live member now.
	produceSeq(t, b.Addr(), topic, 0, 600)
	waitFor(t, 20*time.Second, "every record", func() bool { return tr.distinct() == 600 })
}

// TestSaramaStaticMembership: a static member (group.instance.id) restarts
// within its session timeout and gets its partitions back in the same
// generation, with no rebalance of the other member.
func TestSaramaStaticMembership(t *testing.T) {
	b := broker.NewTest(t)
	const topic, group = "static", "static-g"
	createTopic(t, b.Addr(), topic, 6)
	tr := newTracker()
	static := func(id string) *sarama.Config {
		cfg := groupConfig()
		cfg.Consumer.Group.InstanceId = id
		cfg.Consumer.Group.Session.Timeout = 10 * time.Second
		return cfg
	}
	startMember(t, b.Addr(), group, topic, static("a"), handler{"a", tr})
	bm := startMember(t, b.Addr(), group, topic, static("b"), handler{"b", tr})
	var gen int32
	waitFor(t, 20*time.Second, "both static members to share the partitions", func() bool {
		sa, _ := tr.lastSession("a")
		sb, _ := tr.lastSession("b")
		gen = sa.generation
		return sa.generation == sb.generation && len(sa.claims[topic]) == 3 && len(sb.claims[topic]) == 3
	})
	before, _ := tr.lastSession("b")
	_, aSessions := tr.lastSession("a")

	bm.stop() // static: no LeaveGroup
	startMember(t, b.Addr(), group, topic, static("b"), handler{"b2", tr})
	waitFor(t, 10*time.Second, "the restarted member's session", func() bool {
		_, n := tr.lastSession("b2")
		return n > 0
	})
	after, _ := tr.lastSession("b2")
	if after.generation != gen || after.memberID == before.memberID || fmt.Sprint(after.claims) != fmt.Sprint(before.claims) {
		t.Fatalf("restarted static member: generation %d (want %d), member %q (old %q), claims %v (old %v)",
			after.generation, gen, after.memberID, before.memberID, after.claims, before.claims)
	}
	time.Sleep(time.Second) // a rebalance would reach "a" within a few heartbeats
	if _, n := tr.lastSession("a"); n != aSessions {
		t.Errorf("the other member went through %d more sessions; want no rebalance", n-aSessions)
	}
	produceSeq(t, b.Addr(), topic, 0, 600)
	waitFor(t, 20*time.Second, "every record", func() bool { return tr.distinct() == 600 })
	if tr.consumedBy("b2") == 0 {
		t.Error("the restarted member consumed nothing")
	}
}

// TestSaramaOffsetsSurviveRestart: committed offsets of every group come
// back after the broker restarts on the same data directory, and a consumer
// resumes from them.
func TestSaramaOffsetsSurviveRestart(t *testing.T) {
	cfg := broker.DefaultConfig()
	if err := cfg.Set(broker.DevOverrides); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeBroker := func(b *broker.Broker) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	}
	const topic = "restart"
	createTopic(t, b.Addr(), topic, 3)
	produceSeq(t, b.Addr(), topic, 0, 900)
	groups := []string{"restart-a", "restart-b"}
	for _, g := range groups {
		tr := newTracker()
		m := startMember(t, b.Addr(), g, topic, groupConfig(), handler{g, tr})
		waitFor(t, 20*time.Second, g+" to consume", func() bool { return tr.distinct() == 900 })
		m.stop()
	}
	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, g := range groups {
		want[g] = committedTotal(t, admin, g, topic)
		if want[g] != 900 {
			t.Fatalf("%s committed %d before restart, want 900", g, want[g])
		}
	}
	admin.Close()
	closeBroker(b)

	b, err = broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBroker(b)
	admin, err = sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, g := range groups {
		var got int64
		// The coordinator answers COORDINATOR_LOAD_IN_PROGRESS until loaded.
		waitFor(t, 10*time.Second, g+"'s offsets after restart", func() bool {
			got = committedTotal(t, admin, g, topic)
			return got == want[g]
		})
	}
	produceSeq(t, b.Addr(), topic, 900, 960)
	tr := newTracker()
	startMember(t, b.Addr(), groups[0], topic, groupConfig(), handler{"resumed", tr})
	waitFor(t, 20*time.Second, "the new records", func() bool { return tr.distinct() == 60 })
	time.Sleep(300 * time.Millisecond)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for seq := range tr.seen {
		if seq < 900 {
			t.Fatalf("resumed consumer re-read record %d, committed before the restart", seq)
		}
	}
}

// TestSaramaGroupAdmin checks what sarama's ClusterAdmin expects from
// ListGroups, DescribeGroups, OffsetFetch, OffsetDelete and DeleteGroups.
func TestSaramaGroupAdmin(t *testing.T) {
	b := broker.NewTest(t)
	const topic, group = "admin", "admin-g"
	createTopic(t, b.Addr(), topic, 2)
	produceSeq(t, b.Addr(), topic, 0, 100)
	tr := newTracker()
	m := startMember(t, b.Addr(), group, topic, groupConfig(), handler{"m", tr})
	waitFor(t, 20*time.Second, "consumption", func() bool { return tr.distinct() == 100 })

	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	waitFor(t, 5*time.Second, "the commits", func() bool { return committedTotal(t, admin, group, topic) == 100 })

	list, err := admin.ListConsumerGroups()
	if err != nil || list[group] != "consumer" {
		t.Fatalf("ListConsumerGroups: %v %v", err, list)
	}
	desc, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 {
		t.Fatalf("DescribeConsumerGroups: %v %v", err, desc)
	}
	d := desc[0]
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 1 {
		t.Fatalf("described: %+v", d)
	}
	for _, md := range d.Members {
		if md.ClientHost != "/127.0.0.1" || md.ClientId != "kafkit-integration" {
			t.Errorf("member host %q client %q", md.ClientHost, md.ClientId)
		}
		a, err := md.GetMemberAssignment()
		if err != nil || len(a.Topics[topic]) != 2 {
			t.Errorf("member assignment: %v %+v", err, a)
		}
		meta, err := md.GetMemberMetadata()
		if err != nil || len(meta.Topics) != 1 || meta.Topics[0] != topic {
			t.Errorf("member metadata: %v %+v", err, meta)
		}
	}
	if err := admin.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrNonEmptyGroup) {
		t.Errorf("deleting a live group: %v, want NON_EMPTY_GROUP", err)
	}
	if err := admin.DeleteConsumerGroupOffset(group, topic, 0); !errors.Is(err, sarama.ErrGroupSubscribedToTopic) {
		t.Errorf("deleting a subscribed topic's offset: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}

	m.stop() // LeaveGroup: the group is Empty
	desc, err = admin.DescribeConsumerGroups([]string{group})
	if err != nil || desc[0].State != "Empty" || len(desc[0].Members) != 0 {
		t.Fatalf("after leave: %v %+v", err, desc)
	}
	if err := admin.DeleteConsumerGroupOffset(group, topic, 0); err != nil {
		t.Fatalf("deleting an offset of an empty group: %v", err)
	}
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil || offs.Blocks[topic][0].Offset != -1 || offs.Blocks[topic][1].Offset <= 0 {
		t.Fatalf("offsets after delete: %v %+v %+v", err, offs.Blocks[topic][0], offs.Blocks[topic][1])
	}
	if err := admin.DeleteConsumerGroup(group); err != nil {
		t.Fatalf("deleting an empty group: %v", err)
	}
	if err := admin.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrGroupIDNotFound) {
		t.Errorf("deleting twice: %v, want GROUP_ID_NOT_FOUND", err)
	}
	list, err = admin.ListConsumerGroups()
	if _, ok := list[group]; err != nil || ok {
		t.Errorf("listed after delete: %v %v", err, list)
	}
	if total := committedTotal(t, admin, group, topic); total != 0 {
		t.Errorf("offsets of a deleted group: %d", total)
	}
}
