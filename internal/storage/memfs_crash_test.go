package storage

// Issue 24: MemFS's power-loss model as POSIX allows it.

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

func writeSynced(t *testing.T, m *MemFS, name, data string) {
	t.Helper()
	f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func contentOf(t *testing.T, m *MemFS, name string) (string, bool) {
	t.Helper()
	f, err := m.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := make([]byte, fi.Size())
	f.ReadAt(b, 0)
	return string(b), true
}

func TestMemFSRemoveIsPendingUntilSyncDir(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("/d", 0o755)
	writeSynced(t, m, "/d/f", "data")
	m.SyncDir("/d")
	if err := m.Remove("/d/f"); err != nil {
		t.Fatal(err)
	}
	m.SimulateCrash()
	if got, ok := contentOf(t, m, "/d/f"); !ok || got != "data" {
		t.Fatalf("after a crash before SyncDir, the removed file is %q (exists %v), want it back", got, ok)
	}
	m.Remove("/d/f")
	m.SyncDir("/d")
	m.SimulateCrash()
	if _, ok := contentOf(t, m, "/d/f"); ok {
		t.Fatal("a remove made durable by SyncDir came back")
	}
}

// A rename over an existing file that a crash catches before SyncDir leaves
// the old or the new file under the name, never none.
func TestMemFSRenameOverExistingKeepsOne(t *testing.T) {
	for keep, want := range map[int]string{0: "old", 2: "new"} {
		m := NewMemFS()
		m.MkdirAll("/d", 0o755)
		writeSynced(t, m, "/d/target", "old")
		writeSynced(t, m, "/d/target.tmp", "new")
		m.SyncDir("/d")
		if err := m.Rename("/d/target.tmp", "/d/target"); err != nil {
			t.Fatal(err)
		}
		m.SimulateCrashKeeping(keep)
		if got, ok := contentOf(t, m, "/d/target"); !ok || got != want {
			t.Fatalf("keeping %d pending operations: target is %q (exists %v), want %q", keep, got, ok, want)
		}
	}
}
