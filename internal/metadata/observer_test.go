package metadata

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// An observer listens nowhere: it follows the log over the connections it
// parks at the voters, through a change of controller and its own
// restart (the voters then hold its old, dead connections).
func TestObserverFollowsOverParkedConnections(t *testing.T) {
	nodes := startQuorum(t, 3)
	voters := nodes[0].cfg.Voters
	obs := &quorumNode{cfg: QuorumConfig{NodeID: 7, Voters: voters, Dir: t.TempDir(), Observer: true, ElectionTimeout: 300 * time.Millisecond}}
	obs.open(t)
	t.Cleanup(func() {
		if obs.q != nil {
			obs.q.Close()
		}
	})
	addObserver := func() {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			err := controller(t, nodes).q.AddObserver(7)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("AddObserver: %v", err)
			}
		}
	}
	addObserver()
	leader, off := commitTopic(t, nodes, "first", 1)
	if img := converged(t, append([]*quorumNode{obs}, nodes...), off); img.Topics["first"] == nil {
		t.Fatalf("image %+v", img.Topics)
	}
	if ids, err := leader.q.Observers(); err != nil || len(ids) != 1 || ids[0] != 7 {
		t.Fatalf("observers %v, %v", ids, err)
	}

	leader.close(t)
	_, off = commitTopic(t, nodes, "second", 2)
	converged(t, []*quorumNode{obs}, off)

	obs.close(t)
	obs.open(t)
	_, off = commitTopic(t, nodes, "third", 3)
	if img := converged(t, []*quorumNode{obs}, off); img.Topics["third"] == nil || img.Topics["first"] == nil {
		t.Fatalf("restarted observer's image %+v", img.Topics)
	}
}

// On a listener with RaftLoginRequired a connection that opens with a Raft
// preamble is closed; one handed over with Upgrade goes to its side.
func TestMuxRaftLoginRequired(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(ln, true, RaftLoginRequired())
	defer m.Close()
	for _, preamble := range []string{RaftPreamble, ObserverPreamble + "\x00\x00\x00\x07"} {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, preamble+"more")
		var ne net.Error
		if _, err := nc.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%q: read %v, want the connection closed", preamble[:4], err)
		}
		nc.Close()
	}

	for _, tt := range []struct {
		head string
		side net.Listener
	}{{RaftPreamble, m.Raft()}, {ObserverPreamble, m.Parked()}} {
		a, b := net.Pipe()
		go m.Upgrade(a, [4]byte([]byte(tt.head)))
		got, err := tt.side.Accept()
		if err != nil {
			t.Fatal(err)
		}
		go b.Write(binary.BigEndian.AppendUint32(nil, 42))
		var buf [4]byte
		if _, err := io.ReadFull(got, buf[:]); err != nil || binary.BigEndian.Uint32(buf[:]) != 42 {
			t.Errorf("%s side read %v, %v", tt.head, buf, err)
		}
		a.Close()
		b.Close()
	}
}
