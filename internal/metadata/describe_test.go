package metadata

import (
	"errors"
	"testing"
	"time"
)

// The active controller describes every voter's log from its followers'
// answers: all caught up, then a stopped voter falls behind while the
// others follow the log; other nodes cannot describe the quorum.
func TestQuorumDescribe(t *testing.T) {
	nodes := startQuorum(t, 3)
	start := time.Now()
	leader, off := commit(t, nodes, func(img *Image) bool { return img.Brokers[1] != nil }, &RegisterBroker{ID: 1, Epoch: 1})
	converged(t, nodes, off)
	for _, nd := range nodes {
		if nd != leader {
			if _, err := nd.q.Describe(); !errors.Is(err, ErrNotController) {
				t.Errorf("describe on follower %d: %v", nd.cfg.NodeID, err)
			}
		}
	}

	// describeUntil polls the leader's description until ok holds of it.
	describeUntil := func(what string, ok func(QuorumState) bool) QuorumState {
		t.Helper()
		var st QuorumState
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var err error
			if st, err = leader.q.Describe(); err != nil {
				t.Fatal(err)
			}
			if ok(st) {
				return st
			}
		}
		t.Fatalf("%s: last description %+v", what, st)
		return st
	}
	end := int64(leader.q.raft.LastIndex())
	st := describeUntil("every voter at the leader's log end", func(st QuorumState) bool {
		for _, v := range st.Voters {
			if v.LogEndOffset != end {
				return false
			}
		}
		return len(st.Voters) == 3
	})
	if st.Leader != leader.cfg.NodeID || st.Epoch != int32(leader.q.Term()) || st.HighWatermark < int64(off) || st.HighWatermark > end || len(st.Observers) != 0 {
		t.Errorf("description %+v; leader %d term %d appended at %d", st, leader.cfg.NodeID, leader.q.Term(), off)
	}
	for _, v := range st.Voters {
		if v.LastFetch.Before(start) || v.LastCaughtUp.Before(start) || v.LastCaughtUp.After(v.LastFetch) {
			t.Errorf("voter %d: fetched %v, caught up %v (test started %v)", v.ID, v.LastFetch, v.LastCaughtUp, start)
		}
	}

	var stopped *quorumNode
	for _, nd := range nodes {
		if nd != leader {
			stopped = nd
			break
		}
	}
	stopped.close(t)
	stoppedAt := time.Now()
	leader, off = commit(t, nodes, func(img *Image) bool { return img.Brokers[2] != nil }, &RegisterBroker{ID: 2, Epoch: 2})
	end = int64(leader.q.raft.LastIndex())
	st = describeUntil("the running follower caught up", func(st QuorumState) bool {
		for _, v := range st.Voters {
			if v.ID != stopped.cfg.NodeID && v.LogEndOffset != end {
				return false
			}
		}
		return true
	})
	// An answer to a heartbeat sent before the stop may still arrive just
	// after it, so the stopped voter's times are checked for standing
	// still across several heartbeat intervals rather than against the
	// moment of the stop.
	stoppedState := func(st QuorumState) ReplicaState {
		for _, v := range st.Voters {
			if v.ID == stopped.cfg.NodeID {
				return v
			}
		}
		t.Fatalf("stopped voter %d not in %+v", stopped.cfg.NodeID, st)
		return ReplicaState{}
	}
	before := stoppedState(st)
	time.Sleep(500 * time.Millisecond)
	after := stoppedState(describeUntil("a later description", func(QuorumState) bool { return true }))
	if after.LogEndOffset >= end || !after.LastFetch.Equal(before.LastFetch) || !after.LastCaughtUp.Equal(before.LastCaughtUp) || after.LastCaughtUp.After(stoppedAt) {
		t.Errorf("stopped voter %d: %+v then %+v, leader's log ends at %d, stopped at %v", stopped.cfg.NodeID, before, after, end, stoppedAt)
	}
	if st.HighWatermark < int64(off) {
		t.Errorf("high watermark %d before the committed append at %d", st.HighWatermark, off)
	}
}
