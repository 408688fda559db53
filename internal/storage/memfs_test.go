package storage

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// TestMemFSFileMatchesReference drives a MemFS file and a plain byte slice
// with the same random writes, truncations and reads across chunk
// boundaries.
func TestMemFSFileMatchesReference(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := m.OpenFile("/d/f", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var ref []byte
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		size := int64(len(ref))
		switch op := rng.IntN(10); {
		case op < 5: // write, sometimes past the end
			off := rng.Int64N(size + 3*memChunk/2 + 1)
			p := make([]byte, rng.IntN(2*memChunk))
			for j := range p {
				p[j] = byte(i + j)
			}
			if _, err := f.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			if end := off + int64(len(p)); end > size {
				ref = append(ref, make([]byte, end-size)...)
			}
			copy(ref[off:], p)
		case op < 7: // truncate, shrinking or growing
			n := rng.Int64N(size + memChunk + 1)
			if err := f.Truncate(n); err != nil {
				t.Fatal(err)
			}
			if n < size {
				ref = ref[:n]
			} else {
				ref = append(ref, make([]byte, n-size)...)
			}
		default: // read
			off := rng.Int64N(size + 10)
			p := make([]byte, rng.IntN(3*memChunk))
			n, err := f.ReadAt(p, off)
			want := 0
			if off < size {
				want = copy(make([]byte, len(p)), ref[off:])
			}
			if n != want || (n < len(p)) != errors.Is(err, io.EOF) {
				t.Fatalf("op %d: ReadAt(%d bytes at %d) = %d, %v; file has %d", i, len(p), off, n, err, size)
			}
			if off < size && !bytes.Equal(p[:n], ref[off:off+int64(n)]) {
				t.Fatalf("op %d: ReadAt at %d returned other bytes", i, off)
			}
		}
		if fi, _ := f.Stat(); fi.Size() != int64(len(ref)) {
			t.Fatalf("op %d: size %d, want %d", i, fi.Size(), len(ref))
		}
	}
}

func TestMemFSCrash(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("/d", 0o755)
	write := func(name string, data string, sync, syncDir bool) {
		f, err := m.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		f.WriteAt([]byte(data), fi.Size())
		if sync {
			f.Sync()
		}
		if syncDir {
			m.SyncDir("/d")
		}
	}
	write("/d/durable", "abc", true, true)
	write("/d/durable", "def", false, false) // unsynced tail
	write("/d/noentry", "xyz", true, false)  // entry never synced
	m.SimulateCrash()
	names, _ := m.ReadDirNames("/d")
	if !slices.Equal(names, []string{"durable"}) {
		t.Fatalf("names after crash %v", names)
	}
	b, err := readFile(m, "/d/durable")
	if err != nil || string(b) != "abc" {
		t.Fatalf("durable file %q %v", b, err)
	}
	if _, err := m.OpenFile("/d/noentry", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("noentry: %v", err)
	}
	if _, err := m.OpenFile("/nodir/f", os.O_CREATE|os.O_RDWR, 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file in a missing directory: %v", err)
	}
}

// TestMemFSDirectories checks the directory operations against what the OS
// file system does, on the same sequence of calls.
func TestMemFSDirectories(t *testing.T) {
	for name, fsys := range map[string]FS{"mem": NewMemFS(), "os": OSFS{}} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			p := func(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }
			if err := fsys.MkdirAll(p("a", "b"), 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.OpenFile(p("missing", "f"), os.O_CREATE|os.O_RDWR, 0o644); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("create in a missing directory: %v", err)
			}
			for _, f := range []string{p("a", "f1"), p("a", "b", "f2")} {
				h, err := fsys.OpenFile(f, os.O_CREATE|os.O_RDWR, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				h.Close()
			}
			if err := fsys.MkdirAll(p("a", "f1", "x"), 0o755); err == nil {
				t.Fatal("MkdirAll below a file succeeded")
			}
			names, err := fsys.ReadDirNames(p("a"))
			sort.Strings(names)
			if err != nil || !slices.Equal(names, []string{"b", "f1"}) {
				t.Fatalf("ReadDirNames(a) = %v, %v", names, err)
			}
			if err := fsys.Remove(p("a", "b")); err == nil {
				t.Fatal("removed a directory that holds a file")
			}
			if err := fsys.Rename(p("a", "b", "f2"), p("a", "f3")); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Remove(p("a", "b")); err != nil {
				t.Fatalf("remove the emptied directory: %v", err)
			}
			names, _ = fsys.ReadDirNames(p("a"))
			sort.Strings(names)
			if !slices.Equal(names, []string{"f1", "f3"}) {
				t.Fatalf("after rename and remove: %v", names)
			}
			if err := fsys.RemoveAll(p("a")); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.ReadDirNames(p("a")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("ReadDirNames after RemoveAll: %v", err)
			}
			if names, err := fsys.ReadDirNames(root); err != nil || len(names) != 0 {
				t.Fatalf("root after RemoveAll(a) = %v, %v", names, err)
			}
		})
	}
}
