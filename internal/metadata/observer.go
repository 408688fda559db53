package metadata

import (
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// AddObserver makes broker-only node id, whose Raft traffic goes to addr,
// a non-voting member that the active controller replicates the metadata
// log to (hashicorp/raft's AddNonvoter): KRaft's observer. A member
// already known at addr is left alone. Only the active controller can add
// one (ErrNotController).
func (q *Quorum) AddObserver(id int32, addr string) error {
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == serverID(id) && s.Address == raft.ServerAddress(addr) {
			return nil
		}
	}
	err := q.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error()
	if err == raft.ErrNotLeader {
		return ErrNotController
	}
	return err
}

// Observers are the non-voting members of the quorum, by id.
func (q *Quorum) Observers() ([]int32, error) {
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []int32
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Nonvoter {
			if n, err := strconv.Atoi(string(s.ID)); err == nil {
				out = append(out, int32(n))
			}
		}
	}
	return out, nil
}

// RemoveObserver takes broker-only node id out of the quorum's
// configuration (an unregistered broker): the active controller stops
// sending it the log. A voter, or an id that is no member, is left alone.
func (q *Quorum) RemoveObserver(id int32) error {
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	i := slices.IndexFunc(f.Configuration().Servers, func(s raft.Server) bool { return s.ID == serverID(id) })
	if i < 0 || f.Configuration().Servers[i].Suffrage != raft.Nonvoter {
		return nil
	}
	err := q.raft.RemoveServer(serverID(id), 0, 10*time.Second).Error()
	if err == raft.ErrNotLeader {
		return ErrNotController
	}
	return err
}
