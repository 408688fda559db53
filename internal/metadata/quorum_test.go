package metadata

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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
	nodes := make([]*quorumNode, n)
	for i := range n {
		m := NewMux(lns[i], false)
		nodes[i] = &quorumNode{cfg: QuorumConfig{NodeID: int32(i + 1), Voters: voters, Dir: t.TempDir(), Listener: m.Raft(), Parked: m.Parked(),
			ElectionTimeout: 300 * time.Millisecond}}
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

func TestQuorumFailover(t *testing.T) {
	nodes := startQuorum(t, 3)
	ctx := t.Context()
	leader := controller(t, nodes)
	var recs []Record
	for i := int32(1); i <= 3; i++ {
		recs = append(recs, &RegisterBroker{ID: i, Epoch: int64(i)})
	}
	off, err := leader.q.Append(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	var created []Record
	leader.q.View(func(img *Image) { created, err = img.CreateTopic("t", [16]byte{1}, 12, 3, nil, nil, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if off, err = leader.q.Append(ctx, created...); err != nil {
		t.Fatal(err)
	}
	if img := converged(t, nodes, off); len(img.Topics["t"].Partitions) != 12 {
		t.Fatalf("image %+v", img.Topics)
	}
	for _, nd := range nodes {
		if nd != leader {
			if _, err := nd.q.Append(ctx, &Topic{Name: "x"}); !errors.Is(err, ErrNotController) {
				t.Errorf("append on follower %d: %v", nd.cfg.NodeID, err)
			}
			if id, ok := nd.q.Controller(); !ok || id != leader.cfg.NodeID {
				t.Errorf("follower %d sees controller %d, %v", nd.cfg.NodeID, id, ok)
			}
		}
	}

	// The controller goes away: another is elected and appends.
	leader.close(t)
	second := controller(t, nodes)
	if off, err = second.q.Append(ctx, &Topic{Name: "after-failover", ID: [16]byte{2}}); err != nil {
		t.Fatal(err)
	}
	converged(t, nodes, off)

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
	third := controller(t, nodes)
	if off, err = third.q.Append(ctx, &Topic{Name: "after-restart", ID: [16]byte{4}}); err != nil {
		t.Fatal(err)
	}
	img := converged(t, nodes, off)
	for _, name := range []string{"t", "after-failover", "after-restart"} {
		if img.Topics[name] == nil {
			t.Errorf("topic %s lost; image has %v", name, img.Topics)
		}
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
