package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is a TopicSource tests change as a cluster would.
type fakeTopics struct {
	mu     sync.Mutex // guards topics
	topics map[string]topicMeta
}

func newFakeTopics(counts map[string]int32) *fakeTopics {
	f := &fakeTopics{topics: make(map[string]topicMeta)}
	for name, n := range counts {
		f.set(name, n)
	}
	return f
}

// set creates a topic or changes its partition count.
func (f *fakeTopics) set(name string, partitions int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.topics[name]
	if !ok {
		copy(m.id[:], name+"-id-padding-xxxxx")
	}
	m.partitions = partitions
	f.topics[name] = m
}

func (f *fakeTopics) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.topics, name)
}

func (f *fakeTopics) Topic(name string) ([16]byte, int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.topics[name]
	return m.id, m.partitions, ok
}

func (f *fakeTopics) TopicName(id [16]byte) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, m := range f.topics {
		if m.id == id {
			return name, true
		}
	}
	return "", false
}

func (f *fakeTopics) TopicNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.topics))
}

// cgMember drives one KIP-848 member by hand: it sends what a client would
// (its epoch and the partitions it owns) and applies the answers.
type cgMember struct {
	h     *harness
	f     *fakeTopics
	group string
	id    string
	inst  *string
	epoch int32
	owned map[string][]int32 // what the member owns, by topic
}

func (h *harness) member(f *fakeTopics, group, id string) *cgMember {
	return &cgMember{h: h, f: f, group: group, id: id, owned: map[string][]int32{}}
}

func (m *cgMember) request() *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = m.group, m.id, m.epoch, m.inst
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, t := range slices.Sorted(maps.Keys(m.owned)) {
		id, _, _ := m.f.Topic(t)
		req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: m.owned[t]})
	}
	return req
}

// join sends the first heartbeat subscribing to topics.
func (m *cgMember) join(topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	req := m.request()
	req.MemberEpoch, req.RebalanceTimeoutMillis = 0, int32(testRebalance.Milliseconds())
	req.SubscribedTopicNames = topics
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	m.owned = map[string][]int32{}
	return m.send(req)
}

// beat sends a heartbeat with the member's epoch and owned partitions.
func (m *cgMember) beat() *kmsg.ConsumerGroupHeartbeatResponse { return m.send(m.request()) }

// send sends req and, on success, adopts the epoch and assignment.
func (m *cgMember) send(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	m.h.t.Helper()
	resp, err := m.h.c.ConsumerGroupHeartbeat(context.Background(), "client", "/127.0.0.1", nil, req)
	if err != nil {
		m.h.t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		return resp
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.owned = map[string][]int32{}
		for _, t := range resp.Assignment.Topics {
			name, ok := m.f.TopicName(t.TopicID)
			if !ok {
				m.h.t.Fatalf("assigned unknown topic id %x", t.TopicID)
			}
			m.owned[name] = slices.Sorted(slices.Values(t.Partitions))
		}
	}
	return resp
}

func (m *cgMember) count() int {
	n := 0
	for _, ps := range m.owned {
		n += len(ps)
	}
	return n
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Errorf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// noDoubleOwners fails when two members own the same partition.
func noDoubleOwners(t *testing.T, ms ...*cgMember) {
	t.Helper()
	owner := map[string]string{}
	for _, m := range ms {
		for topic, ps := range m.owned {
			for _, p := range ps {
				k := fmt.Sprint(topic, p)
				if o, ok := owner[k]; ok {
					t.Fatalf("%s-%d owned by %s and %s", topic, p, o, m.id)
				}
				owner[k] = m.id
			}
		}
	}
}

func describeCG(t testing.TB, h *harness, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := h.c.ConsumerGroupDescribe(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Groups[0]
}

// TestConsumerGroupRevokeBeforeAssign walks two members through a
// rebalance: the joiner's partitions are unreleased until the first member
// reports them revoked, and no partition ever has two owners.
func TestConsumerGroupRevokeBeforeAssign(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 4})
	h := start(t, Config{Topics: f}, nil)
	defer h.stop()
	a, b := h.member(f, "g", "a"), h.member(f, "g", "b")
	if r := a.join("t"); r.ErrorCode != 0 || r.MemberEpoch != 1 || a.count() != 4 {
		t.Fatalf("first join: %v epoch %d owns %v", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch, a.owned)
	}
	if r := b.join("t"); r.ErrorCode != 0 || r.MemberEpoch != 2 || b.count() != 0 {
		t.Fatalf("second join: %v epoch %d owns %v; its partitions are still a's", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch, b.owned)
	}
	if s := describeCG(t, h, "g"); s.State != "Reconciling" || s.Epoch != 2 || s.AssignmentEpoch != 2 {
		t.Errorf("during the rebalance: %s epoch %d assignment epoch %d", s.State, s.Epoch, s.AssignmentEpoch)
	}
	if r := a.beat(); r.MemberEpoch != 1 || a.count() != 2 {
		t.Fatalf("a must revoke two partitions at its epoch: epoch %d owns %v", r.MemberEpoch, a.owned)
	}
	noDoubleOwners(t, a, b)
	if r := b.beat(); r.MemberEpoch != 2 || b.count() != 0 {
		t.Fatalf("b got partitions a has not revoked yet: %v", b.owned)
	}
	if r := a.beat(); r.MemberEpoch != 2 || a.count() != 2 {
		t.Fatalf("a after revoking: epoch %d owns %v", r.MemberEpoch, a.owned)
	}
	if r := b.beat(); r.MemberEpoch != 2 || b.count() != 2 {
		t.Fatalf("b after a revoked: epoch %d owns %v", r.MemberEpoch, b.owned)
	}
	noDoubleOwners(t, a, b)
	if s := describeCG(t, h, "g"); s.State != "Stable" || len(s.Members) != 2 {
		t.Errorf("after the rebalance: %+v", s)
	}
	// b leaves: a gets everything at the next epoch without revoking.
	leave := b.request()
	leave.MemberEpoch = leaveEpoch
	if r := b.send(leave); r.ErrorCode != 0 || r.MemberEpoch != leaveEpoch {
		t.Fatalf("leave: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	if r := a.beat(); r.MemberEpoch != 3 || a.count() != 4 {
		t.Fatalf("a after b left: epoch %d owns %v", r.MemberEpoch, a.owned)
	}
}

// TestConsumerGroupFencing checks the epochs a member may heartbeat with.
func TestConsumerGroupFencing(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 2})
	h := start(t, Config{Topics: f}, nil)
	defer h.stop()
	a, b := h.member(f, "g", "a"), h.member(f, "g", "b")
	a.join("t")
	b.join("t") // group epoch 2; a is at 1, revoking
	a.beat()
	a.beat() // a at epoch 2
	if a.epoch != 2 {
		t.Fatalf("a at epoch %d", a.epoch)
	}

	zombie := *a
	zombie.epoch = 3
	wantCode(t, "a newer epoch than the coordinator's", zombie.beat().ErrorCode, kerr.FencedMemberEpoch)
	zombie.epoch = 0
	zombie.owned = nil
	stale := zombie.request()
	stale.MemberEpoch = -3
	wantCode(t, "epoch -3", zombie.send(stale).ErrorCode, kerr.InvalidRequest)
	// One epoch behind with a subset of the assignment: the answer that
	// moved it on was lost; accepted.
	lost := *a
	lost.epoch = 1
	if r := lost.beat(); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Errorf("previous epoch with owned partitions of the assignment: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	lost.epoch = 1
	lost.owned = map[string][]int32{"t": {0, 1}}
	wantCode(t, "previous epoch owning partitions no longer its own", lost.beat().ErrorCode, kerr.FencedMemberEpoch)

	ghost := h.member(f, "g", "ghost")
	ghost.epoch = 5
	wantCode(t, "an unknown member", ghost.beat().ErrorCode, kerr.UnknownMemberID)
	nogroup := h.member(f, "nope", "x")
	nogroup.epoch = 1
	wantCode(t, "a heartbeat to an unknown group", nogroup.beat().ErrorCode, kerr.GroupIDNotFound)

	// A fenced member rejoins with its id at epoch 0 and starts over.
	if r := a.join("t"); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Errorf("rejoin in place: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
}

// TestConsumerGroupRequestValidation checks Kafka's INVALID_REQUEST
// answers and the other request errors.
func TestConsumerGroupRequestValidation(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 1})
	h := start(t, Config{Topics: f}, nil)
	defer h.stop()
	valid := func() *kmsg.ConsumerGroupHeartbeatRequest {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID = 1, "g", "m"
		req.RebalanceTimeoutMillis = 1000
		req.SubscribedTopicNames = []string{"t"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return req
	}
	for _, tc := range []struct {
		name   string
		change func(*kmsg.ConsumerGroupHeartbeatRequest)
		want   *kerr.Error
	}{
		{"empty group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest},
		{"empty instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = kmsg.StringPtr("") }, kerr.InvalidRequest},
		{"empty rack", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = kmsg.StringPtr("") }, kerr.InvalidRequest},
		{"v1 join without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"join without rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest},
		{"join owning partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
		}, kerr.InvalidRequest},
		{"join with null owned partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest},
		{"heartbeat without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "", 3 }, kerr.InvalidRequest},
		{"static leave without instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = staticLeaveEpoch }, kerr.InvalidRequest},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = kmsg.StringPtr("sticky") }, kerr.UnsupportedAssignor},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicRegex = kmsg.StringPtr("(") }, kerr.InvalidRegularExpression},
		{"valid", func(*kmsg.ConsumerGroupHeartbeatRequest) {}, nil},
		{"v0 join names no member: the coordinator does", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Version, r.MemberID = 0, "" }, nil},
	} {
		req := valid()
		tc.change(req)
		resp, err := h.c.ConsumerGroupHeartbeat(context.Background(), "c", "/h", nil, req)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, tc.name, resp.ErrorCode, tc.want)
		if tc.want != nil && (resp.ErrorMessage == nil || resp.MemberID != nil) {
			t.Errorf("%s: error answer with message %v and member id %v", tc.name, resp.ErrorMessage, resp.MemberID)
		}
		if tc.want == nil && (resp.MemberID == nil || *resp.MemberID == "") {
			t.Errorf("%s: no member id in the answer", tc.name)
		}
	}
}

func TestConsumerGroupMaxSize(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 1})
	h := start(t, Config{Topics: f, ConsumerMaxSize: 2}, nil)
	defer h.stop()
	a, b, c := h.member(f, "g", "a"), h.member(f, "g", "b"), h.member(f, "g", "c")
	a.join("t")
	b.join("t")
	wantCode(t, "a third member", c.join("t").ErrorCode, kerr.GroupMaxSizeReached)
	wantCode(t, "a member already in rejoins", a.join("t").ErrorCode, nil)
}

// TestConsumerGroupStaticMember: a static member that leaves with epoch -2
// keeps its partitions for its next incarnation, which gets them back
// without a rebalance; its instance id is not released before that.
func TestConsumerGroupStaticMember(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 4})
	h := start(t, Config{Topics: f}, nil)
	defer h.stop()
	a, s := h.member(f, "g", "a"), h.member(f, "g", "s1")
	s.inst = kmsg.StringPtr("instance")
	a.join("t")
	s.join("t")
	a.beat()
	a.beat()
	s.beat()
	if a.count() != 2 || s.count() != 2 {
		t.Fatalf("a owns %v, s %v", a.owned, s.owned)
	}
	epoch := describeCG(t, h, "g").Epoch

	s2 := h.member(f, "g", "s2")
	s2.inst = s.inst
	wantCode(t, "a second instance while the first is active", s2.join("t").ErrorCode, kerr.UnreleasedInstanceID)

	leave := s.request()
	leave.MemberEpoch = staticLeaveEpoch
	if r := s.send(leave); r.ErrorCode != 0 || r.MemberEpoch != staticLeaveEpoch {
		t.Fatalf("static leave: %v %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	if r := a.beat(); a.count() != 2 {
		t.Fatalf("a took the partitions of a static member that left for now: %v (%v)", a.owned, kerr.ErrorForCode(r.ErrorCode))
	}
	if r := s2.join("t"); r.ErrorCode != 0 || s2.count() != 2 {
		t.Fatalf("the next instance: %v owns %v", kerr.ErrorForCode(r.ErrorCode), s2.owned)
	}
	if got := slices.Concat(s2.owned["t"]); !slices.Equal(got, s.owned["t"]) {
		t.Errorf("the next instance got %v, its predecessor had %v", got, s.owned["t"])
	}
	if d := describeCG(t, h, "g"); d.Epoch != epoch || len(d.Members) != 2 {
		t.Errorf("group epoch %d (was %d), %d members: a static member's return must not rebalance", d.Epoch, epoch, len(d.Members))
	}
	wantCode(t, "the old instance heartbeats", s.beat().ErrorCode, kerr.FencedInstanceID)
}

// TestConsumerGroupTimeouts: a member that stops heartbeating is removed
// after group.consumer.session.timeout.ms, one that does not revoke within
// its rebalance timeout too, and the others take over their partitions.
func TestConsumerGroupTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTopics(map[string]int32{"t": 2})
		h := start(t, Config{Topics: f, ConsumerSessionTimeout: 10 * time.Second, ConsumerHeartbeatInterval: time.Second}, nil)
		defer h.stop()
		a, b := h.member(f, "g", "a"), h.member(f, "g", "b")
		a.join("t")
		b.join("t")
		// a is asked to revoke one partition and never does, though it
		// keeps heartbeating.
		for range 35 {
			time.Sleep(time.Second)
			a.beat()
			b.beat()
			a.owned["t"] = []int32{0, 1}
		}
		wantCode(t, "a member that did not revoke within its rebalance timeout", a.beat().ErrorCode, kerr.UnknownMemberID)
		if b.count() != 2 {
			t.Errorf("b owns %v after a was removed", b.owned)
		}
		c := h.member(f, "g", "c")
		c.join("t")
		c.beat()
		b.beat()
		c.beat()
		for range 11 { // c stops heartbeating
			time.Sleep(time.Second)
			b.beat()
		}
		if r := b.beat(); b.count() != 2 {
			t.Errorf("b owns %v after c's session expired (%v)", b.owned, kerr.ErrorForCode(r.ErrorCode))
		}
		wantCode(t, "a member whose session expired", c.beat().ErrorCode, kerr.UnknownMemberID)
	})
}

// TestConsumerGroupMetadataChanges: new partitions and a deleted topic
// bump the group epoch and reach the members; a regex subscription picks
// up a topic created later.
func TestConsumerGroupMetadataChanges(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 2, "other": 1})
	h := start(t, Config{Topics: f}, nil)
	defer h.stop()
	a := h.member(f, "g", "a")
	a.join("t", "other")
	f.set("t", 3)
	if r := a.beat(); r.MemberEpoch != 2 || len(a.owned["t"]) != 3 {
		t.Errorf("after t grew: epoch %d owns %v", r.MemberEpoch, a.owned)
	}
	f.remove("other")
	delete(a.owned, "other") // the client no longer knows the topic id
	if r := a.beat(); r.MemberEpoch != 3 || a.count() != 3 {
		t.Errorf("after other was deleted: epoch %d owns %v", r.MemberEpoch, a.owned)
	}

	r := a.request()
	r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g2", "re", 0, 1000
	r.SubscribedTopicRegex = kmsg.StringPtr("logs-.*")
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	re := h.member(f, "g2", "re")
	if resp := re.send(r); resp.ErrorCode != 0 || re.count() != 0 {
		t.Fatalf("regex join: %v owns %v", kerr.ErrorForCode(resp.ErrorCode), re.owned)
	}
	f.set("logs-a", 2)
	f.set("xlogs-a", 2) // the regex matches whole names only
	if resp := re.beat(); resp.MemberEpoch != 2 || len(re.owned["logs-a"]) != 2 || re.count() != 2 {
		t.Errorf("after logs-a was created: epoch %d owns %v", resp.MemberEpoch, re.owned)
	}
	if d := describeCG(t, h, "g2"); d.Members[0].SubscribedTopicRegex == nil || *d.Members[0].SubscribedTopicRegex != "logs-.*" {
		t.Errorf("described regex: %+v", d.Members[0])
	}
}

// TestConsumerGroupOffsets: commits and fetches carry member epochs.
func TestConsumerGroupOffsets(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 2})
	h := start(t, Config{Topics: f}, nil)
	defer h.stop()
	a, b := h.member(f, "g", "a"), h.member(f, "g", "b")
	a.join("t")
	commit := func(member string, epoch int32, version int16, partition int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.MemberID, req.Generation = version, "g", member, epoch
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: 5, LeaderEpoch: -1}}}}
		resp, err := h.c.CommitOffsets(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "commit at the member's epoch", commit("a", 1, 9, 0), nil)
	wantCode(t, "commit with a newer epoch", commit("a", 2, 9, 0), kerr.StaleMemberEpoch)
	wantCode(t, "commit of an unknown member", commit("x", 1, 9, 0), kerr.UnknownMemberID)
	wantCode(t, "commit with OffsetCommit v8", commit("a", 1, 8, 0), kerr.UnsupportedVersion)
	wantCode(t, "admin commit to a group with members", commit("", -1, 9, 0), kerr.UnknownMemberID)

	b.join("t")
	a.beat()
	a.beat() // a at epoch 2 with partition 0 (kept since epoch 1)
	b.beat() // b at epoch 2 with partition 1 (assigned at epoch 2)
	wantCode(t, "commit of a kept partition with the previous epoch (KIP-1251)", commit("a", 1, 9, 0), nil)
	wantCode(t, "commit of a partition assigned after the commit's epoch", commit("b", 1, 9, b.owned["t"][0]), kerr.StaleMemberEpoch)

	fetch := func(member string, epoch int32) int16 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "g", &member, epoch
		out, err := h.c.FetchOffsets(context.Background(), rg, false)
		if err != nil {
			t.Fatal(err)
		}
		return out.ErrorCode
	}
	wantCode(t, "fetch at the member's epoch", fetch("a", 2), nil)
	wantCode(t, "fetch with an old epoch", fetch("a", 1), kerr.StaleMemberEpoch)
	wantCode(t, "fetch of an unknown member", fetch("x", 2), kerr.UnknownMemberID)
	wantCode(t, "admin fetch", fetch("", -1), nil)
}

// TestConsumerGroupAndClassic: a group has one protocol at a time; the
// admin APIs tell the two apart.
func TestConsumerGroupAndClassic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTopics(map[string]int32{"t": 1})
		h := start(t, Config{Topics: f, InitialRebalanceDelay: -1}, nil)
		defer h.stop()
		a := h.member(f, "cg", "a")
		a.join("t")
		if r := h.join(joinReq("cg", "")); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Errorf("classic JoinGroup on a consumer group with members: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		h.stableGroup("classic", 1)
		c := h.member(f, "classic", "c")
		wantCode(t, "ConsumerGroupHeartbeat on a classic group with members", c.join("t").ErrorCode, kerr.GroupIDNotFound)

		list := func(types ...string) map[string]kmsg.ListGroupsResponseGroup {
			req := kmsg.NewPtrListGroupsRequest()
			req.TypesFilter = types
			resp, err := h.c.ListGroups(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]kmsg.ListGroupsResponseGroup{}
			for _, g := range resp.Groups {
				out[g.Group] = g
			}
			return out
		}
		if l := list("Consumer"); len(l) != 1 || l["cg"].GroupType != "consumer" || l["cg"].GroupState != "Stable" || l["cg"].ProtocolType != "consumer" {
			t.Errorf("ListGroups of type consumer: %+v", l)
		}
		if l := list(); len(l) != 2 || l["classic"].GroupType != "classic" {
			t.Errorf("ListGroups: %+v", l)
		}
		dresp, err := h.c.DescribeGroups(context.Background(), &kmsg.DescribeGroupsRequest{Version: 6, Groups: []string{"cg"}})
		if err != nil {
			t.Fatal(err)
		}
		d := dresp.Groups[0]
		if d.ErrorCode != kerr.GroupIDNotFound.Code || d.ErrorMessage == nil || *d.ErrorMessage != "Group cg is not a classic group." {
			t.Errorf("DescribeGroups v6 of a consumer group: %+v", d)
		}
		if s := describeCG(t, h, "classic"); s.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Errorf("ConsumerGroupDescribe of a classic group: %v", kerr.ErrorForCode(s.ErrorCode))
		}

		del := func() int16 {
			resp, err := h.c.DeleteGroups(context.Background(), &kmsg.DeleteGroupsRequest{Groups: []string{"cg"}})
			if err != nil {
				t.Fatal(err)
			}
			return resp.Groups[0].ErrorCode
		}
		wantCode(t, "deleting a consumer group with members", del(), kerr.NonEmptyGroup)
		leave := a.request()
		leave.MemberEpoch = leaveEpoch
		a.send(leave)
		if s := describeCG(t, h, "cg"); s.State != "Empty" {
			t.Errorf("after the last member left: %s", s.State)
		}
		// An empty consumer group becomes classic when a classic member
		// joins it.
		if r := h.join(joinReq("cg", "")); r.ErrorCode != kerr.MemberIDRequired.Code {
			t.Errorf("classic JoinGroup on an empty consumer group: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		if l := list("classic"); l["cg"].GroupType != "classic" {
			t.Errorf("after a classic join: %+v", l["cg"])
		}
	})
}

// TestConsumerGroupSurvivesRestart replays a consumer group from its
// records: epochs, members, targets and a revocation in progress come back,
// so members carry on with their epochs; a deleted group stays deleted.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	f := newFakeTopics(map[string]int32{"t": 4})
	store := &memStore{}
	h := start(t, Config{Topics: f}, store)
	a, b := h.member(f, "g", "a"), h.member(f, "g", "b")
	a.inst = kmsg.StringPtr("static-a")
	a.join("t")
	b.join("t")
	a.beat() // a revoking two partitions at epoch 1
	before := describeCG(t, h, "g")
	h.stop()

	h = start(t, Config{Topics: f}, store)
	defer h.stop()
	after := describeCG(t, h, "g")
	if a, b := jsonOf(t, after), jsonOf(t, before); a != b {
		t.Fatalf("after a restart:\n%s\nbefore:\n%s", a, b)
	}
	a.h, b.h = h, h
	if r := b.beat(); r.ErrorCode != 0 || b.count() != 0 {
		t.Fatalf("b after the restart: %v owns %v (a has not revoked yet)", kerr.ErrorForCode(r.ErrorCode), b.owned)
	}
	if r := a.beat(); r.ErrorCode != 0 || r.MemberEpoch != 2 || a.count() != 2 {
		t.Fatalf("a after the restart: %v epoch %d owns %v", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch, a.owned)
	}
	if r := b.beat(); r.ErrorCode != 0 || b.count() != 2 {
		t.Fatalf("b once a revoked: %v owns %v", kerr.ErrorForCode(r.ErrorCode), b.owned)
	}
	noDoubleOwners(t, a, b)
	for _, m := range []*cgMember{a, b} {
		leave := m.request()
		leave.MemberEpoch = leaveEpoch
		m.send(leave)
	}
	resp, err := h.c.DeleteGroups(context.Background(), &kmsg.DeleteGroupsRequest{Groups: []string{"g"}})
	if err != nil || resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete: %v %v", err, resp)
	}
	h.stop()
	h = start(t, Config{Topics: f}, store)
	if d := describeCG(t, h, "g"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("a deleted group after a restart: %+v", d)
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
