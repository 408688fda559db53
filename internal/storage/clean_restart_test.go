package storage

// Issue 16: a restart after a clean shutdown leaves .kafka_cleanshutdown in
// place until the log's first change, so that a broker restarting with
// thousands of idle partitions fsyncs nothing for them; every writer must
// remove it, durably, before it touches a file.

import (
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

const restartDir = "/d/t-0"

// cleanlyClosed returns a MemFS holding a log of two segments (1,000 ms
// old records, then newer ones) closed cleanly.
func cleanlyClosed(t *testing.T, cfg Config) *MemFS {
	t.Helper()
	mem := NewMemFS()
	l := mustOpen(t, mem, restartDir, cfg)
	appendKVs(t, l, 1000, produced{}, put("a", "1"), put("b", "2"))
	if err := l.roll(msTime(1000)); err != nil {
		t.Fatal(err)
	}
	appendKVs(t, l, 5000, produced{}, put("a", "3"), put("c", "4"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return mem
}

func hasMarker(t *testing.T, fsys FS) bool {
	t.Helper()
	names, err := fsys.ReadDirNames(restartDir)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(names, cleanShutdownFile)
}

// An Open and Close of a cleanly closed log that changes nothing writes,
// creates, removes and fsyncs nothing, and leaves the marker.
func TestCleanRestartWithoutChangesWritesNothing(t *testing.T) {
	cfg := compactCfg()
	mem := cleanlyClosed(t, cfg)
	count := &changeFS{crashFS{FS: mem}}
	l := mustOpen(t, count, restartDir, cfg)
	if n := len(readRecords(t, l)); n != 4 {
		t.Fatalf("read %d records, want 4", n)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if count.ops != 0 {
		t.Fatalf("%d file-system changes, want none", count.ops)
	}
	if !hasMarker(t, mem) {
		t.Fatal("the clean-shutdown marker is gone")
	}
}

// changeFS counts the changes crashFS counts, except an O_CREATE open of a
// file that exists, which changes nothing.
type changeFS struct{ crashFS }

func (c *changeFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 && flag&os.O_TRUNC == 0 {
		if f, err := c.FS.OpenFile(name, os.O_RDONLY, 0); err == nil {
			f.Close()
			flag &^= os.O_CREATE
		}
	}
	return c.crashFS.OpenFile(name, flag, perm)
}

// Each writer removes the marker durably before its change: after a power
// loss right after it, the next Open does not trust the log.
func TestCleanRestartFirstChangeRemovesMarker(t *testing.T) {
	retention := compactCfg()
	retention.CleanupPolicy, retention.RetentionMs = CleanupDelete, 2*time.Second
	writers := []struct {
		name  string
		cfg   Config
		write func(*testing.T, *Log) error
	}{
		{"Append", compactCfg(), func(t *testing.T, l *Log) error {
			_, err := l.Append(kvBatch(t, 6000, recordbatch.Options{}, recordbatch.NoProducer(), put("d", "5")), msTime(6000), 0)
			return err
		}},
		{"WriteMarker", compactCfg(), func(t *testing.T, l *Log) error {
			_, err := l.WriteMarker(9, 0, false, 0, -1)
			return err
		}},
		{"DeleteRecordsBefore", compactCfg(), func(t *testing.T, l *Log) error {
			_, err := l.DeleteRecordsBefore(1)
			return err
		}},
		{"ApplyRetention", retention, func(t *testing.T, l *Log) error {
			n, err := l.ApplyRetention(msTime(6000))
			if err == nil && n != 1 {
				t.Fatalf("retention deleted %d segments, want 1", n)
			}
			return err
		}},
		{"Clean", compactCfg(), func(t *testing.T, l *Log) error {
			st, err := l.Clean(msTime(7000))
			if err == nil && st.Segments == 0 {
				t.Fatal("Clean cleaned nothing")
			}
			return err
		}},
	}
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			mem := cleanlyClosed(t, w.cfg)
			l := mustOpen(t, mem, restartDir, w.cfg)
			if !hasMarker(t, mem) {
				t.Fatal("Open removed the marker of an unchanged log")
			}
			if err := w.write(t, l); err != nil {
				t.Fatal(err)
			}
			l.closeFiles() // the process dies
			mem.SimulateCrash()
			if hasMarker(t, mem) {
				t.Fatalf("the marker survived a power loss after %s", w.name)
			}
		})
	}
}

// What the marker protects: a batch appended after a clean restart and
// garbled by a crash (not fsynced: flush.messages is off) fails its CRC
// and is dropped by the next Open's recovery, not served.
func TestCleanRestartAppendIsRecoveredAfterCrash(t *testing.T) {
	cfg := compactCfg()
	mem := cleanlyClosed(t, cfg)
	l := mustOpen(t, mem, restartDir, cfg)
	end := l.EndOffset()
	mustAppend(t, l, kvBatch(t, 6000, recordbatch.Options{}, recordbatch.NoProducer(), put("d", "5")), 6000)
	active := offsetFileName(restartDir, l.active().base, extLog)
	l.closeFiles() // the process dies with the batch's last page garbled
	f, err := mem.OpenFile(active, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt([]byte{0xff}, fi.Size()-1)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, mem, restartDir, cfg)
	defer l.Close()
	if got := l.EndOffset(); got != end {
		t.Fatalf("log end offset %d after the crash, want %d: the garbled batch was trusted", got, end)
	}
}
