package metadata

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"testing"
	"time"
)

// joinNode opens a controller that waits to be added (Join), on its own
// listener.
func joinNode(t *testing.T, id int32) (*quorumNode, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(ln, false)
	nd := &quorumNode{cfg: QuorumConfig{NodeID: id, Dir: t.TempDir(), Listener: m.Raft(), Parked: m.Parked(), Join: true,
		ElectionTimeout: 300 * time.Millisecond}}
	q, err := OpenQuorum(nd.cfg)
	if err != nil {
		t.Fatal(err)
	}
	nd.q = q
	t.Cleanup(func() {
		if nd.q != nil {
			nd.q.Close()
		}
	})
	return nd, ln.Addr().String()
}

func voterIDs(t *testing.T, q *Quorum) []int32 {
	t.Helper()
	v, err := q.Voters()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(v))
}

// A standalone controller grows to three with AddVoter, the three survive
// the loss of the first, and RemoveVoter shrinks them; the failure
// answers are KIP-853's.
func TestQuorumDynamicMembership(t *testing.T) {
	first := startQuorum(t, 1)[0]
	leader := controller(t, []*quorumNode{first})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	off, err := leader.q.Append(ctx, &RegisterBroker{ID: 7, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}

	n2, addr2 := joinNode(t, 2)
	n3, addr3 := joinNode(t, 3)
	if n2.q.IsController() || len(voterIDs(t, n2.q)) != 0 {
		t.Fatalf("a joining node bootstrapped: voters %v", voterIDs(t, n2.q))
	}
	if err := n2.q.AddVoter(ctx, 3, addr3); !errors.Is(err, ErrNotController) {
		t.Fatalf("AddVoter on a non-controller: %v, want ErrNotController", err)
	}
	for id, addr := range map[int32]string{2: addr2, 3: addr3} {
		if err := leader.q.AddVoter(ctx, id, addr); err != nil {
			t.Fatalf("AddVoter(%d): %v", id, err)
		}
	}
	if got := voterIDs(t, leader.q); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("voters %v", got)
	}
	if err := leader.q.AddVoter(ctx, 2, addr2); !errors.Is(err, ErrDuplicateVoter) {
		t.Fatalf("adding voter 2 again: %v, want ErrDuplicateVoter", err)
	}
	nodes := []*quorumNode{first, n2, n3}
	converged(t, nodes, off)

	// A voter that never answers is not added: it would count in the
	// majority from the start.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	err = leader.q.AddVoter(short, 4, deadAddr)
	cancelShort()
	if !errors.Is(err, ErrVoterNotReady) {
		t.Fatalf("adding an unreachable voter: %v, want ErrVoterNotReady", err)
	}
	if obs, _ := leader.q.Observers(); len(obs) != 0 {
		t.Fatalf("the unreachable voter was left as a member: %v", obs)
	}

	first.close(t)
	nodes[0] = &quorumNode{}
	next := controller(t, nodes)
	if off, err = next.q.Append(ctx, &RegisterBroker{ID: 8, Epoch: 1}); err != nil {
		t.Fatalf("append after losing the first controller: %v", err)
	}
	converged(t, nodes, off)

	if err := next.q.RemoveVoter(ctx, 9); !errors.Is(err, ErrVoterNotFound) {
		t.Fatalf("removing an unknown voter: %v, want ErrVoterNotFound", err)
	}
	if err := next.q.RemoveVoter(ctx, 1); err != nil {
		t.Fatalf("RemoveVoter(1): %v", err)
	}
	if got := voterIDs(t, next.q); len(got) != 2 || slices.Contains(got, 1) {
		t.Fatalf("voters after removing 1: %v", got)
	}
	if off, err = next.q.Append(ctx, &RegisterBroker{ID: 9, Epoch: 1}); err != nil {
		t.Fatalf("append with two voters: %v", err)
	}
	converged(t, nodes, off)
}
