package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
)

// quorumNode is one node of a test quorum: its config (to reopen it) and,
// while it runs, its Quorum.
type quorumNode struct {
	cfg QuorumConfig
	q   *Quorum
}

// startQuorum opens n voters on 127.0.0.1; adjust, if given, changes
// their configs first.
func startQuorum(t *testing.T, n int, adjust ...func([]*quorumNode)) []*quorumNode {
	t.Helper()
	voters := map[int32]string{}
	var lns []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		voters[int32(i+1)] = ln.Addr().String()
	}
	// Raft's logs, every node's in one timeline, are kept for a failure:
	// a flake under load is understood from them or not at all.
	var logs syncbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raft logs:\n%s", logs.String())
		}
	})
	nodes := make([]*quorumNode, n)
	for i := range n {
		m := NewMux(lns[i], false)
		nodes[i] = &quorumNode{cfg: QuorumConfig{NodeID: int32(i + 1), Voters: voters, Dir: t.TempDir(), Listener: m.Raft(), Parked: m.Parked(),
			ElectionTimeout: 300 * time.Millisecond,
			Logger:          slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i+1)}}
	}
	for _, fn := range adjust {
		fn(nodes)
	}
	for _, nd := range nodes {
		nd.open(t)
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			if nd.q != nil {
				nd.q.Close()
			}
		}
	})
	return nodes
}

func (nd *quorumNode) open(t *testing.T) {
	t.Helper()
	q, err := OpenQuorum(nd.cfg)
	if err != nil {
		t.Fatal(err)
	}
	nd.q, nd.cfg.Listener, nd.cfg.Parked = q, nil, nil // a reopened node listens on its address again
}

func (nd *quorumNode) close(t *testing.T) {
	t.Helper()
	if err := nd.q.Close(); err != nil {
		t.Fatal(err)
	}
	nd.q = nil
}

// controller waits (bounded) for one of the running nodes to lead.
func controller(t *testing.T, nodes []*quorumNode) *quorumNode {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, nd := range nodes {
			if nd.q != nil && nd.q.IsController() {
				return nd
			}
		}
	}
	t.Fatal("no controller elected within 15 s")
	return nil
}

// converged waits (bounded) until every running node applied offset, and
// checks their images are the same.
func converged(t *testing.T, nodes []*quorumNode, offset uint64) *Image {
	t.Helper()
	var first *Image
	for _, nd := range nodes {
		if nd.q == nil {
			continue
		}
		for deadline := time.Now().Add(15 * time.Second); nd.q.AppliedOffset() < offset; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d applied %d, want %d", nd.cfg.NodeID, nd.q.AppliedOffset(), offset)
			}
		}
		var img *Image
		nd.q.View(func(i *Image) { img = i.Clone() })
		img.Offset = 0 // nodes apply configuration entries at other offsets
		if first == nil {
			first = img
		} else if !reflect.DeepEqual(first, img) {
			t.Fatalf("node %d's image differs:\n%+v\n%+v", nd.cfg.NodeID, img, first)
		}
	}
	return first
}

// commit appends recs on the controller among nodes and returns that
// controller and an offset by which done holds of the image. An election
// on a loaded machine may follow another at once (a vote delayed past the
// election timeout ends the young leadership with a newer term), so a
// lost leadership sends the batch to the next controller (bounded), once
// its Barrier applied all its predecessors committed: an append of unknown
// outcome that was committed is then found by done, not applied twice.
// Any other error fails the test.
func commit(t *testing.T, nodes []*quorumNode, done func(*Image) bool, recs ...Record) (*quorumNode, uint64) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		nd := controller(t, nodes)
		if err := nd.q.Barrier(t.Context()); err != nil {
			t.Logf("barrier on controller %d: %v; again on the next", nd.cfg.NodeID, err)
			last = err
			continue
		}
		var has bool
		nd.q.View(func(img *Image) { has = done(img) })
		if has {
			return nd, nd.q.AppliedOffset()
		}
		off, err := nd.q.Append(t.Context(), recs...)
		if err == nil {
			return nd, off
		}
		if !errors.Is(err, ErrNotController) && !errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("append on controller %d: %v", nd.cfg.NodeID, err)
		}
		t.Logf("append on controller %d: %v; again on the next", nd.cfg.NodeID, err)
		last = err
	}
	t.Fatalf("append: %v", last)
	return nil, 0
}

// commitTopic commits a Topic record (see commit).
func commitTopic(t *testing.T, nodes []*quorumNode, name string, id byte) (*quorumNode, uint64) {
	t.Helper()
	return commit(t, nodes, func(img *Image) bool { return img.Topics[name] != nil }, &Topic{Name: name, ID: [16]byte{id}})
}

// followersAgree checks that every running node but the controller refuses
// appends and names the controller. An election may move the controller
// meanwhile (see commit): then the checks are made again, against the new
// one, until they hold (bounded).
func followersAgree(t *testing.T, nodes []*quorumNode) {
	t.Helper()
	var problems []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		problems = problems[:0]
		c := controller(t, nodes)
		for _, nd := range nodes {
			if nd == c || nd.q == nil {
				continue
			}
			if _, err := nd.q.Append(t.Context(), &Topic{Name: "x"}); !errors.Is(err, ErrNotController) {
				problems = append(problems, fmt.Sprintf("append on follower %d: %v", nd.cfg.NodeID, err))
			}
			if id, ok := nd.q.Controller(); !ok || id != c.cfg.NodeID {
				problems = append(problems, fmt.Sprintf("follower %d sees controller %d, %v; it is %d", nd.cfg.NodeID, id, ok, c.cfg.NodeID))
			}
		}
		if len(problems) == 0 {
			return
		}
	}
	t.Fatalf("for 15 s: %s", strings.Join(problems, "; "))
}

func TestQuorumFailover(t *testing.T) {
	nodes := startQuorum(t, 3)
	ctx := t.Context()
	var recs []Record
	for i := int32(1); i <= 3; i++ {
		recs = append(recs, &RegisterBroker{ID: i, Epoch: int64(i)})
	}
	leader, _ := commit(t, nodes, func(img *Image) bool { return img.Brokers[3] != nil }, recs...)
	var created []Record
	var err error
	leader.q.View(func(img *Image) { created, err = img.CreateTopic("t", [16]byte{1}, 12, 3, nil, nil, 0) })
	if err != nil {
		t.Fatal(err)
	}
	_, off := commit(t, nodes, func(img *Image) bool { return img.Topics["t"] != nil }, created...)
	if img := converged(t, nodes, off); len(img.Topics["t"].Partitions) != 12 {
		t.Fatalf("image %+v", img.Topics)
	}
	followersAgree(t, nodes)

	// The controller goes away: another is elected and appends.
	leader = controller(t, nodes)
	leader.close(t)
	second, off := commitTopic(t, nodes, "after-failover", 2)
	converged(t, nodes, off)
	followersAgree(t, nodes)

	// Two of three voters down: no controller, appends fail retriably,
	// and nothing committed is lost when they return.
	second.close(t)
	var last *quorumNode
	for _, nd := range nodes {
		if nd.q != nil {
			last = nd
		}
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = last.q.Append(actx, &Topic{Name: "lost", ID: [16]byte{3}})
	cancel()
	if !errors.Is(err, ErrNotController) && !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, raft.ErrEnqueueTimeout) {
		t.Errorf("append without a quorum: %v", err)
	}
	leader.open(t)
	second.open(t)
	_, off = commitTopic(t, nodes, "after-restart", 4)
	img := converged(t, nodes, off)
	for _, name := range []string{"t", "after-failover", "after-restart"} {
		if img.Topics[name] == nil {
			t.Errorf("topic %s lost; image has %v", name, img.Topics)
		}
	}
	// The restarted nodes listen themselves (no Listener): they close
	// without error too.
	for _, nd := range nodes {
		nd.close(t)
	}
}

type bufSink struct{ bytes.Buffer }

func (*bufSink) ID() string    { return "test" }
func (*bufSink) Cancel() error { return nil }
func (*bufSink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	var applied []uint64
	f := NewFSM(func(offset uint64, _ []Record, _ *Image) { applied = append(applied, offset) })
	img := cluster(t, 3, "a", "b", "c")
	recs, _ := img.CreateTopic("t", [16]byte{1}, 6, 3, nil, map[string]string{"retention.ms": "1"}, 0)
	for i, batch := range [][]Record{img.Records(), recs} {
		if err, _ := f.Apply(&raft.Log{Index: uint64(i + 5), Type: raft.LogCommand, Data: EncodeBatch(batch...)}).(error); err != nil {
			t.Fatal(err)
		}
	}
	if err, _ := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte("junk")}).(error); !errors.Is(err, ErrCorrupt) {
		t.Errorf("junk entry: %v", err)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(nil)
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	f.View(func(a *Image) {
		g.View(func(b *Image) {
			if !reflect.DeepEqual(a, b) || b.Offset != 7 {
				t.Errorf("restored\n%+v\nfrom\n%+v", b, a)
			}
		})
	})
	if !reflect.DeepEqual(applied, []uint64{5, 6, 7}) {
		t.Errorf("onApply saw offsets %v", applied)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte{1, 2}))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short snapshot: %v", err)
	}
}
