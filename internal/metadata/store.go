package metadata

import (
	"sync"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// boltStore is the Raft log and stable store. Raft's transport answers
// heartbeats on its connections' goroutines, which Raft's Shutdown does not
// wait for: one can still record a newer term after the store has closed,
// and Raft panics when that write fails ("failed to save current term:
// database not open"). A node that has shut down takes no further part in
// the quorum, so its term and vote no longer matter: writes after Close are
// dropped instead.
type boltStore struct {
	*raftboltdb.BoltStore
	mu     sync.RWMutex
	closed bool
}

func (s *boltStore) Set(key, val []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.BoltStore.Set(key, val)
}

func (s *boltStore) SetUint64(key []byte, val uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.BoltStore.SetUint64(key, val)
}

func (s *boltStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.BoltStore.Close()
}
