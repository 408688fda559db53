package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// syncV sends a leader's SyncGroup assigning itself assignment, naming
// joinV's protocol type and name from v5, where they are mandatory.
func syncV(t *testing.T, b *Broker, v int16, group, member string, gen int32, assignment []byte) int16 {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = v
	req.Group, req.MemberID, req.Generation = group, member, gen
	if v >= 5 {
		req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	}
	req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: assignment}}
	resp := sendVersioned(t, b, req).(*kmsg.SyncGroupResponse)
	if resp.ErrorCode == 0 && string(resp.MemberAssignment) != string(assignment) {
		t.Errorf("sync v%d: assignment %q, want %q", v, resp.MemberAssignment, assignment)
	}
	return resp.ErrorCode
}

func TestSyncGroupChecksProtocol(t *testing.T) {
	b := NewTest(t)
	jr := sendVersioned(t, b, joinV(3, "sync", "")).(*kmsg.JoinGroupResponse)
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = "sync", jr.MemberID, jr.Generation
	// Kafka: from v5 both are mandatory, checked before anything else.
	for _, tc := range []struct {
		typ, name *string
	}{
		{nil, nil},
		{kmsg.StringPtr("consumer"), nil},
		{nil, kmsg.StringPtr("range")},
		{kmsg.StringPtr("consumer"), kmsg.StringPtr("roundrobin")},
	} {
		req.ProtocolType, req.Protocol = tc.typ, tc.name
		if resp := sendVersioned(t, b, req).(*kmsg.SyncGroupResponse); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Errorf("v5 sync with protocol type %v name %v: %v", tc.typ, tc.name, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	if code := syncV(t, b, 5, "sync", "ghost", jr.Generation, nil); code != kerr.UnknownMemberID.Code {
		t.Errorf("sync of an unknown member: %v", kerr.ErrorForCode(code))
	}
	if code := syncV(t, b, 5, "sync", jr.MemberID, jr.Generation, []byte("x")); code != 0 {
		t.Errorf("sync: %v", kerr.ErrorForCode(code))
	}
}

// TestSyncGroupAnswerRestartsSession: a follower whose SyncGroup waits for
// a slow leader has a whole session timeout from the answer for its first
// heartbeat, as Kafka's propagateAssignment gives it, not what was left of
// the session timer it had when it sent SyncGroup (here 0.3 s). A sarama
// cooperative leader can take most of a 6 s session between JoinGroup and
// SyncGroup.
func TestSyncGroupAnswerRestartsSession(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.GroupMinSessionTimeoutMs = 0 }))
	// A client per member and one to watch the group: the broker serves a
	// connection's requests one at a time, as Kafka does, so a member
	// blocked in JoinGroup would hold up another's on a shared connection.
	newClient := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	lc, fc, wc := newClient(), newClient(), newClient()
	ctx := context.Background()
	const group, session = "slow-leader", 2 * time.Second
	// kgo sends each request at the newest version both sides speak.
	join := func(cl *kgo.Client, member string, session time.Duration) (*kmsg.JoinGroupResponse, error) {
		req := joinV(9, group, member)
		req.SessionTimeoutMillis = int32(session.Milliseconds())
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && resp.ErrorCode == kerr.MemberIDRequired.Code {
			req.MemberID = resp.MemberID
			resp, err = req.RequestWith(ctx, cl)
		}
		if err == nil && resp.ErrorCode != 0 {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		return resp, err
	}
	sync := func(cl *kgo.Client, member string, gen int32, assign map[string]string) (*kmsg.SyncGroupResponse, error) {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group, req.MemberID, req.Generation = group, member, gen
		req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		for m, a := range assign {
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
		}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && resp.ErrorCode != 0 {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		return resp, err
	}

	leader, err := join(lc, "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sync(lc, leader.MemberID, leader.Generation, map[string]string{leader.MemberID: "l"}); err != nil {
		t.Fatal(err)
	}
	type joined struct {
		resp *kmsg.JoinGroupResponse
		err  error
	}
	fj := make(chan joined, 1)
	go func() {
		resp, err := join(fc, "", session)
		fj <- joined{resp, err}
	}()
	waitGroupState(t, wc, group, "PreparingRebalance")
	rejoin, err := join(lc, leader.MemberID, 10*time.Second)
	if err != nil || rejoin.LeaderID != leader.MemberID {
		t.Fatalf("leader's rejoin: %v, leader %q", err, rejoin.LeaderID)
	}
	f := <-fj
	if f.err != nil {
		t.Fatalf("follower's join: %v", f.err)
	}
	gen := rejoin.Generation
	fs := make(chan error, 1)
	go func() {
		resp, err := sync(fc, f.resp.MemberID, gen, nil)
		if err == nil && string(resp.MemberAssignment) != "f" {
			err = fmt.Errorf("assignment %q, want f", resp.MemberAssignment)
		}
		fs <- err
	}()
	time.Sleep(session - 300*time.Millisecond)
	if _, err := sync(lc, leader.MemberID, gen, map[string]string{leader.MemberID: "l", f.resp.MemberID: "f"}); err != nil {
		t.Fatalf("leader's sync: %v", err)
	}
	if err := <-fs; err != nil {
		t.Fatalf("follower's sync: %v", err)
	}
	time.Sleep(session / 2)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = group, f.resp.MemberID, gen
	resp, err := hb.RequestWith(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		t.Errorf("follower's first heartbeat %v after its sync answer: %v, want none", session/2, kerr.ErrorForCode(resp.ErrorCode))
	}
}

// waitGroupState polls DescribeGroups until group is in state.
func waitGroupState(t *testing.T, cl *kgo.Client, group, state string) {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		if last = resp.Groups[0].State; last == state {
			return
		}
	}
	t.Fatalf("group %s is %s, want %s", group, last, state)
}
