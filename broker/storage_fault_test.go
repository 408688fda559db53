package broker

import (
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit/internal/storage"
	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
)

// enospcFS fails every write to files under dir with ENOSPC while full is
// set: a disk that filled up under one partition.
type enospcFS struct {
	storage.FS
	dir  string
	full atomic.Bool
}

func (f *enospcFS) OpenFile(name string, flag int, perm fs.FileMode) (storage.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasPrefix(name, f.dir+"/") {
		return file, err
	}
	return &enospcFile{File: file, fs: f, name: name}, nil
}

type enospcFile struct {
	storage.File
	fs   *enospcFS
	name string
}

func (f *enospcFile) WriteAt(b []byte, off int64) (int, error) {
	if f.fs.full.Load() {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(b, off)
}

// TestStorageFaultAnsweredPerPartition: a full disk under one partition
// (ENOSPC through the storage FS seam) answers its produces with
// KAFKA_STORAGE_ERROR, logs the cause once with the partition, and leaves
// the other partitions working; the partition works again once space is
// back.
func TestStorageFaultAnsweredPerPartition(t *testing.T) {
	var logs syncbuf.Buffer
	var faulty *enospcFS
	b := NewTest(t, OnDisk(), WithConfig(func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.DataDir = t.TempDir()
		faulty = &enospcFS{dir: c.DataDir + "/full-1"}
		c.wrapFS = func(fsys storage.FS) storage.FS { faulty.FS = fsys; return faulty }
	}))
	createTestTopic(t, b, "full", 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordRetries(0), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	faulty.full.Store(true)
	for range 3 {
		err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "full", Partition: 1, Value: []byte("v")}).FirstErr()
		if err != kerr.KafkaStorageError {
			t.Fatalf("produce to the full partition: %v, want KAFKA_STORAGE_ERROR", err)
		}
		produceTo(t, cl, "full", 0, 1)
	}
	if n := strings.Count(logs.String(), "storage fault"); n != 1 || !strings.Contains(logs.String(), "topic=full partition=1") || !strings.Contains(logs.String(), "no space left on device") {
		t.Fatalf("%d storage fault lines, want 1 naming full-1 and ENOSPC:\n%s", n, logs.String())
	}
	faulty.full.Store(false)
	produceTo(t, cl, "full", 1, 1)
	if got := b.topics.partition("full", 0).log.EndOffset(); got != 3 {
		t.Errorf("healthy partition holds %d records, want 3", got)
	}
	if got := b.topics.partition("full", 1).log.EndOffset(); got != 1 {
		t.Errorf("recovered partition holds %d records, want 1", got)
	}
}
