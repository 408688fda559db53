package storage

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS for the broker's --in-memory mode and for tests.
// It also models what survives a power loss: SimulateCrash keeps only the
// bytes that were Synced in files whose directory entry was made durable by
// SyncDir, so tests can check durability claims without killing a process.
type MemFS struct {
	mu    sync.Mutex          // guards files and dirs (not file contents)
	files map[string]*memNode // by cleaned path
	dirs  map[string]struct{} // directories created by MkdirAll
}

// memNode is one file's contents, shared by every open handle. The bytes
// live in chunks of memChunk bytes (all full but the last), so a growing
// segment never copies what it already holds and an append never stalls on
// a copy of the whole file.
type memNode struct {
	mu        sync.RWMutex // guards the fields below
	chunks    [][]byte
	size      int64
	synced    int64 // length of the prefix made durable by Sync
	entryDone bool  // the directory entry is durable (SyncDir after creation or rename)
	modTime   time.Time
}

const memChunk = 1 << 16

// resize makes the file size bytes long, zero-filling growth. The caller
// holds n.mu.
func (n *memNode) resize(size int64) {
	if size < n.size {
		keep := int((size + memChunk - 1) / memChunk)
		clear(n.chunks[keep:]) // let the dropped chunks be collected
		n.chunks = n.chunks[:keep]
		if tail := int(size % memChunk); tail > 0 {
			c := n.chunks[keep-1]
			clear(c[tail:]) // growth within cap must read as zeros
			n.chunks[keep-1] = c[:tail]
		}
		n.size = size
		n.synced = min(n.synced, size)
		return
	}
	for n.size < size {
		ci := int(n.size / memChunk)
		if ci == len(n.chunks) {
			n.chunks = append(n.chunks, nil)
		}
		c := n.chunks[ci]
		want := int(min(size-int64(ci)*memChunk, memChunk))
		if want > cap(c) {
			// Small files grow gradually; a file past its first chunk is
			// big, and gets whole chunks.
			capacity := min(max(2*cap(c), want), memChunk)
			if ci > 0 {
				capacity = memChunk
			}
			grown := make([]byte, want, capacity)
			copy(grown, c)
			c = grown
		}
		n.chunks[ci] = c[:want]
		n.size = int64(ci)*memChunk + int64(want)
	}
}

var _ FS = (*MemFS)(nil)

// NewMemFS returns an empty in-memory file system.
func NewMemFS() *MemFS {
	return &MemFS{files: make(map[string]*memNode), dirs: make(map[string]struct{})}
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// OpenFile implements FS. Only O_CREATE, O_EXCL and O_TRUNC are honoured
// besides the access mode.
func (m *MemFS) OpenFile(name string, flag int, _ fs.FileMode) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		if _, ok := m.dirs[filepath.Dir(name)]; !ok {
			return nil, pathErr("open", name, fs.ErrNotExist)
		}
		n = &memNode{modTime: time.Now()}
		m.files[name] = n
	}
	if flag&os.O_TRUNC != 0 {
		n.mu.Lock()
		n.resize(0)
		n.mu.Unlock()
	}
	return &memFile{name: name, node: n}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; ok {
		delete(m.files, name)
		return nil
	}
	if _, ok := m.dirs[name]; ok {
		prefix := name + string(filepath.Separator)
		for p := range m.files {
			if strings.HasPrefix(p, prefix) {
				return pathErr("remove", name, fmt.Errorf("directory not empty"))
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return pathErr("remove", name, fs.ErrNotExist)
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(path string) error {
	path = filepath.Clean(path)
	prefix := path + string(filepath.Separator)
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.files {
		if p == path || strings.HasPrefix(p, prefix) {
			delete(m.files, p)
		}
	}
	for d := range m.dirs {
		if d == path || strings.HasPrefix(d, prefix) {
			delete(m.dirs, d)
		}
	}
	return nil
}

// Rename implements FS. The new entry is durable only after SyncDir.
func (m *MemFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.files[oldpath]
	if !ok {
		return pathErr("rename", oldpath, fs.ErrNotExist)
	}
	delete(m.files, oldpath)
	m.files[newpath] = n
	n.mu.Lock()
	n.entryDone = false
	n.mu.Unlock()
	return nil
}

// MkdirAll implements FS. Directories are always durable.
func (m *MemFS) MkdirAll(path string, _ fs.FileMode) error {
	path = filepath.Clean(path)
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := path; ; p = filepath.Dir(p) {
		m.dirs[p] = struct{}{}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

// ReadDirNames implements FS.
func (m *MemFS) ReadDirNames(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.dirs[dir]; !ok {
		return nil, pathErr("readdir", dir, fs.ErrNotExist)
	}
	var names []string
	for p := range m.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	return names, nil
}

// SyncDir implements FS: the entries of files in dir become durable.
func (m *MemFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range m.files {
		if filepath.Dir(p) == dir {
			n.mu.Lock()
			n.entryDone = true
			n.mu.Unlock()
		}
	}
	return nil
}

// SimulateCrash drops everything a power loss could lose: files whose
// directory entry was never synced, and every byte past the synced prefix of
// the others. Open handles keep working on the dropped state, as if the
// process had survived to observe the reboot; tests close them first.
func (m *MemFS) SimulateCrash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range m.files {
		n.mu.Lock()
		if !n.entryDone {
			delete(m.files, p)
		} else {
			n.resize(n.synced)
		}
		n.mu.Unlock()
	}
}

// memFile is an open handle of a MemFS file.
type memFile struct {
	name string
	node *memNode
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("read", f.name, fs.ErrInvalid)
	}
	n := f.node
	n.mu.RLock()
	defer n.mu.RUnlock()
	read := 0
	for read < len(p) && off < n.size {
		k := copy(p[read:], n.chunks[off/memChunk][off%memChunk:])
		read += k
		off += int64(k)
	}
	if read < len(p) {
		return read, io.EOF
	}
	return read, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("write", f.name, fs.ErrInvalid)
	}
	n := f.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if end := off + int64(len(p)); end > n.size {
		n.resize(end)
	}
	for written := 0; written < len(p); {
		k := copy(n.chunks[off/memChunk][off%memChunk:], p[written:])
		written += k
		off += int64(k)
	}
	n.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.node.mu.Lock()
	f.node.synced = f.node.size
	f.node.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if size < 0 {
		return pathErr("truncate", f.name, fs.ErrInvalid)
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	f.node.resize(size)
	f.node.modTime = time.Now()
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.node.mu.RLock()
	defer f.node.mu.RUnlock()
	return fileInfo{name: filepath.Base(f.name), size: f.node.size, modTime: f.node.modTime}, nil
}

func (f *memFile) Close() error { return nil }
