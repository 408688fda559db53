package share

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// On a cluster a group's state is split as in Kafka: the share coordinator
// keeps the durable state of the group's share-partitions (a Manager whose
// parts are that state, with the group's membership), and each topic
// partition's leader keeps the live state of the share-partitions it
// serves (a Manager whose parts are loaded through Config.Read and saved
// through the coordinator). The methods below are the coordinator's side
// of Kafka's ReadShareGroupState and WriteShareGroupState, fenced by the
// leader epoch so that a leader that lost its partition cannot overwrite
// what its successor works from.

// ReadState returns k's durable state for the partition's leader at
// leaderEpoch: FENCED_LEADER_EPOCH when a newer leader already read or
// wrote it. A newer epoch is saved first, so that from then on the older
// leader's writes are refused, across a move of the coordinator too.
func (m *Manager) ReadState(k Key, leaderEpoch int32) (Loaded, *kerr.Error) {
	m.mu.Lock()
	sp := m.parts[k]
	m.mu.Unlock()
	if sp == nil {
		return Loaded{LeaderEpoch: leaderEpoch}, nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if leaderEpoch < sp.epoch {
		return Loaded{}, kerr.FencedLeaderEpoch
	}
	if leaderEpoch > sp.epoch {
		if err := m.save(k, leaderEpoch, sp.p); err != nil {
			return Loaded{}, kerr.KafkaStorageError
		}
		sp.epoch = leaderEpoch
	}
	start, batches := sp.p.Snapshot()
	return Loaded{Found: true, Start: start, Batches: batches, LeaderEpoch: leaderEpoch}, nil
}

// WriteState replaces k's durable state with what its leader at
// leaderEpoch sent, unless a newer leader read or wrote it
// (FENCED_LEADER_EPOCH). It returns once the state is durable.
func (m *Manager) WriteState(k Key, leaderEpoch int32, start int64, batches []StateBatch) *kerr.Error {
	p := Restore(start, batches)
	m.mu.Lock()
	sp := m.parts[k]
	if sp == nil {
		// The first state of a key is written under mu, so that two
		// writes cannot both create it.
		defer m.mu.Unlock()
		if err := m.save(k, leaderEpoch, p); err != nil {
			return kerr.KafkaStorageError
		}
		m.group(k.Group)
		m.parts[k] = &sharePart{p: p, epoch: leaderEpoch, avail: make(chan struct{})}
		return nil
	}
	m.mu.Unlock()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if leaderEpoch < sp.epoch {
		return kerr.FencedLeaderEpoch
	}
	if err := m.save(k, leaderEpoch, p); err != nil {
		return kerr.KafkaStorageError
	}
	sp.p, sp.epoch = p, leaderEpoch
	return nil
}

// DropParts forgets the share-partitions for which drop, given the key and
// the leader epoch the state was loaded at, says so: on a leader, those
// of the partitions it no longer leads; they are read again if it leads
// them again. Fetches waiting on them are woken. It is for a leader's
// Manager only.
func (m *Manager) DropParts(drop func(k Key, leaderEpoch int32) bool) {
	m.mu.Lock()
	var gone []*sharePart
	for k, sp := range m.parts {
		// A leader's part keeps the epoch it was loaded at (only a
		// coordinator's changes, under sp.mu), and sp.mu may be held
		// through a write to the coordinator: not waited for under mu.
		if drop(k, sp.epoch) {
			delete(m.parts, k)
			gone = append(gone, sp)
		}
	}
	m.mu.Unlock()
	for _, sp := range gone {
		sp.mu.Lock()
		close(sp.avail)
		sp.avail = make(chan struct{})
		sp.mu.Unlock()
	}
}

// DropGroups forgets the groups for which drop says so, with their members,
// share sessions and share-partitions: on a share coordinator, those of a
// partition of __consumer_offsets it no longer leads.
func (m *Manager) DropGroups(drop func(group string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.groups {
		if drop(id) {
			delete(m.groups, id)
		}
	}
	for k := range m.parts {
		if drop(k.Group) {
			delete(m.parts, k)
		}
	}
	for sk := range m.sessions {
		if drop(sk.group) {
			delete(m.sessions, sk)
		}
	}
}
