package metadata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Controller membership changes (KIP-853's AddRaftVoter and
// RemoveRaftVoter) through hashicorp/raft's configuration changes.
//
// KRaft adds a voter only once it is an observer whose log caught up with
// the leader's (AddVoterHandler): a voter that cannot follow would count
// in the majority from the start, and a quorum of one that adds an
// unreachable voter could commit nothing more. hashicorp/raft's AddVoter
// makes the member a voter at once, so AddVoter here first makes it a
// non-voter, waits until the leader's transport saw its log reach the
// leader's (describe.go's followers), and only then promotes it; a member
// that does not catch up in time is taken out again.

// ErrDuplicateVoter, ErrVoterNotFound: AddVoter of a voter,
// RemoveVoter of a member that is none (DUPLICATE_VOTER and
// VOTER_NOT_FOUND on the wire); ErrVoterNotReady an AddVoter whose new
// voter did not catch up in time (REQUEST_TIMED_OUT).
var (
	ErrDuplicateVoter = errors.New("metadata: already a voter")
	ErrVoterNotFound  = errors.New("metadata: no such voter")
	ErrVoterNotReady  = errors.New("metadata: the new voter did not catch up")
)

// Voters are the voters of the quorum's latest configuration, by id, with
// the address the others reach each one at.
func (q *Quorum) Voters() (map[int32]string, error) {
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	out := map[int32]string{}
	for _, s := range f.Configuration().Servers {
		if n, err := strconv.ParseInt(string(s.ID), 10, 32); err == nil && s.Suffrage == raft.Voter {
			out[int32(n)] = string(s.Address)
		}
	}
	return out, nil
}

// AddVoter makes controller id, reachable at addr (its controller
// listener, where Raft's stream is taken), a voter of the quorum once its
// log caught up, within ctx. Only the active controller adds one
// (ErrNotController).
func (q *Quorum) AddVoter(ctx context.Context, id int32, addr string) error {
	if !q.IsController() {
		return ErrNotController
	}
	voters, err := q.Voters()
	if err != nil {
		return err
	}
	if _, ok := voters[id]; ok {
		return fmt.Errorf("%w: the voter id %d is already part of the set of voters %v", ErrDuplicateVoter, id, slices.Sorted(maps.Keys(voters)))
	}
	timeout := time.Until(deadline(ctx))
	if err := raftErr(q.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, timeout).Error()); err != nil {
		return err
	}
	if err := q.waitCaughtUp(ctx, id); err != nil {
		// Not left behind as a member the leader keeps dialing.
		q.raft.RemoveServer(serverID(id), 0, 5*time.Second).Error()
		return err
	}
	return raftErr(q.raft.AddVoter(serverID(id), raft.ServerAddress(addr), 0, time.Until(deadline(ctx))).Error())
}

// waitCaughtUp returns once the leader saw member id's log reach the
// leader's commit index as it is now.
func (q *Quorum) waitCaughtUp(ctx context.Context, id int32) error {
	target := q.raft.CommitIndex()
	term := q.raft.CurrentTerm()
	tick := time.NewTicker(q.cfg.ElectionTimeout / 10)
	defer tick.Stop()
	for {
		if fs, ok := q.followers.get(serverID(id), term); ok && fs.lastLog >= target {
			return nil
		}
		if !q.IsController() || q.raft.CurrentTerm() != term {
			return ErrNotController
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: new voter %d is not ready to receive requests", ErrVoterNotReady, id)
		case <-tick.C:
		}
	}
}

// RemoveVoter takes voter id out of the quorum within ctx; removing the
// active controller itself hands the quorum to another voter, as KRaft's
// leader resigns once the change commits. Only the active controller
// removes one (ErrNotController).
func (q *Quorum) RemoveVoter(ctx context.Context, id int32) error {
	if !q.IsController() {
		return ErrNotController
	}
	voters, err := q.Voters()
	if err != nil {
		return err
	}
	if _, ok := voters[id]; !ok {
		return fmt.Errorf("%w: cannot remove voter %d from the set of voters %v", ErrVoterNotFound, id, slices.Sorted(maps.Keys(voters)))
	}
	if len(voters) == 1 {
		return fmt.Errorf("%w: cannot remove the last voter %d", ErrVoterNotFound, id)
	}
	return raftErr(q.raft.RemoveServer(serverID(id), 0, time.Until(deadline(ctx))).Error())
}

// raftErr maps hashicorp/raft's errors of a configuration change.
func raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return ErrNotController
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return context.DeadlineExceeded
	}
	return err
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(10 * time.Second)
}
