package metadata

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// The quorum as KRaft's DescribeQuorum shows it: the active controller's
// view of every member's log. hashicorp/raft keeps the leader's view of
// its followers (match index, last contact) to itself, so the leader's
// transport records it instead, from the answers to the AppendEntries it
// sends: every answer carries the follower's last log index (LastLog),
// and heartbeats go to every follower several times per election timeout
// whether or not there is anything to replicate.
//
// Offsets are Raft log indexes: entry i is offset i-1, so the last log
// index is the log end offset and the commit index the high watermark, as
// Kafka counts them.

// ReplicaState is one quorum member's log as the active controller knows
// it; KRaft's DescribeQuorum ReplicaState.
type ReplicaState struct {
	ID int32
	// LogEndOffset is the member's last log index (-1 unknown: no answer
	// from it in this leader's term yet).
	LogEndOffset int64
	// LastFetch is when the member last answered the leader (zero
	// unknown); the leader's own is now.
	LastFetch time.Time
	// LastCaughtUp is when the member's log last reached the leader's log
	// end as it was when the answered request was sent (zero unknown);
	// the leader's own is now.
	LastCaughtUp time.Time
}

// QuorumState is the quorum as the active controller describes it.
type QuorumState struct {
	Leader int32
	// Epoch is the Raft term: KRaft's leader epoch.
	Epoch int32
	// HighWatermark is the commit index.
	HighWatermark int64
	// Voters and Observers (non-voting members: the broker-only nodes),
	// each by id.
	Voters, Observers []ReplicaState
}

// Describe is the quorum's state on the active controller; another node
// gets ErrNotController (only the leader knows its followers' logs).
func (q *Quorum) Describe() (QuorumState, error) {
	if !q.IsController() {
		return QuorumState{}, ErrNotController
	}
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return QuorumState{}, err
	}
	term := q.raft.CurrentTerm()
	now := time.Now()
	st := QuorumState{Leader: q.cfg.NodeID, Epoch: int32(term), HighWatermark: int64(q.raft.CommitIndex())}
	for _, s := range f.Configuration().Servers {
		n, err := strconv.ParseInt(string(s.ID), 10, 32)
		if err != nil {
			continue
		}
		rs := ReplicaState{ID: int32(n), LogEndOffset: -1}
		if rs.ID == q.cfg.NodeID {
			rs.LogEndOffset, rs.LastFetch, rs.LastCaughtUp = int64(q.raft.LastIndex()), now, now
		} else if fs, ok := q.followers.get(s.ID, term); ok {
			rs.LogEndOffset, rs.LastFetch, rs.LastCaughtUp = int64(fs.lastLog), fs.lastFetch, fs.lastCaughtUp
		}
		if s.Suffrage == raft.Voter {
			st.Voters = append(st.Voters, rs)
		} else {
			st.Observers = append(st.Observers, rs)
		}
	}
	byID := func(a, b ReplicaState) int { return int(a.ID) - int(b.ID) }
	slices.SortFunc(st.Voters, byID)
	slices.SortFunc(st.Observers, byID)
	return st, nil
}

// followerState is what one answer told the leader of a follower's log.
type followerState struct {
	term         uint64 // the leader's term when the request was sent
	lastLog      uint64
	lastFetch    time.Time
	lastCaughtUp time.Time
}

// followers records, on the leader, its followers' answers.
type followers struct {
	// leaderLog is the leader's last log index; set once raft exists.
	leaderLog atomic.Pointer[func() uint64]
	mu        sync.Mutex // guards state
	state     map[raft.ServerID]followerState
}

// record notes an answer to a request sent at sent in term, when the
// leader's log ended at leaderLast.
func (f *followers) record(id raft.ServerID, term, lastLog, leaderLast uint64, sent, answered time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == nil {
		f.state = map[raft.ServerID]followerState{}
	}
	s := f.state[id]
	if s.term != term {
		s = followerState{term: term} // a new leadership learns afresh, as KRaft's LeaderState does
	}
	s.lastLog, s.lastFetch = lastLog, answered
	if lastLog >= leaderLast && sent.After(s.lastCaughtUp) {
		s.lastCaughtUp = sent
	}
	f.state[id] = s
}

// get is follower id's state as recorded in term.
func (f *followers) get(id raft.ServerID, term uint64) (followerState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.state[id]
	return s, ok && s.term == term
}

// trackingTransport is raft's network transport that records, on the
// leader, what the AppendEntries answers say of each follower's log.
// Embedding keeps the optional interfaces raft looks for (pre-vote,
// close, peers). Pipelined appends are not seen; heartbeats, every tenth
// of the election timeout, carry the follower's log end anyway.
type trackingTransport struct {
	*raft.NetworkTransport
	f *followers
}

func (t trackingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	var leaderLast uint64
	if last := t.f.leaderLog.Load(); last != nil {
		leaderLast = (*last)()
	}
	sent := time.Now()
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err != nil || resp.Term != args.Term {
		return err
	}
	// LastLog is the follower's log end before it took this request's
	// entries; once it took them it ends at least where they do.
	lastLog := resp.LastLog
	if n := uint64(len(args.Entries)); resp.Success && n > 0 {
		lastLog = max(lastLog, args.PrevLogEntry+n)
	}
	t.f.record(id, args.Term, lastLog, leaderLast, sent, time.Now())
	return nil
}
