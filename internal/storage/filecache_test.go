package storage

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFileCacheBoundsOpenFiles: with more files than the cache's size, at
// most size descriptors stay open, every file reads back what was written
// through it (reopened by name after eviction), Sync reaches files that were
// closed while dirty, and Close releases the descriptor.
func TestFileCacheBoundsOpenFiles(t *testing.T) {
	dir := t.TempDir()
	counting := &syncCountFS{FS: OSFS{}}
	c := NewFileCache(counting, 4)
	var files []File
	for i := range 20 {
		f, err := c.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(fmt.Sprintf("file %d", i)), 0); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		if n := c.OpenFiles(); n > 4 {
			t.Fatalf("%d files open after %d opened, want at most 4", n, i+1)
		}
	}
	for i, f := range files {
		before := counting.syncs.Load()
		if err := f.Sync(); err != nil {
			t.Fatalf("sync of evicted file %d: %v", i, err)
		}
		if counting.syncs.Load() != before+1 {
			t.Fatalf("sync of written file %d did not reach the OS", i)
		}
		if err := f.Sync(); err != nil || counting.syncs.Load() != before+1 {
			t.Fatalf("second sync of unchanged file %d: %v, %d syncs reached the OS, want none", i, err, counting.syncs.Load()-before-1)
		}
		want := fmt.Sprintf("file %d", i)
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, 0); err != nil || string(got) != want {
			t.Fatalf("file %d reads %q, %v", i, got, err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(want)) {
			t.Fatalf("file %d stat: %v %v", i, fi, err)
		}
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.OpenFiles(); n != 0 {
		t.Fatalf("%d files open after every Close", n)
	}
	if _, err := files[0].ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// TestFileCacheConcurrentUse: readers and a writer on more files than the
// cache holds, at once (run with -race).
func TestFileCacheConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	c := NewFileCache(OSFS{}, 3)
	var files []File
	for i := range 8 {
		f, err := c.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 8)
			for i := range 200 {
				f := files[(g+i)%len(files)]
				if g == 0 {
					if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i)}, 8), 0); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if _, err := f.ReadAt(buf, 0); err != nil && err.Error() != "EOF" {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := c.OpenFiles(); n > 3 {
		t.Fatalf("%d files open when idle, want at most 3", n)
	}
}

// TestLogOnFileCache: a log whose segments outnumber the cache's size still
// appends, rolls, reads and reopens; its idle segments hold no descriptor.
func TestLogOnFileCache(t *testing.T) {
	dir := t.TempDir()
	c := NewFileCache(OSFS{}, 16)
	cfg := Config{SegmentBytes: 1 << 10}
	var logs []*Log
	for p := range 10 {
		l, err := Open(c, filepath.Join(dir, fmt.Sprint(p)), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	now := time.Now()
	for i := range 40 {
		for _, l := range logs {
			if _, err := l.Append(makeBatch(t, batchSpec{valueSize: 100, ts: now.UnixMilli(), tag: byte(i)}), now, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := c.OpenFiles(); n > 16 {
		t.Fatalf("%d files open, want at most 16", n)
	}
	for p, l := range logs {
		got, err := l.Read(0, 1<<20, true, nil)
		if err != nil || len(got) == 0 {
			t.Fatalf("log %d: read %d bytes, %v", p, len(got), err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open(c, filepath.Join(dir, fmt.Sprint(p)), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if l.EndOffset() != 40 {
			t.Fatalf("log %d reopened with end offset %d, want 40", p, l.EndOffset())
		}
		l.Close()
	}
}

// syncCountFS counts the Syncs of its files that reach the OS.
type syncCountFS struct {
	FS
	syncs atomic.Int64
}

func (f *syncCountFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &syncCountFile{File: file, fs: f}, nil
}

type syncCountFile struct {
	File
	fs *syncCountFS
}

func (f *syncCountFile) Sync() error {
	f.fs.syncs.Add(1)
	return f.File.Sync()
}

// TestDurableAppendThroughEvictedFile: in durable mode (flush.messages=1)
// every append reaches an fsync even when the cache closed the segment file
// between the write and the sync (a cache of one file evicts it for the
// indexes), and the data is there after reopening. It logs the platform's
// sync call.
func TestDurableAppendThroughEvictedFile(t *testing.T) {
	call := map[string]string{"darwin": "fcntl(F_FULLFSYNC)", "windows": "FlushFileBuffers"}[runtime.GOOS]
	if call == "" {
		call = "fsync(2)"
	}
	t.Logf("durable path on %s: File.Sync is %s; directory sync %s", runtime.GOOS, call,
		map[bool]string{true: "is a no-op (NTFS journals entries)", false: "is fsync of the directory"}[runtime.GOOS == "windows"])
	dir := t.TempDir()
	counting := &syncCountFS{FS: OSFS{}}
	c := NewFileCache(counting, 1)
	l, err := Open(c, dir, Config{FlushMessages: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 5 {
		before := counting.syncs.Load()
		if _, err := l.Append(makeBatch(t, batchSpec{ts: now.UnixMilli(), tag: byte(i)}), now, 0); err != nil {
			t.Fatal(err)
		}
		if counting.syncs.Load() == before {
			t.Fatalf("append %d: no fsync reached the OS", i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(c, dir, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.EndOffset() != 5 {
		t.Fatalf("end offset %d after reopening, want 5", l.EndOffset())
	}
}
