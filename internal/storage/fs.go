package storage

import (
	"io"
	"io/fs"
	"os"
	"time"
)

// FS is the file-system seam of the package: OSFS for real files, MemFS for
// the broker's in-memory mode and for tests, and wrappers in tests that inject
// faults. Paths are slash-separated and handed through unchanged.
type FS interface {
	// OpenFile opens or creates a file with os.OpenFile's flags. The log
	// never opens files with O_APPEND: it writes at positions it tracks.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Remove(name string) error
	RemoveAll(path string) error
	// Rename replaces newpath atomically, as rename(2) does.
	Rename(oldpath, newpath string) error
	MkdirAll(path string, perm fs.FileMode) error
	// ReadDirNames lists the names in a directory (not sorted).
	ReadDirNames(dir string) ([]string, error)
	// SyncDir makes the directory's entries (files created, removed or
	// renamed in it) durable.
	SyncDir(dir string) error
}

// File is an open file of an FS. Sync of an OSFS file is the durable one of
// each platform, as Go's os package makes it: fsync(2), on macOS
// fcntl(F_FULLFSYNC) (plain fsync there leaves the data in the drive's
// cache), on Windows FlushFileBuffers.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	// Stat reports the size and modification time.
	Stat() (fs.FileInfo, error)
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := openOSFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll implements FS.
func (OSFS) RemoveAll(path string) error { return os.RemoveAll(path) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// ReadDirNames implements FS.
func (OSFS) ReadDirNames(dir string) ([]string, error) {
	f, err := openOSFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// SyncDir implements FS (see syncDir for each platform).
func (OSFS) SyncDir(dir string) error { return syncDir(dir) }

// fileInfo is the fs.FileInfo of MemFS files.
type fileInfo struct {
	name    string
	size    int64
	modTime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return 0o644 }
func (i fileInfo) ModTime() time.Time { return i.modTime }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }
