package storage

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS for the broker's --in-memory mode and for tests.
// It also models what survives a power loss, as POSIX allows it: a file's
// bytes are durable up to its last Sync, and a directory's entries as of its
// last SyncDir. Creates, removes and renames after that are pending: a
// crash keeps a prefix of them, in order (a journaling file system commits
// directory operations in order), so a rename over an existing file leaves
// one of the two files under the name, never none, and a remove not
// followed by SyncDir may be undone. SimulateCrash keeps no pending
// operation; SimulateCrashKeeping keeps some.
type MemFS struct {
	mu   sync.Mutex         // guards dirs and their entries (not file contents)
	dirs map[string]*memDir // by cleaned path; every ancestor of a dir is one too
}

// memDir holds a directory's entries, so listing, syncing or removing one
// directory costs its own entries, not every file of the file system (a broker
// holds thousands of partition directories).
type memDir struct {
	files   map[string]*memNode // by base name
	subdirs map[string]struct{} // base names
	// durable is files as of the last SyncDir, pending the directory
	// operations since then, in order.
	durable map[string]*memNode
	pending []dirOp
}

// dirOp is a directory operation not yet made durable: name now refers to
// node (nil: removed).
type dirOp struct {
	name string
	node *memNode
}

func newMemDir() *memDir {
	return &memDir{files: make(map[string]*memNode), subdirs: make(map[string]struct{}), durable: make(map[string]*memNode)}
}

// set changes an entry, as a pending operation. The caller holds m.mu.
func (d *memDir) set(name string, n *memNode) {
	if n == nil {
		delete(d.files, name)
	} else {
		d.files[name] = n
	}
	d.pending = append(d.pending, dirOp{name: name, node: n})
}

// memNode is one file's contents, shared by every open handle. The bytes
// live in chunks of memChunk bytes (all full but the last), so a growing
// segment never copies what it already holds and an append never stalls on
// a copy of the whole file.
type memNode struct {
	mu      sync.RWMutex // guards the fields below
	chunks  [][]byte
	size    int64
	synced  int64 // length of the prefix made durable by Sync
	modTime time.Time
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
	return &MemFS{dirs: make(map[string]*memDir)}
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// lookup returns the directory holding name and name's base; the directory is
// nil if it does not exist. The caller holds m.mu.
func (m *MemFS) lookup(name string) (*memDir, string) {
	return m.dirs[filepath.Dir(name)], filepath.Base(name)
}

// OpenFile implements FS. Only O_CREATE, O_EXCL and O_TRUNC are honoured
// besides the access mode.
func (m *MemFS) OpenFile(name string, flag int, _ fs.FileMode) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base := m.lookup(name)
	if d == nil {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	n, ok := d.files[base]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		n = &memNode{modTime: time.Now()}
		d.set(base, n)
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
	parent, base := m.lookup(name)
	if parent != nil {
		if _, ok := parent.files[base]; ok {
			parent.set(base, nil)
			return nil
		}
	}
	d, ok := m.dirs[name]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if len(d.files)+len(d.subdirs) > 0 {
		return pathErr("remove", name, fmt.Errorf("directory not empty"))
	}
	m.removeDir(name)
	return nil
}

// removeDir drops dir and everything below it. The caller holds m.mu.
func (m *MemFS) removeDir(dir string) {
	d := m.dirs[dir]
	for sub := range d.subdirs {
		m.removeDir(filepath.Join(dir, sub))
	}
	delete(m.dirs, dir)
	if parent, base := m.lookup(dir); parent != nil && parent != d {
		delete(parent.subdirs, base)
	}
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(path string) error {
	path = filepath.Clean(path)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.dirs[path]; ok {
		m.removeDir(path)
	} else if parent, base := m.lookup(path); parent != nil && parent.files[base] != nil {
		parent.set(base, nil)
	}
	return nil
}

// Rename implements FS. It is durable only after SyncDir of both
// directories.
func (m *MemFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	m.mu.Lock()
	defer m.mu.Unlock()
	from, oldBase := m.lookup(oldpath)
	to, newBase := m.lookup(newpath)
	if from == nil || from.files[oldBase] == nil {
		return pathErr("rename", oldpath, fs.ErrNotExist)
	}
	if to == nil {
		return pathErr("rename", newpath, fs.ErrNotExist)
	}
	n := from.files[oldBase]
	from.set(oldBase, nil)
	to.set(newBase, n)
	return nil
}

// MkdirAll implements FS. Directories are always durable.
func (m *MemFS) MkdirAll(path string, _ fs.FileMode) error {
	path = filepath.Clean(path)
	m.mu.Lock()
	defer m.mu.Unlock()
	var missing []string // path and its missing ancestors, deepest first
	for p := path; ; p = filepath.Dir(p) {
		if _, ok := m.dirs[p]; ok {
			break
		}
		if parent, base := m.lookup(p); parent != nil && parent.files[base] != nil {
			return pathErr("mkdir", p, syscall.ENOTDIR)
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		p := missing[i]
		m.dirs[p] = newMemDir()
		if parent := filepath.Dir(p); parent != p {
			m.dirs[parent].subdirs[filepath.Base(p)] = struct{}{}
		}
	}
	return nil
}

// ReadDirNames implements FS.
func (m *MemFS) ReadDirNames(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dirs[dir]
	if !ok {
		return nil, pathErr("readdir", dir, fs.ErrNotExist)
	}
	names := make([]string, 0, len(d.files)+len(d.subdirs))
	for name := range d.files {
		names = append(names, name)
	}
	for name := range d.subdirs {
		names = append(names, name)
	}
	return names, nil
}

// SyncDir implements FS: the entries of files in dir become durable.
func (m *MemFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.dirs[dir]; ok {
		d.durable = maps.Clone(d.files)
		d.pending = d.pending[:0]
	}
	return nil
}

// SimulateCrash drops everything a power loss could lose: the directory
// operations not made durable by SyncDir, and every byte past the synced
// prefix of the files. Open handles keep working on the dropped state, as
// if the process had survived to observe the reboot; tests close them
// first.
func (m *MemFS) SimulateCrash() { m.SimulateCrashKeeping(0) }

// SimulateCrashKeeping is SimulateCrash where the first n pending directory
// operations of each directory (all with n < 0) did reach the disk.
func (m *MemFS) SimulateCrashKeeping(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.dirs {
		keep := d.pending
		if n >= 0 && n < len(keep) {
			keep = keep[:n]
		}
		for _, op := range keep {
			if op.node == nil {
				delete(d.durable, op.name)
			} else {
				d.durable[op.name] = op.node
			}
		}
		d.files, d.pending = maps.Clone(d.durable), d.pending[:0]
		for _, node := range d.files {
			node.mu.Lock()
			node.resize(node.synced)
			node.mu.Unlock()
		}
	}
}

// PendingDirOps returns the largest number of pending directory operations
// of a directory: SimulateCrashKeeping's n beyond it keeps them all.
func (m *MemFS) PendingDirOps() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	most := 0
	for _, d := range m.dirs {
		most = max(most, len(d.pending))
	}
	return most
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
