package consumer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
)

// consumerProtocol is a cluster whose consumers use group.protocol=consumer
// (KIP-848): newConsumer switches every consumer of a group test to it.
type consumerProtocol struct{ cluster }

func (consumerProtocol) consumerProtocol() {}

// churn848 is a churn target whose consumers use group.protocol=consumer.
type churn848 struct{ churnTarget }

func (churn848) consumerProtocol() {}

// onConsumerProtocol turns a test's config into a consumer-protocol one:
// the broker decides the session timeout, heartbeat interval and
// assignment, so those keys must not be set. A test's single assignor
// becomes the server-side one closest to it, as franz-go maps them.
func onConsumerProtocol(cfg *Config) {
	if s := cfg.PartitionAssignmentStrategy; len(s) == 1 && cfg.GroupRemoteAssignor == "" {
		cfg.GroupRemoteAssignor = map[string]string{AssignorRange: "range", AssignorCooperativeSticky: "uniform", AssignorRoundRobin: "uniform"}[s[0]]
	}
	cfg.GroupProtocol = GroupProtocolConsumer
	cfg.SessionTimeout, cfg.HeartbeatInterval, cfg.PartitionAssignmentStrategy = 0, 0, nil
}

// consumerGroupConfigs make KIP-848 members heartbeat every 100 ms and
// expire after 2 s without one, on both brokers.
var consumerGroupConfigs = map[string]string{
	"group.consumer.heartbeat.interval.ms": "100",
	"group.consumer.session.timeout.ms":    "2000",
}

// onBoth848 runs a group test with group.protocol=consumer against kfake
// and our broker.
func onBoth848(t *testing.T, partitions int32, topics []string, fn func(t *testing.T, c cluster)) {
	t.Run("kfake", func(t *testing.T) {
		fn(t, consumerProtocol{newCluster(t, kfake.SeedTopics(partitions, topics...), kfake.BrokerConfigs(consumerGroupConfigs))})
	})
	t.Run("kafkit", func(t *testing.T) {
		b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) {
			if err := c.Set(consumerGroupConfigs); err != nil {
				t.Fatal(err)
			}
		}))
		createTopics(t, kafkitCluster{b}, partitions, topics...)
		fn(t, consumerProtocol{kafkitCluster{b}})
	})
}

// TestGroupTestsOnConsumerProtocol runs the consumer's group tests with
// group.protocol=consumer: exactly-once processing across three members,
// a member joining with only the surplus partitions moving (no
// stop-the-world rebalance), a killed member's partitions redelivered from
// its last commit, a static member's restart without a rebalance, and a
// member that stops polling leaving its partitions to the others.
func TestGroupTestsOnConsumerProtocol(t *testing.T) {
	t.Run("ThreeMembersExactlyOnce", func(t *testing.T) {
		onBoth848(t, 12, []string{"orders"}, testGroupThreeMembersExactlyOnce)
	})
	t.Run("AddMemberMovesOnlyItsShare", func(t *testing.T) {
		onBoth848(t, 12, []string{"sticky"}, testCooperativeStickyAddMember)
	})
	t.Run("KilledMemberRedelivers", func(t *testing.T) {
		onBoth848(t, 4, []string{"k"}, testKilledMemberRedelivers)
	})
	t.Run("StaticMembershipRestart", func(t *testing.T) {
		onBoth848(t, 4, []string{"st"}, testStaticMembershipRestart)
	})
	t.Run("MaxPollIntervalLeaves", func(t *testing.T) {
		onBoth848(t, 2, []string{"mp"}, testMaxPollIntervalLeaves)
	})
}

// TestConsumerProtocolFencedMemberRejoins: a member the coordinator fences
// (FENCED_MEMBER_EPOCH, as for a zombie whose epoch the group moved past)
// hands its partitions to OnLost without committing and rejoins at epoch 0
// under the same member id, as Java's consumer does, then gets its
// partitions back; UNKNOWN_MEMBER_ID makes it rejoin under a new id.
func TestConsumerProtocolFencedMemberRejoins(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "z"), kfake.BrokerConfigs(consumerGroupConfigs))
	produce(t, c, spread("z", 2, 0, 100)...)
	m := startMember(t, consumerProtocol{c}, "z", nil)
	waitFor(t, "both partitions", 10*time.Second, func() bool { return m.owned() == 2 })

	var mu sync.Mutex // guards joins
	var joins []*kmsg.ConsumerGroupHeartbeatRequest
	inject := func(code int16) {
		injected := false
		c.ControlKey(int16(kmsg.ConsumerGroupHeartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
			mu.Lock()
			defer mu.Unlock()
			if req.MemberEpoch == 0 {
				joins = append(joins, req)
			}
			if injected || req.MemberEpoch <= 0 {
				return nil, nil, false
			}
			injected = true
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = code
			return resp, nil, true
		})
	}
	_, firstID := m.identity()
	inject(kerr.FencedMemberEpoch.Code)
	waitFor(t, "the fenced member's partitions lost", 10*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.lost) == 1 && len(m.lost[0]) == 2
	})
	waitFor(t, "the partitions back after the rejoin", 10*time.Second, func() bool { return m.owned() == 2 })
	mu.Lock()
	if len(joins) == 0 || joins[0].MemberID != firstID {
		t.Errorf("rejoins after FENCED_MEMBER_EPOCH: %d, first with member id %q, want %q", len(joins), joins[0].MemberID, firstID)
	}
	joins = nil
	mu.Unlock()

	inject(kerr.UnknownMemberID.Code)
	waitFor(t, "a second loss", 10*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.lost) == 2
	})
	waitFor(t, "the partitions back under a new member id", 10*time.Second, func() bool { return m.owned() == 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(joins) == 0 || joins[0].MemberID == firstID || joins[0].MemberID == "" {
		t.Errorf("the rejoin after UNKNOWN_MEMBER_ID kept member id %q", firstID)
	}
}

// identity is the member's id and epoch, as its commits carry them.
func (m *groupMember) identity() (int32, string) {
	md := m.cons.GroupMetadata()
	return md.GenerationID, md.MemberID
}

// TestGroupChurn848 is the churn test (members join, close, are killed,
// stall; the coordinator restarts or moves) on the consumer protocol, with
// the server-side assignors: a short run by default, KAFKIT_CHURN_LONG=1
// (or N) for 100 (N) iterations on every pair of assignor and broker.
func TestGroupChurn848(t *testing.T) {
	targets := map[string]func(t *testing.T) churnTarget{
		"kfake": func(t *testing.T) churnTarget {
			return churn848{fakeChurn{newCluster(t, kfake.BrokerConfigs(consumerGroupConfigs))}}
		},
		"kafkit": func(t *testing.T) churnTarget { return churn848{newBrokerChurn(t, consumerGroupConfigs)} },
	}
	// runChurn's assignor is mapped to the server-side one by
	// onConsumerProtocol: cooperative-sticky → uniform, range → range.
	// (range on kfake once failed here within a few iterations: kfake's
	// range assignor gives a member nothing while its partitions move, and
	// our client took that empty assignment for none;
	// TestConsumerProtocolEmptyAssignmentRevokes has the case.)
	short := map[string][]string{AssignorCooperativeSticky: {"kfake", "kafkit"}, AssignorRange: {"kafkit"}}
	churnPairs(t, churnIterations(), targets, []string{AssignorCooperativeSticky, AssignorRange}, short)
}

// TestConsumerProtocolHeartbeatFailsDuringRevocation: heartbeats fail
// (NOT_COORDINATOR) while OnRevoked runs; once it returns, the member
// reports the revoked partitions gone and the broker hands them to the
// member that joined.
func TestConsumerProtocolHeartbeatFailsDuringRevocation(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "r"), kfake.BrokerConfigs(consumerGroupConfigs))
	inRevoke, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := startMember(t, consumerProtocol{c}, "r", func(cfg *Config) {
		record := cfg.OnRevoked
		cfg.OnRevoked = func(tps []kafkit.TopicPartition) {
			once.Do(func() {
				close(inRevoke)
				<-release
			})
			record(tps)
		}
	})
	waitFor(t, "a owns every partition", 10*time.Second, func() bool { return a.owned() == 4 })
	_, aID := a.identity()
	b := startMember(t, consumerProtocol{c}, "r", nil)
	select {
	case <-inRevoke:
	case <-time.After(10 * time.Second):
		t.Fatal("a was not asked to revoke")
	}
	var mu sync.Mutex // guards failed
	failed := 0
	c.ControlKey(int16(kmsg.ConsumerGroupHeartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
		mu.Lock()
		defer mu.Unlock()
		if req.MemberID != aID || failed == 3 {
			return nil, nil, false
		}
		failed++
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil, true
	})
	waitFor(t, "the failed heartbeats", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed == 3
	})
	close(release)
	waitFor(t, "b to get its share", 10*time.Second, func() bool { return b.owned() == 2 && a.owned() == 2 })
	time.Sleep(300 * time.Millisecond) // a second revocation would run now
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(slices.Concat(a.revd...)); n != 2 {
		t.Errorf("OnRevoked was given %d partitions (%v), want the 2 that moved, once", n, a.revd)
	}
}

// TestConsumerProtocolCommitRetriesStaleEpoch: a synchronous commit
// answered STALE_MEMBER_EPOCH is sent again with the member's latest epoch
// and succeeds, as Java's commitSync; an asynchronous one fails with it.
func TestConsumerProtocolCommitRetriesStaleEpoch(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "s"), kfake.BrokerConfigs(consumerGroupConfigs))
	produce(t, c, spread("s", 1, 0, 10)...)
	m := startMember(t, consumerProtocol{c}, "s", func(cfg *Config) { cfg.DisableAutoCommit = true })
	waitFor(t, "the partition", 10*time.Second, func() bool { return m.owned() == 1 })
	var mu sync.Mutex // guards commits
	commits := 0
	stale := func() {
		c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			mu.Lock()
			defer mu.Unlock()
			commits++
			req := kreq.(*kmsg.OffsetCommitRequest)
			resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewOffsetCommitResponseTopic()
				st.Topic, st.TopicID = rt.Topic, rt.TopicID
				for _, rp := range rt.Partitions {
					sp := kmsg.NewOffsetCommitResponseTopicPartition()
					sp.Partition, sp.ErrorCode = rp.Partition, kerr.StaleMemberEpoch.Code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
	}
	tp := kafkit.TopicPartition{Topic: "s", Partition: 0}
	stale()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.cons.CommitOffsets(ctx, map[kafkit.TopicPartition]int64{tp: 5}); err != nil {
		t.Fatalf("synchronous commit after STALE_MEMBER_EPOCH: %v", err)
	}
	if got, err := m.cons.Committed(ctx, tp); err != nil || got[tp] != 5 {
		t.Fatalf("committed %v, %v; want 5", got, err)
	}
	mu.Lock()
	if commits != 1 {
		t.Errorf("%d commits answered STALE_MEMBER_EPOCH, want 1", commits)
	}
	mu.Unlock()

	stale()
	done := make(chan error, 1)
	m.cons.CommitAsync(map[kafkit.TopicPartition]int64{tp: 7}, func(_ map[kafkit.TopicPartition]int64, err error) { done <- err })
	select {
	case err := <-done:
		if !errors.Is(err, ErrCommitFailed) || !errors.Is(err, kerr.StaleMemberEpoch) {
			t.Errorf("asynchronous commit answered STALE_MEMBER_EPOCH: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the asynchronous commit never completed")
	}
}

// TestConsumerProtocolEmptyAssignmentRevokes: an assignment of no
// partitions (the range assignor gives a member nothing while its
// partitions go to others) makes the member revoke everything it owns and
// report it gone; it was once taken for "no new assignment", and the
// member held its partitions for good.
func TestConsumerProtocolEmptyAssignmentRevokes(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "e"), kfake.BrokerConfigs(consumerGroupConfigs))
	m := startMember(t, consumerProtocol{c}, "e", nil)
	waitFor(t, "both partitions", 10*time.Second, func() bool { return m.owned() == 2 })
	var mu sync.Mutex // guards emptied, reported
	emptied, reported := false, false
	c.ControlKey(int16(kmsg.ConsumerGroupHeartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
		mu.Lock()
		defer mu.Unlock()
		if !emptied {
			emptied = true
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis = &req.MemberID, req.MemberEpoch, 100
			resp.Assignment = &kmsg.ConsumerGroupHeartbeatResponseAssignment{Topics: []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}}
			return resp, nil, true
		}
		if len(req.Topics) == 0 {
			reported = true
		}
		return nil, nil, false
	})
	waitFor(t, "the partitions revoked and reported gone", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reported
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.revd) == 0 || len(m.revd[0]) != 2 {
		t.Errorf("revoked %v, want both partitions at once", m.revd)
	}
}
