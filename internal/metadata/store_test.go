package metadata

import (
	"path/filepath"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// A heartbeat answered after Shutdown may still record a term: the closed
// store must not fail that write, or Raft panics.
func TestBoltStoreWritesAfterCloseDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s := &boltStore{BoltStore: bolt}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("SetUint64 after Close: %v", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("2")); err != nil {
		t.Fatalf("Set after Close: %v", err)
	}
	bolt, err = raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	if term, err := bolt.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
		t.Fatalf("term %d, %v after reopening; want the 3 written before Close", term, err)
	}
}
