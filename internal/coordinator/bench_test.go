package coordinator

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkCommitOffsets measures the coordinator loop's offset-commit rate
// (one request of 6 partitions per op, records encoded, memory store).
func BenchmarkCommitOffsets(b *testing.B) {
	c, err := New(Config{}, &memStore{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := c.Load(ctx, func(func(LogRecord, error) bool) {}); err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.Generation = "bench", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p := range int32(6) {
		rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, LeaderEpoch: -1})
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for p := range rt.Partitions {
			rt.Partitions[p].Offset = int64(i)
		}
		resp, err := c.CommitOffsets(ctx, req)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkConsumerGroupRebalance measures how long a group of 100 members
// on a topic of 1,000 partitions takes to settle under each protocol, when
// all join an empty group at once, when one more joins a settled group, and
// when one leaves it. Settled means every member holds its part of one
// complete assignment: under KIP-848 (consumer/...) every member is Stable
// at the target epoch; under the classic protocol (classic/...) every
// member has its SyncGroup answer of the new generation. Members answer at
// once, so the time is the coordinator's work (and, for classic, the
// leader's client-side assignment) over the rounds of requests the
// protocol needs; rounds/settle reports those rounds. A real client pays
// up to one heartbeat interval for each KIP-848 round, and for the classic
// protocol a heartbeat interval to learn of the rebalance plus the time the
// slowest member takes to reach poll() and rejoin, while the eager
// protocol has every member stop consuming.
func BenchmarkConsumerGroupRebalance(b *testing.B) {
	const members, partitions = 100, 1000
	f := newFakeTopics(map[string]int32{"t": partitions})
	// KIP-848's default server assignor, and the range assignor that the
	// classic runs use too, so the protocols compare with the same ranges.
	for _, assignor := range []string{assignorUniform, assignorRange} {
		b.Run("consumer/"+assignor, func(b *testing.B) { benchRebalance848(b, f, assignor, members) })
	}
	b.Run("classic/range", func(b *testing.B) { benchRebalanceClassic(b, f, members, partitions) })
}

// rebalanceBench times change from a settled group of n members to the
// next settled state, which settle reaches in the rounds it returns.
func rebalanceBench[M any](b *testing.B, n int, join func(group string, n int) []M,
	settle func(group string, ms []M) int, change func(group string, ms []M) []M) {
	rounds := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		group := benchGroup()
		ms := join(group, n)
		settle(group, ms)
		b.StartTimer()
		ms = change(group, ms)
		rounds += settle(group, ms)
	}
	reportSettle(b, rounds)
}

// benchGroups numbers the groups benchmarks form: the testing package runs
// a benchmark's function more than once, and a group left by an earlier
// run must not take part in the next.
var benchGroups atomic.Int64

func benchGroup() string { return fmt.Sprint("g", benchGroups.Add(1)) }

func reportSettle(b *testing.B, rounds int) {
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/settle")
	b.ReportMetric(float64(rounds)/float64(b.N), "rounds/settle")
}

func benchRebalance848(b *testing.B, f *fakeTopics, assignor string, members int) {
	h := start(b, Config{Topics: f, ConsumerAssignors: []string{assignor}}, nil)
	defer h.stop()
	settle := func(group string, ms []*cgMember) int {
		for round := 1; ; round++ {
			for _, m := range ms {
				if r := m.beat(); r.ErrorCode != 0 {
					b.Fatalf("heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
				}
			}
			if describeCG(b, h, group).State == "Stable" {
				return round
			}
		}
	}
	join := func(group string, n int) []*cgMember {
		ms := make([]*cgMember, n)
		for i := range ms {
			ms[i] = h.member(f, group, fmt.Sprint("m", i))
			if r := ms[i].join("t"); r.ErrorCode != 0 {
				b.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
			}
		}
		return ms
	}
	b.Run("join-all", func(b *testing.B) {
		rounds := 0
		for i := 0; i < b.N; i++ {
			group := benchGroup()
			rounds += settle(group, join(group, members))
		}
		reportSettle(b, rounds)
	})
	b.Run("join-one", func(b *testing.B) {
		rebalanceBench(b, members, join, settle, func(group string, ms []*cgMember) []*cgMember {
			m := h.member(f, group, "late")
			m.join("t")
			return append(ms, m)
		})
	})
	b.Run("leave-one", func(b *testing.B) {
		rebalanceBench(b, members, join, settle, func(group string, ms []*cgMember) []*cgMember {
			leave := ms[0].request()
			leave.MemberEpoch = leaveEpoch
			ms[0].send(leave)
			return ms[1:]
		})
	})
}

// classicMember is a member of a classic group; join is its JoinGroup in
// flight, if any.
type classicMember struct {
	id   string
	gen  int32
	join <-chan joinResult
}

// benchRebalanceClassic runs the classic protocol's rebalances as Java's
// consumer does at its default (the eager range assignor, computed by the
// leader from the members' subscriptions). The initial rebalance delay is
// off: it would add group.initial.rebalance.delay.ms (Kafka's default 3 s)
// to join-all, which KIP-848 does not have.
func benchRebalanceClassic(b *testing.B, f *fakeTopics, members int, partitions int32) {
	h := start(b, Config{Topics: f, InitialRebalanceDelay: -1}, nil)
	defer h.stop()
	// rebalance has every member without a join in flight learn of the
	// rebalance by a heartbeat and rejoin, then all sync; it returns the
	// rounds: heartbeat (when needed), join, sync.
	rebalance := func(group string, ms []*classicMember) int {
		rounds := 2
		for _, m := range ms {
			if m.join != nil {
				continue
			}
			if m.gen != 0 {
				if code := h.heartbeat(group, m.id, m.gen, nil); code != kerr.RebalanceInProgress.Code {
					b.Fatalf("heartbeat: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
				}
				rounds = 3
			}
			m.join = h.joinAsync(joinReq(group, m.id))
		}
		var lead *kmsg.JoinGroupResponse
		for _, m := range ms {
			r := <-m.join
			m.join = nil
			if r.err != nil || r.resp.ErrorCode != 0 {
				b.Fatalf("join: %v %v", r.err, kerr.ErrorForCode(r.resp.ErrorCode))
			}
			m.gen = r.resp.Generation
			if r.resp.LeaderID == m.id {
				lead = r.resp
			}
		}
		assign := classicRangeAssign(b, f, lead.Members)
		syncs := make([]<-chan *kmsg.SyncGroupResponse, len(ms))
		for i, m := range ms {
			var a map[string][]byte
			if m.id == lead.LeaderID {
				a = assign
			}
			syncs[i] = h.sync(group, m.id, m.gen, a)
		}
		got := int32(0)
		for _, ch := range syncs {
			resp := <-ch
			var a kmsg.ConsumerMemberAssignment
			if resp == nil || resp.ErrorCode != 0 || a.ReadFrom(resp.MemberAssignment) != nil {
				b.Fatalf("sync: %+v", resp)
			}
			for _, t := range a.Topics {
				got += int32(len(t.Partitions))
			}
		}
		if got != partitions {
			b.Fatalf("members hold %d partitions, want %d", got, partitions)
		}
		return rounds
	}
	// join gives n members their ids (KIP-394) and sends their JoinGroups.
	join := func(group string, n int) []*classicMember {
		ms := make([]*classicMember, n)
		for i := range ms {
			ms[i] = &classicMember{id: h.getID(group)}
		}
		for _, m := range ms {
			m.join = h.joinAsync(joinReq(group, m.id))
		}
		return ms
	}
	b.Run("join-all", func(b *testing.B) {
		rounds := 0
		for i := 0; i < b.N; i++ {
			group := benchGroup()
			rounds += 1 + rebalance(group, join(group, members)) // +1: the first join that asks for an id
		}
		reportSettle(b, rounds)
	})
	b.Run("join-one", func(b *testing.B) {
		rebalanceBench(b, members, join, rebalance, func(group string, ms []*classicMember) []*classicMember {
			ms = append(ms, join(group, 1)...)
			// The others learn of the rebalance once the coordinator has the
			// new member's JoinGroup, which is on its way on a goroutine.
			for i := 0; h.describe(group).State != "PreparingRebalance"; i++ {
				if i == 10000 {
					b.Fatal("the new member's join started no rebalance")
				}
				runtime.Gosched()
			}
			return ms
		})
	})
	b.Run("leave-one", func(b *testing.B) {
		rebalanceBench(b, members, join, rebalance, func(group string, ms []*classicMember) []*classicMember {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Version = 5
			req.Group = group
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ms[0].id}}
			if resp, err := h.c.LeaveGroup(context.Background(), req); err != nil || resp.ErrorCode != 0 {
				b.Fatalf("leave: %v %+v", err, resp)
			}
			return ms[1:]
		})
	})
}

// classicRangeAssign is the leader's work: it reads the members'
// subscriptions and splits each topic with the range assignor (the same
// ranges as the KIP-848 range assignor), encoded as SyncGroup carries them.
func classicRangeAssign(b *testing.B, f *fakeTopics, members []kmsg.JoinGroupResponseMember) map[string][]byte {
	spec := assignSpec{topics: make(map[string][]string), meta: make(map[string]topicMeta)}
	for _, m := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			b.Fatal(err)
		}
		spec.members = append(spec.members, m.MemberID)
		spec.topics[m.MemberID] = meta.Topics
		for _, t := range meta.Topics {
			id, n, _ := f.Topic(t)
			spec.meta[t] = topicMeta{id: id, partitions: n}
		}
	}
	slices.Sort(spec.members)
	out := make(map[string][]byte, len(members))
	for id, tps := range rangeAssign(spec) {
		byTopic := make(map[string][]int32)
		for tp := range tps {
			byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		}
		var a kmsg.ConsumerMemberAssignment
		for _, t := range slices.Sorted(maps.Keys(byTopic)) {
			a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: slices.Sorted(slices.Values(byTopic[t]))})
		}
		out[id] = a.AppendTo(nil)
	}
	return out
}
