package broker

import (
	"maps"
	"slices"
	"sync"

	"github.com/kafkit/kafkit/internal/storage"
)

// syncBatch is the file system a batch of partition opens (one CreateTopics,
// the start-up) goes through: it notes the directory syncs they ask for
// instead of making each, and flush makes each noted directory durable once,
// openConcurrency at a time, before the batch's partitions are used or its
// topic is recorded. (A new partition asks for none: its log syncs its
// directories at its first write. Recovery at start-up asks for some.)
// After flush every call goes straight through, so the logs keep it as
// their FS. (syncfs(2) would make it one call on Linux, but it also flushes
// whatever else is dirty on the file system, at a cost nobody can bound.)
type syncBatch struct {
	storage.FS

	// mu guards dirs and flushed.
	mu      sync.Mutex
	dirs    map[string]struct{}
	flushed bool
}

func newSyncBatch(fsys storage.FS) *syncBatch {
	return &syncBatch{FS: fsys, dirs: map[string]struct{}{}}
}

// SyncDir implements storage.FS.
func (s *syncBatch) SyncDir(dir string) error {
	s.mu.Lock()
	if !s.flushed {
		s.dirs[dir] = struct{}{}
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.FS.SyncDir(dir)
}

// flush makes the noted directories durable.
func (s *syncBatch) flush() error {
	s.mu.Lock()
	dirs := slices.Collect(maps.Keys(s.dirs))
	s.dirs, s.flushed = nil, true
	s.mu.Unlock()
	return inParallel(len(dirs), func(i int) error { return s.FS.SyncDir(dirs[i]) })
}
