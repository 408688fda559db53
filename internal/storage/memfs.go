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

// memNode is one file's contents, shared by every open handle.
type memNode struct {
	mu        sync.RWMutex // guards the fields below
	data      []byte
	synced    int  // length of the prefix made durable by Sync
	entryDone bool // the directory entry is durable (SyncDir after creation or rename)
	modTime   time.Time
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
		n.data = n.data[:0]
		n.synced = 0
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
		} else if n.synced < len(n.data) {
			n.data = n.data[:n.synced]
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
	f.node.mu.RLock()
	defer f.node.mu.RUnlock()
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("write", f.name, fs.ErrInvalid)
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	end := off + int64(len(p))
	if end > int64(len(f.node.data)) {
		if end > int64(cap(f.node.data)) {
			grown := make([]byte, end, max(end, 2*int64(cap(f.node.data))))
			copy(grown, f.node.data)
			f.node.data = grown
		} else {
			f.node.data = f.node.data[:end]
		}
	}
	copy(f.node.data[off:], p)
	f.node.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.node.mu.Lock()
	f.node.synced = len(f.node.data)
	f.node.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if size < 0 {
		return pathErr("truncate", f.name, fs.ErrInvalid)
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	if size <= int64(len(f.node.data)) {
		clear(f.node.data[size:])
		f.node.data = f.node.data[:size]
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	f.node.synced = min(f.node.synced, int(size))
	f.node.modTime = time.Now()
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.node.mu.RLock()
	defer f.node.mu.RUnlock()
	return fileInfo{name: filepath.Base(f.name), size: int64(len(f.node.data)), modTime: f.node.modTime}, nil
}

func (f *memFile) Close() error { return nil }
