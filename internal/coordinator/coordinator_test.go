package coordinator

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestPartitionFor(t *testing.T) {
	tests := []struct {
		group string
		hash  int32 // java.lang.String.hashCode
		part  int32 // of 50 partitions
	}{
		{"", 0, 0},
		{"hello", 99162322, 22},
		{"Aa", 2112, 12},
		{"BB", 2112, 12},
		{"polygenelubricants", -1 << 31, 0}, // Utils.abs(MIN_VALUE) is 0
		{"\U0001F600", 1772899, 49},         // a surrogate pair hashes as two UTF-16 units
	}
	for _, tt := range tests {
		if h := javaStringHash(tt.group); h != tt.hash {
			t.Errorf("hash(%q) = %d, want %d", tt.group, h, tt.hash)
		}
		if p := PartitionFor(tt.group, 50); p != tt.part {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", tt.group, p, tt.part)
		}
	}
	// A negative hash must land in range.
	if p := PartitionFor("consumer-group-7", 7); p < 0 || p >= 7 {
		t.Errorf("PartitionFor out of range: %d", p)
	}
}

func TestJoinSyncHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		t0 := time.Now()
		ids, gen := h.stableGroup("g", 3)
		// The initial delay (3s) held the first rebalance; members arriving
		// during it extended it once more (Kafka's InitialDelayedJoin).
		if waited := time.Since(t0); waited != 6*time.Second {
			t.Errorf("first rebalance completed after %v, want 2 × group.initial.rebalance.delay.ms", waited)
		}
		if gen != 1 {
			t.Errorf("generation %d, want 1", gen)
		}
		for _, id := range ids {
			if code := h.heartbeat("g", id, gen, nil); code != 0 {
				t.Errorf("heartbeat of %s: %v", id, kerr.ErrorForCode(code))
			}
		}
		d := h.describe("g")
		if d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 3 {
			t.Fatalf("describe: %+v", d)
		}
		for i, m := range d.Members {
			if m.MemberID != ids[i] || string(m.MemberAssignment) != ids[i] || m.ClientHost != "/127.0.0.1" || m.ClientID != "client" || len(m.ProtocolMetadata) == 0 {
				t.Errorf("member %d: %+v", i, m)
			}
		}
	})
}

func TestLeaderGetsMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		a, b := h.getID("g"), h.getID("g")
		ja := h.joinAsync(joinReq("g", a))
		synctest.Wait()
		jb := h.joinAsync(joinReq("g", b))
		ra, rb := <-ja, <-jb
		if ra.resp.LeaderID != a || rb.resp.LeaderID != a {
			t.Fatalf("leader %q/%q, want first joiner %q", ra.resp.LeaderID, rb.resp.LeaderID, a)
		}
		if len(ra.resp.Members) != 2 || len(rb.resp.Members) != 0 {
			t.Fatalf("leader got %d members, follower %d; want 2 and 0", len(ra.resp.Members), len(rb.resp.Members))
		}
		// A follower's sync waits for the leader's.
		sb := h.sync("g", b, 1, nil)
		synctest.Wait()
		select {
		case <-sb:
			t.Fatal("follower's SyncGroup answered before the leader's")
		default:
		}
		sa := h.sync("g", a, 1, map[string][]byte{a: []byte("A"), b: []byte("B")})
		if got := string((<-sb).MemberAssignment); got != "B" {
			t.Errorf("follower assignment %q", got)
		}
		if got := string((<-sa).MemberAssignment); got != "A" {
			t.Errorf("leader assignment %q", got)
		}
	})
}

func TestInitialDelayExtended(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{InitialRebalanceDelay: 3 * time.Second}, nil)
		defer h.stop()
		t0 := time.Now()
		ja := h.joinAsync(joinReq("g", h.getID("g")))
		time.Sleep(2 * time.Second)
		jb := h.joinAsync(joinReq("g", h.getID("g")))
		<-ja
		<-jb
		// 3s, extended by one more delay because b joined during the first.
		if d := time.Since(t0); d != 6*time.Second {
			t.Errorf("rebalance completed after %v, want 6s", d)
		}
	})
}

func TestInitialDelayCappedByRebalanceTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{InitialRebalanceDelay: 3 * time.Second}, nil)
		defer h.stop()
		t0 := time.Now()
		req := joinReq("g", h.getID("g"))
		req.RebalanceTimeoutMillis = 4000
		ja := h.joinAsync(req)
		// Keep adding members: the delay can't grow past the rebalance timeout.
		var others []<-chan joinResult
		for range 4 {
			time.Sleep(time.Second)
			r := joinReq("g", h.getID("g"))
			r.RebalanceTimeoutMillis = 4000
			others = append(others, h.joinAsync(r))
		}
		<-ja
		if d := time.Since(t0); d != 4*time.Second {
			t.Errorf("rebalance completed after %v, want the 4s rebalance timeout", d)
		}
		for _, ch := range others {
			<-ch
		}
	})
}

func TestJoinErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		setup func(h *harness) // forms state before the checked join
		req   func(h *harness) *kmsg.JoinGroupRequest
		want  *kerr.Error
	}{
		{
			name: "session timeout below min",
			req: func(*harness) *kmsg.JoinGroupRequest {
				r := joinReq("g", "")
				r.SessionTimeoutMillis = 5999
				return r
			},
			want: kerr.InvalidSessionTimeout,
		},
		{
			name: "session timeout above max",
			cfg:  Config{MaxSessionTimeout: 20 * time.Second},
			req: func(*harness) *kmsg.JoinGroupRequest {
				r := joinReq("g", "")
				r.SessionTimeoutMillis = 20001
				return r
			},
			want: kerr.InvalidSessionTimeout,
		},
		{
			name: "empty group id",
			req:  func(*harness) *kmsg.JoinGroupRequest { return joinReq("", "") },
			want: kerr.InvalidGroupID,
		},
		{
			name: "known member id for a group that does not exist",
			req:  func(*harness) *kmsg.JoinGroupRequest { return joinReq("g", "ghost") },
			want: kerr.UnknownMemberID,
		},
		{
			name: "no protocols",
			req: func(*harness) *kmsg.JoinGroupRequest {
				r := joinReq("g", "")
				r.Protocols = nil
				r.Version = 3
				return r
			},
			want: kerr.InconsistentGroupProtocol,
		},
		{
			name:  "no common protocol",
			setup: func(h *harness) { h.stableGroup("g", 1) },
			req:   func(h *harness) *kmsg.JoinGroupRequest { return joinReq("g", h.getID("g"), "roundrobin") },
			want:  kerr.InconsistentGroupProtocol,
		},
		{
			name:  "different protocol type",
			setup: func(h *harness) { h.stableGroup("g", 1) },
			req: func(h *harness) *kmsg.JoinGroupRequest {
				r := joinReq("g", h.getID("g"))
				r.ProtocolType = "connect"
				return r
			},
			want: kerr.InconsistentGroupProtocol,
		},
		{
			name:  "unknown member of an existing group",
			setup: func(h *harness) { h.stableGroup("g", 1) },
			req:   func(*harness) *kmsg.JoinGroupRequest { return joinReq("g", "ghost") },
			want:  kerr.UnknownMemberID,
		},
		{
			name:  "group.max.size",
			cfg:   Config{MaxGroupSize: 2},
			setup: func(h *harness) { h.stableGroup("g", 2) },
			req:   func(h *harness) *kmsg.JoinGroupRequest { return joinReq("g", "") },
			want:  kerr.GroupMaxSizeReached,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, tt.cfg, nil)
				defer h.stop()
				if tt.setup != nil {
					tt.setup(h)
				}
				resp := h.join(tt.req(h))
				if resp.ErrorCode != tt.want.Code {
					t.Fatalf("error %v, want %v", kerr.ErrorForCode(resp.ErrorCode), tt.want)
				}
			})
		})
	}
}

func TestLoadInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{}, &memStore{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		resp, err := c.JoinGroup(ctx, "c", "/h", joinReq("g", ""))
		if err != nil || resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			t.Fatalf("before Load: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
		}
		fetch, _ := c.FetchOffsets(ctx, kmsg.OffsetFetchRequestGroup{Group: "g"}, false)
		if fetch.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			t.Fatalf("fetch before Load: %v", kerr.ErrorForCode(fetch.ErrorCode))
		}
		if err := c.Load(ctx, func(func(LogRecord, error) bool) {}); err != nil {
			t.Fatal(err)
		}
		resp, _ = c.JoinGroup(ctx, "c", "/h", joinReq("g", ""))
		if resp.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("after Load: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	})
}

func TestSelectProtocol(t *testing.T) {
	tests := []struct {
		name    string
		members [][]string // each member's protocols in preference order; the first is the leader
		want    string
	}{
		{"single", [][]string{{"range"}}, "range"},
		{"leader order on a tie", [][]string{{"sticky", "range"}, {"range", "sticky"}}, "sticky"},
		{"majority vote", [][]string{{"sticky", "range"}, {"range", "sticky"}, {"range", "sticky"}}, "range"},
		{"only common one", [][]string{{"a", "b"}, {"c", "b"}}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroup("g", time.Now())
			for i, ps := range tt.members {
				m := &member{id: string(rune('a' + i))}
				for _, p := range ps {
					m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: p})
				}
				g.addMember(m)
			}
			if got := g.selectProtocol(); got != tt.want {
				t.Errorf("selectProtocol = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSessionTimeoutExpiresMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 2)
		keep, lost := ids[0], ids[1]
		// keep heartbeats every 3s; lost never does.
		for range 3 {
			time.Sleep(3 * time.Second)
			if code := h.heartbeat("g", keep, gen, nil); code != 0 {
				t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
			}
		}
		time.Sleep(2 * time.Second) // 11s since lost's last sync > 10s session
		if code := h.heartbeat("g", keep, gen, nil); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat after expiry: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
		}
		r := h.join(joinReq("g", keep))
		if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
			t.Fatalf("rejoin: error %d generation %d members %d", r.ErrorCode, r.Generation, len(r.Members))
		}
		if code := h.heartbeat("g", lost, gen, nil); code != kerr.UnknownMemberID.Code {
			t.Errorf("expired member's heartbeat: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
		}
	})
}

func TestRebalanceTimeoutRemovesLaggard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 2)
		t0 := time.Now()
		// ids[1] rejoins (new subscription); ids[0] keeps heartbeating but
		// never rejoins within the rebalance timeout.
		req := joinReq("g", ids[1])
		req.Protocols[0].Metadata = consumerMeta("t", "u")
		ch := h.joinAsync(req)
		for time.Since(t0) < testRebalance+time.Second {
			time.Sleep(2 * time.Second)
			h.heartbeat("g", ids[0], gen, nil)
		}
		r := recv(t, ch)
		if r.resp.ErrorCode != 0 || len(r.resp.Members) != 1 || r.resp.LeaderID != ids[1] {
			t.Fatalf("join: error %d members %d leader %q", r.resp.ErrorCode, len(r.resp.Members), r.resp.LeaderID)
		}
		if code := h.heartbeat("g", ids[0], gen, nil); code != kerr.UnknownMemberID.Code {
			t.Errorf("laggard heartbeat: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
		}
	})
}

func TestHeartbeatErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 1)
		tests := []struct {
			group, member string
			gen           int32
			want          *kerr.Error
		}{
			{"nope", ids[0], gen, kerr.UnknownMemberID},
			{"g", "ghost", gen, kerr.UnknownMemberID},
			{"g", ids[0], gen + 1, kerr.IllegalGeneration},
			{"", ids[0], gen, kerr.InvalidGroupID},
		}
		for _, tt := range tests {
			if code := h.heartbeat(tt.group, tt.member, tt.gen, nil); code != tt.want.Code {
				t.Errorf("heartbeat(%q, %q, %d) = %v, want %v", tt.group, tt.member, tt.gen, kerr.ErrorForCode(code), tt.want)
			}
		}
	})
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		inst := func(s string) *string { return &s }
		// Two static members form the group.
		ra, rb := joinReq("g", ""), joinReq("g", "")
		ra.InstanceID, rb.InstanceID = inst("a"), inst("b")
		ja := h.joinAsync(ra)
		synctest.Wait()
		jb := h.joinAsync(rb)
		a, b := (<-ja).resp, (<-jb).resp
		if a.ErrorCode != 0 || b.ErrorCode != 0 {
			t.Fatalf("static first join: %d %d (static members skip MEMBER_ID_REQUIRED)", a.ErrorCode, b.ErrorCode)
		}
		leader, follower, followerInst := a, b, "b"
		if b.MemberID == a.LeaderID {
			leader, follower, followerInst = b, a, "a"
		}
		sl := h.sync("g", leader.MemberID, 1, map[string][]byte{leader.MemberID: []byte("L"), follower.MemberID: []byte("F")})
		sf := h.sync("g", follower.MemberID, 1, nil)
		<-sl
		<-sf
		// The follower restarts with the same instance id and protocols.
		rf := joinReq("g", "")
		rf.InstanceID = &followerInst
		re := h.join(rf)
		if re.ErrorCode != 0 || re.Generation != 1 || re.MemberID == follower.MemberID || re.LeaderID != leader.MemberID {
			t.Fatalf("static rejoin: error %d generation %d member %q leader %q", re.ErrorCode, re.Generation, re.MemberID, re.LeaderID)
		}
		if s := <-h.sync("g", re.MemberID, 1, nil); s.ErrorCode != 0 || string(s.MemberAssignment) != "F" {
			t.Fatalf("sync after static rejoin: %d %q, want the old assignment", s.ErrorCode, s.MemberAssignment)
		}
		if code := h.heartbeat("g", leader.MemberID, 1, nil); code != 0 {
			t.Errorf("leader heartbeat: %v (no rebalance expected)", kerr.ErrorForCode(code))
		}
		if code := h.heartbeat("g", follower.MemberID, 1, rf.InstanceID); code != kerr.FencedInstanceID.Code {
			t.Errorf("old member id heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
		}
		// A static member leaving by instance id triggers the rebalance.
		lv := kmsg.NewPtrLeaveGroupRequest()
		lv.Version = 5
		lv.Group = "g"
		lv.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: rf.InstanceID}, {MemberID: "ghost"}}
		resp, err := h.c.LeaveGroup(context.Background(), lv)
		if err != nil || resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("leave: %v %+v", err, resp)
		}
		if code := h.heartbeat("g", leader.MemberID, 1, nil); code != kerr.RebalanceInProgress.Code {
			t.Errorf("heartbeat after leave: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
		}
	})
}

// TestPendingMemberExpires: a KIP-394 member id that is never used holds
// up the rebalance only until its session timeout, then is forgotten.
func TestPendingMemberExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{InitialRebalanceDelay: -1}, nil)
		defer h.stop()
		ids, gen := h.stableGroup("g", 1)
		ghost := h.getID("g") // never joins with it
		t0 := time.Now()
		// The existing member rejoins with a new subscription; the join
		// phase waits for the pending id.
		req := joinReq("g", ids[0])
		req.Protocols[0].Metadata = consumerMeta("t", "u")
		r := h.join(req)
		if r.ErrorCode != 0 || r.Generation != gen+1 {
			t.Fatalf("rejoin: %+v", r)
		}
		if d := time.Since(t0); d != testSession {
			t.Errorf("join completed after %v, want the pending id's session timeout %v", d, testSession)
		}
		if resp := h.join(joinReq("g", ghost)); resp.ErrorCode != kerr.UnknownMemberID.Code {
			t.Errorf("expired pending id: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
		}
	})
}

// TestStoreFailureOnSync: when the group's assignment can't be written,
// the generation's SyncGroup calls fail and the group rebalances.
func TestStoreFailureOnSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		r := h.join(joinReq("g", h.getID("g")))
		h.store.setFail(errStore)
		s := <-h.sync("g", r.MemberID, r.Generation, map[string][]byte{r.MemberID: []byte("a")})
		if s.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("sync with failing store: %v", kerr.ErrorForCode(s.ErrorCode))
		}
		if d := h.describe("g"); d.State != "PreparingRebalance" {
			t.Errorf("state after failed sync: %s", d.State)
		}
	})
}

// rejoinResubscribed makes a stable group of two, whose follower (ids[1])
// then resubscribes so that both rejoin, and returns the members and the
// new generation, awaiting SyncGroup.
func (h *harness) rejoinResubscribed(t *testing.T, group string) ([]string, int32) {
	t.Helper()
	ids, gen := h.stableGroup(group, 2)
	req := joinReq(group, ids[1])
	req.Protocols[0].Metadata = consumerMeta("t", "u")
	jf := h.joinAsync(req)
	synctest.Wait()
	jl := h.joinAsync(joinReq(group, ids[0]))
	synctest.Wait()
	l, f := recv(t, jl), recv(t, jf)
	if l.resp.ErrorCode != 0 || f.resp.ErrorCode != 0 || l.resp.LeaderID != ids[0] || l.resp.Generation != gen+1 {
		t.Fatalf("rejoin: leader %+v follower %+v", l.resp, f.resp)
	}
	return ids, gen + 1
}

// TestSyncTimeoutRemovesLateLeader is Kafka's expirePendingSync: a leader
// that got its JoinGroup answer but sends no SyncGroup within the rebalance
// timeout is removed, however long it keeps heartbeating; the follower
// waiting for the assignment gets REBALANCE_IN_PROGRESS and the leader's
// late SyncGroup UNKNOWN_MEMBER_ID. This is how a sarama cooperative leader
// whose client stalls between JoinGroup and SyncGroup longer than
// Consumer.Group.Rebalance.Timeout loses its partitions.
func TestSyncTimeoutRemovesLateLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		ids, gen := h.rejoinResubscribed(t, "g")
		t0 := time.Now()
		sf := h.sync("g", ids[1], gen, nil)
		deadline := t0.Add(testRebalance)
		for time.Until(deadline) > time.Second {
			time.Sleep(time.Second)
			if code := h.heartbeat("g", ids[0], gen, nil); code != 0 {
				t.Fatalf("leader heartbeat after %v awaiting its sync: %v, want none", time.Since(t0), kerr.ErrorForCode(code))
			}
		}
		time.Sleep(time.Until(deadline) - time.Millisecond)
		synctest.Wait()
		select {
		case s := <-sf:
			t.Fatalf("follower's sync answered before the rebalance timeout: %v", kerr.ErrorForCode(s.ErrorCode))
		default:
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if s := recv(t, sf); s.ErrorCode != kerr.RebalanceInProgress.Code {
			t.Fatalf("follower's sync after the rebalance timeout: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(s.ErrorCode))
		}
		if s := <-h.sync("g", ids[0], gen, map[string][]byte{ids[0]: []byte("a")}); s.ErrorCode != kerr.UnknownMemberID.Code {
			t.Errorf("late leader's sync: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(s.ErrorCode))
		}
		if code := h.heartbeat("g", ids[1], gen, nil); code != kerr.RebalanceInProgress.Code {
			t.Errorf("follower heartbeat: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
		}
		if d := h.describe("g"); d.State != "PreparingRebalance" || len(d.Members) != 1 || d.Members[0].MemberID != ids[1] {
			t.Errorf("group after the sync timeout: %s with %d members", d.State, len(d.Members))
		}
	})
}

// TestSyncAnswerRestartsSession is Kafka's propagateAssignment: a member
// answered after waiting in SyncGroup gets a whole session timeout for its
// first heartbeat from the answer, however long the leader took; here the
// follower's session timer would have fired just after the answer.
func TestSyncAnswerRestartsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{}, nil)
		defer h.stop()
		ids, gen := h.rejoinResubscribed(t, "g")
		sf := h.sync("g", ids[1], gen, nil)
		time.Sleep(testSession - time.Second)
		if s := <-h.sync("g", ids[0], gen, map[string][]byte{ids[0]: []byte("a"), ids[1]: []byte("b")}); s.ErrorCode != 0 {
			t.Fatalf("leader's sync: %v", kerr.ErrorForCode(s.ErrorCode))
		}
		if s := <-sf; s.ErrorCode != 0 || string(s.MemberAssignment) != "b" {
			t.Fatalf("follower's sync: %v %q", kerr.ErrorForCode(s.ErrorCode), s.MemberAssignment)
		}
		time.Sleep(testSession - time.Second)
		if code := h.heartbeat("g", ids[1], gen, nil); code != 0 {
			t.Errorf("follower's first heartbeat %v after its sync answer: %v, want none", testSession-time.Second, kerr.ErrorForCode(code))
		}
	})
}
