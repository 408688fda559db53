package storage

import (
	"container/list"
	"io/fs"
	"os"
	"sync"
)

// FileCache is an FS that keeps at most a given number of its files'
// descriptors open, closing the least recently used when another is needed,
// as pebble's table cache does for its tables. A broker with tens of
// thousands of partitions holds three files per segment (.log, .index,
// .timeindex) but uses few of them at a time: the idle ones cost a handle in
// memory, not a descriptor. A closed file is reopened by name on its next
// use, so a caller must not rename or remove a file it still holds (the log
// closes a segment's files before it removes or renames them).
//
// Data written through a file that the cache then closes is still fsynced
// by the file's next Sync, which reopens it: fsync makes the file durable,
// whichever descriptor it is called on. A file that was not written since
// its last Sync (or, for a file opened for writing, since it was opened) is
// not reopened to be synced.
//
// Operations on one file run concurrently as the underlying FS allows; while
// one runs the file stays open (it is pinned), so the cache can exceed its
// size briefly when every open file is in use.
type FileCache struct {
	fsys FS
	size int

	// mu guards lru, open and every handle's f, pins, elem, dirty and closed.
	mu   sync.Mutex
	lru  list.List // handles with an open file, most recently used first
	open int
}

var _ FS = (*FileCache)(nil)

// NewFileCache returns fsys with at most size files open at a time (at
// least 1).
func NewFileCache(fsys FS, size int) *FileCache {
	return &FileCache{fsys: fsys, size: max(size, 1)}
}

// OpenFiles reports how many descriptors the cache holds open now.
func (c *FileCache) OpenFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// cachedFile is a File of a FileCache: a name and the descriptor while it is
// open.
type cachedFile struct {
	c      *FileCache
	name   string
	reflag int  // the flags to reopen with: no O_CREATE, O_EXCL or O_TRUNC
	isOS   bool // the descriptor is an *os.File (see ReadChunk)

	// openMu makes one goroutine reopen the file while others wait.
	openMu sync.Mutex

	// Guarded by c.mu.
	f      File // nil while closed
	elem   *list.Element
	pins   int  // operations running on f
	dirty  bool // written since the last successful Sync
	closed bool // Close was called
}

// OpenFile implements FS: it opens the file at once (creating or truncating
// it as flag says, so errors show here) and returns a handle that reopens it
// as needed.
func (c *FileCache) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := c.fsys.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	_, isOS := f.(*os.File)
	h := &cachedFile{c: c, name: name, reflag: flag &^ (os.O_CREATE | os.O_EXCL | os.O_TRUNC), isOS: isOS}
	c.mu.Lock()
	// A file opened for writing may hold what an earlier process wrote and
	// did not fsync: its first Sync must reach the disk.
	h.dirty = flag&(os.O_WRONLY|os.O_RDWR) != 0
	doomed := c.insertLocked(h, f)
	h.pins--
	doomed = append(doomed, c.evictLocked()...)
	c.mu.Unlock()
	closeAll(doomed)
	return h, nil
}

// insertLocked makes f h's open, pinned descriptor and returns the
// descriptors evicted to make room.
func (c *FileCache) insertLocked(h *cachedFile, f File) []File {
	h.f, h.pins = f, h.pins+1
	h.elem = c.lru.PushFront(h)
	c.open++
	return c.evictLocked()
}

// evictLocked closes (by returning them) the least recently used unpinned
// descriptors while more than size are open.
func (c *FileCache) evictLocked() []File {
	var doomed []File
	for e := c.lru.Back(); e != nil && c.open > c.size; {
		h := e.Value.(*cachedFile)
		prev := e.Prev()
		if h.pins == 0 {
			doomed = append(doomed, c.dropLocked(h))
		}
		e = prev
	}
	return doomed
}

// dropLocked takes h's descriptor out of the cache and returns it.
func (c *FileCache) dropLocked(h *cachedFile) File {
	f := h.f
	c.lru.Remove(h.elem)
	h.f, h.elem = nil, nil
	c.open--
	return f
}

// closeAll closes evicted descriptors. Their errors are dropped: what was
// written through them is fsynced (and a write-back error reported) by the
// next Sync, through a new descriptor.
func closeAll(files []File) {
	for _, f := range files {
		f.Close()
	}
}

// acquire returns h's descriptor, reopening it if needed, pinned until
// release.
func (h *cachedFile) acquire() (File, error) {
	if f, err := h.pin(); f != nil || err != nil {
		return f, err
	}
	h.openMu.Lock()
	defer h.openMu.Unlock()
	if f, err := h.pin(); f != nil || err != nil {
		return f, err
	}
	f, err := h.c.fsys.OpenFile(h.name, h.reflag, 0)
	if err != nil {
		return nil, err
	}
	h.c.mu.Lock()
	if h.closed {
		h.c.mu.Unlock()
		f.Close()
		return nil, os.ErrClosed
	}
	doomed := h.c.insertLocked(h, f)
	h.c.mu.Unlock()
	closeAll(doomed)
	return f, nil
}

// pin pins h's descriptor if it is open; nil, nil if it is not.
func (h *cachedFile) pin() (File, error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if h.closed {
		return nil, os.ErrClosed
	}
	if h.f == nil {
		return nil, nil
	}
	h.pins++
	h.c.lru.MoveToFront(h.elem)
	return h.f, nil
}

func (h *cachedFile) release() {
	c := h.c
	c.mu.Lock()
	h.pins--
	var doomed []File
	if h.closed && h.pins == 0 && h.f != nil {
		doomed = append(doomed, c.dropLocked(h))
	}
	doomed = append(doomed, c.evictLocked()...)
	c.mu.Unlock()
	closeAll(doomed)
}

func (h *cachedFile) markDirty() {
	h.c.mu.Lock()
	h.dirty = true
	h.c.mu.Unlock()
}

// ReadAt implements File.
func (h *cachedFile) ReadAt(b []byte, off int64) (int, error) {
	f, err := h.acquire()
	if err != nil {
		return 0, err
	}
	defer h.release()
	return f.ReadAt(b, off)
}

// WriteAt implements File.
func (h *cachedFile) WriteAt(b []byte, off int64) (int, error) {
	f, err := h.acquire()
	if err != nil {
		return 0, err
	}
	defer h.release()
	h.markDirty()
	return f.WriteAt(b, off)
}

// Truncate implements File.
func (h *cachedFile) Truncate(size int64) error {
	f, err := h.acquire()
	if err != nil {
		return err
	}
	defer h.release()
	h.markDirty()
	return f.Truncate(size)
}

// Stat implements File.
func (h *cachedFile) Stat() (fs.FileInfo, error) {
	f, err := h.acquire()
	if err != nil {
		return nil, err
	}
	defer h.release()
	return f.Stat()
}

// Sync implements File; a file not written since its last Sync is not
// reopened for it.
func (h *cachedFile) Sync() error {
	h.c.mu.Lock()
	clean := !h.dirty && !h.closed
	h.dirty = false
	h.c.mu.Unlock()
	if clean {
		return nil
	}
	f, err := h.acquire()
	if err == nil {
		err = f.Sync()
		h.release()
	}
	if err != nil {
		h.markDirty()
	}
	return err
}

// Close implements File. Later operations return os.ErrClosed.
func (h *cachedFile) Close() error {
	c := h.c
	c.mu.Lock()
	if h.closed {
		c.mu.Unlock()
		return os.ErrClosed
	}
	h.closed = true
	var f File
	if h.f != nil && h.pins == 0 {
		f = c.dropLocked(h)
	}
	c.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Close()
}

// isOSFile reports whether f's bytes are in an OS file at its name.
func isOSFile(f File) bool {
	switch f := f.(type) {
	case *os.File:
		return true
	case *cachedFile:
		return f.isOS
	}
	return false
}

// Remove implements FS.
func (c *FileCache) Remove(name string) error { return c.fsys.Remove(name) }

// RemoveAll implements FS.
func (c *FileCache) RemoveAll(path string) error { return c.fsys.RemoveAll(path) }

// Rename implements FS.
func (c *FileCache) Rename(oldpath, newpath string) error { return c.fsys.Rename(oldpath, newpath) }

// MkdirAll implements FS.
func (c *FileCache) MkdirAll(path string, perm fs.FileMode) error { return c.fsys.MkdirAll(path, perm) }

// ReadDirNames implements FS.
func (c *FileCache) ReadDirNames(dir string) ([]string, error) { return c.fsys.ReadDirNames(dir) }

// SyncDir implements FS.
func (c *FileCache) SyncDir(dir string) error { return c.fsys.SyncDir(dir) }
