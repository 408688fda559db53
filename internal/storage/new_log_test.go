package storage

// Issue 16: a new log creates its first segment's files on its first
// write, so creating a topic of many partitions costs their directories
// only; the files must be durable before an acknowledged batch goes in.

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Opening, reading, flushing and closing a new log creates nothing, not
// even its directory, and the next Open finds the same empty log.
func TestNewLogCreatesNoFilesUntilWritten(t *testing.T) {
	mem := NewMemFS()
	count := &changeFS{crashFS{FS: mem}}
	for range 2 {
		l := mustOpen(t, count, restartDir, Config{})
		if b, err := l.Read(0, 1<<20, true, nil); err != nil || len(b) != 0 {
			t.Fatalf("Read of an empty log: %d bytes, %v", len(b), err)
		}
		if _, _, ok, err := l.ReadChunk(0, false, 1<<20, true, 0, nil); err != nil || !ok {
			t.Fatalf("ReadChunk of an empty log: %v, %v", ok, err)
		}
		if _, ok, err := l.BatchForTimestamp(0); err != nil || ok {
			t.Fatalf("BatchForTimestamp of an empty log: %v, %v", ok, err)
		}
		if _, err := l.ApplyRetention(msTime(1 << 40)); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if start, end := l.StartOffset(), l.EndOffset(); start != 0 || end != 0 {
			t.Fatalf("offsets [%d, %d), want [0, 0)", start, end)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if count.ops != 0 {
		t.Fatalf("%d file-system changes, want none", count.ops)
	}
	if names, err := mem.ReadDirNames(restartDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the directory holds %v (%v), want no directory", names, err)
	}
}

// The first acknowledged append of a new log in durable mode survives a
// power loss: its files' directory entries were fsynced before it.
func TestNewLogFirstAppendSurvivesPowerLoss(t *testing.T) {
	mem := NewMemFS()
	cfg := Config{FlushMessages: 1}
	l := mustOpen(t, mem, restartDir, cfg)
	id := [16]byte{1, 2, 3}
	if err := l.AssignTopicID(id); err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, l, kvBatch(t, 1000, recordbatch.Options{}, recordbatch.NoProducer(), put("k", "v")), 1000)
	l.closeFiles() // the machine loses power
	mem.SimulateCrash()
	l = mustOpen(t, mem, restartDir, cfg)
	defer l.Close()
	// partition.metadata is not fsynced: the start repairs it.
	if err := l.AssignTopicID(id); err != nil {
		t.Fatal(err)
	}
	if meta, err := readFile(mem, restartDir+"/"+partitionMetaFile); err != nil || string(meta) != string(encodePartitionMeta(id)) {
		t.Fatalf("partition.metadata holds %q (%v)", meta, err)
	}
	got := readRecords(t, l)
	if len(got) != 1 || got[0].Offset != res.BaseOffset || string(got[0].Value) != "v" {
		t.Fatalf("read back %v, want the acknowledged record at %d", got, res.BaseOffset)
	}
}
