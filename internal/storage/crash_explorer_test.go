package storage

// Issue 24: the crash-point explorer. A workload (idempotent appends that
// roll segments, an aborted, a committed and an open transaction,
// DeleteRecords, Close) dies at each of its file-system operations in turn,
// then the machine loses power (or not) in each crash mode, and the log
// reopened from what is left must keep its promises: every acknowledged
// batch byte for byte at its offset, the acknowledged log start offset, an
// LSO and aborted-transaction index that match the batches, and retries of
// the last acknowledged batches deduplicated. go test runs every 11th
// crash point; KAFKIT_CRASH_EXHAUSTIVE=1 runs them all.

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// crashFS fails the crashAt-th mutating operation (counting from 1) and
// every operation after it, as a process that died there; crashAt 0 only
// counts.
type crashFS struct {
	FS
	mu      sync.Mutex // guards the fields below
	ops     int
	crashAt int
}

var errCrashed = fmt.Errorf("crashed: %w", errInjected)

// op counts a mutating operation and reports whether the process is dead.
func (c *crashFS) op() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops++
	if c.crashAt > 0 && c.ops >= c.crashAt {
		return errCrashed
	}
	return nil
}

func (c *crashFS) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashAt > 0 && c.ops >= c.crashAt
}

func (c *crashFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := c.op(); err != nil {
			return nil, err
		}
	} else if c.dead() {
		return nil, errCrashed
	}
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, c: c}, nil
}

func (c *crashFS) Remove(name string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.Remove(name)
}

func (c *crashFS) Rename(oldpath, newpath string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.Rename(oldpath, newpath)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.SyncDir(dir)
}

type crashFile struct {
	File
	c *crashFS
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.c.op(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *crashFile) Sync() error {
	if err := f.c.op(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *crashFile) Truncate(size int64) error {
	if err := f.c.op(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// crashAcks is what the workload had acknowledged when it died.
type crashAcks struct {
	stored    map[int64][]byte // base offset → batch as stored
	retries   [][]byte         // pid 1's acknowledged batches, as sent
	logStart  int64            // acknowledged DeleteRecords offset
	endOffset int64            // after the last acknowledged append
}

var crashCfg = Config{SegmentBytes: 700, IndexIntervalBytes: 200, FlushMessages: 1}

// crashWorkload runs the workload on fsys until an operation fails.
func crashWorkload(t *testing.T, fsys FS, dir string) crashAcks {
	acks := crashAcks{stored: map[int64][]byte{}}
	l, err := Open(fsys, dir, crashCfg, nil)
	if err != nil {
		return acks
	}
	defer func() {
		if l != nil {
			l.closeFiles()
		}
	}()
	now := time.Now()
	appendBatch := func(b []byte, retry bool) bool {
		sent := slices.Clone(b)
		res, err := l.Append(b, now, 0)
		if err != nil {
			return false
		}
		acks.stored[res.BaseOffset] = slices.Clone(b)
		acks.endOffset = res.LastOffset + 1
		if retry {
			acks.retries = append(acks.retries, sent)
		}
		return true
	}
	marker := func(pid int64, commit bool) bool {
		off, err := l.WriteMarker(pid, 0, commit, 0, -1)
		if err == nil {
			acks.endOffset = off + 1
		}
		return err == nil
	}
	ts := now.UnixMilli()
	for i := range 24 {
		if !appendBatch(makeBatch(t, batchSpec{pid: 1, seq: int32(2 * i), records: 2, valueSize: 40, ts: ts, tag: byte(i)}), true) {
			return acks
		}
		var ok bool
		switch i {
		case 4: // an aborted transaction
			ok = appendBatch(makeBatch(t, batchSpec{pid: 2, attrs: attrTransactional, valueSize: 30, ts: ts}), false) && marker(2, false)
		case 8: // a committed one
			ok = appendBatch(makeBatch(t, batchSpec{pid: 3, attrs: attrTransactional, valueSize: 30, ts: ts}), false) && marker(3, true)
		case 12:
			start, err := l.DeleteRecordsBefore(acks.endOffset - 6)
			if ok = err == nil; ok {
				acks.logStart = start
			}
		case 10: // a clean restart: the marker goes before the next write (issue 16)
			ok = l.Close() == nil
			if ok {
				l, err = Open(fsys, dir, crashCfg, nil)
				ok = err == nil
			}
		case 16: // one left open
			ok = appendBatch(makeBatch(t, batchSpec{pid: 4, attrs: attrTransactional, valueSize: 30, ts: ts}), false)
		default:
			ok = true
		}
		if !ok {
			return acks
		}
	}
	l.Close()
	return acks
}

// checkAfterCrash reopens the log and checks the invariants against acks.
func checkAfterCrash(t *testing.T, fsys FS, dir string, acks crashAcks) {
	t.Helper()
	l, err := Open(fsys, dir, crashCfg, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	start, end := l.StartOffset(), l.EndOffset()
	if start < acks.logStart {
		t.Fatalf("log start offset %d, below the acknowledged %d", start, acks.logStart)
	}
	if end < acks.endOffset {
		t.Fatalf("log end offset %d, below the acknowledged %d", end, acks.endOffset)
	}
	for base, want := range acks.stored {
		if base < start {
			continue
		}
		got, err := l.Read(base, 1<<20, true, nil)
		if err != nil || !bytes.HasPrefix(got, want) {
			t.Fatalf("acknowledged batch at %d: read %d bytes (%v), not the %d stored", base, len(got), err, len(want))
		}
	}
	// The LSO and the aborted transactions must match the batches.
	open := map[int64]int64{} // pid → first offset of its open transaction
	var aborts []int64        // producers of the abort markers from start
	for _, b := range readAll(t, l, start) {
		switch {
		case b.Attributes&attrControl != 0:
			if commit, _, err := parseMarker(b.AppendTo(nil)); err != nil {
				t.Fatal(err)
			} else if !commit && b.FirstOffset >= start {
				aborts = append(aborts, b.ProducerID)
			}
			delete(open, b.ProducerID)
		case b.Attributes&attrTransactional != 0:
			if _, ok := open[b.ProducerID]; !ok {
				open[b.ProducerID] = b.FirstOffset
			}
		}
	}
	wantLSO := end
	for _, first := range open {
		wantLSO = min(wantLSO, max(first, start))
	}
	if lso := l.LastStableOffset(); lso != wantLSO {
		t.Fatalf("LSO %d, want %d (open transactions %v, log [%d, %d))", lso, wantLSO, open, start, end)
	}
	var got []int64
	for _, a := range l.AbortedTransactions(start, end) {
		got = append(got, a.ProducerID)
	}
	if !slices.Equal(got, aborts) {
		t.Fatalf("aborted transactions of producers %v, want %v (the abort markers from %d)", got, aborts, start)
	}
	// Retries of the last acknowledged batches are duplicates (at most one
	// unacknowledged batch of the producer may have survived after them).
	retries := acks.retries[max(len(acks.retries)-maxProducerBatches+1, 0):]
	for _, b := range retries {
		res, err := l.Append(slices.Clone(b), time.Now(), 0)
		if err != nil || !res.Duplicate {
			t.Fatalf("retry of an acknowledged batch: %+v, %v; want a duplicate", res, err)
		}
	}
}

// crashModes are what is left of the MemFS after the process died.
var crashModes = []struct {
	name  string
	apply func(*MemFS)
}{
	{"process", func(*MemFS) {}}, // the kernel survives: nothing is lost
	{"power", (*MemFS).SimulateCrash},
	{"power-keep-dir-ops", func(m *MemFS) { m.SimulateCrashKeeping(-1) }},
	{"power-keep-one-dir-op", func(m *MemFS) { m.SimulateCrashKeeping(1) }},
}

func TestCrashPointExplorer(t *testing.T) {
	count := &crashFS{FS: NewMemFS()}
	crashWorkload(t, count, "/d/t-0")
	total := count.ops
	step := 11
	if os.Getenv("KAFKIT_CRASH_EXHAUSTIVE") != "" {
		step = 1
	}
	runs := 0
	for at := 1; at <= total; at += step {
		for _, mode := range crashModes {
			mem := NewMemFS()
			acks := crashWorkload(t, &crashFS{FS: mem, crashAt: at}, "/d/t-0")
			mode.apply(mem)
			t.Run(fmt.Sprintf("op%d/%s", at, mode.name), func(t *testing.T) {
				checkAfterCrash(t, mem, "/d/t-0", acks)
			})
			runs++
		}
	}
	t.Logf("%d file-system operations, %d crash runs", total, runs)
}

// compactCrashWorkload appends keyed records to a compacted log and cleans
// it twice (the swaps rename over existing files), until an operation
// fails; it returns the acknowledged records by offset.
func compactCrashWorkload(t *testing.T, fsys FS, dir string) produced {
	acked := produced{}
	cfg := compactCfg()
	cfg.FlushMessages = 1
	l, err := Open(fsys, dir, cfg, nil)
	if err != nil {
		return acked
	}
	defer l.closeFiles()
	for round := range 2 {
		// The second round leaves keys 3 and 4 alone: their latest records
		// are in cleaned segments that the second Clean merges.
		for i := range 20 {
			r := put(fmt.Sprint(i%(5-2*round)), fmt.Sprint(round, i))
			res, err := l.Append(kvBatch(t, 1000, recordbatch.Options{}, recordbatch.NoProducer(), r), msTime(1000), 0)
			if err != nil {
				return acked
			}
			acked[res.BaseOffset] = r
		}
		if err := l.roll(msTime(1000)); err != nil {
			return acked
		}
		if _, err := l.Clean(msTime(2000)); err != nil {
			return acked
		}
	}
	l.Close()
	return acked
}

// checkCompactedAfterCrash: every record read back is the one acknowledged
// at its offset (at most one unacknowledged append may have survived, past
// the acknowledged ones), and each key's latest acknowledged record is
// there; a Clean after the reopen works.
func checkCompactedAfterCrash(t *testing.T, fsys FS, dir string, acked produced) {
	t.Helper()
	cfg := compactCfg()
	cfg.FlushMessages = 1
	l, err := Open(fsys, dir, cfg, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	check := func() {
		got := map[int64]kv{}
		for _, r := range readRecords(t, l) {
			got[r.Offset] = kv{r.Key, r.Value}
			if want, ok := acked[r.Offset]; ok && (string(want.key) != string(r.Key) || string(want.value) != string(r.Value)) {
				t.Fatalf("offset %d holds %s=%s, acknowledged %s=%s", r.Offset, r.Key, r.Value, want.key, want.value)
			}
		}
		latest := map[string]int64{}
		for off, r := range acked {
			if cur, ok := latest[string(r.key)]; !ok || off > cur {
				latest[string(r.key)] = off
			}
		}
		for key, off := range latest {
			if _, ok := got[off]; !ok {
				t.Fatalf("key %s: its latest acknowledged record at %d is gone", key, off)
			}
		}
	}
	check()
	if _, err := l.Clean(msTime(3000)); err != nil {
		t.Fatalf("Clean after the reopen: %v", err)
	}
	check()
}

func TestCrashPointExplorerCompaction(t *testing.T) {
	count := &crashFS{FS: NewMemFS()}
	compactCrashWorkload(t, count, "/d/t-0")
	total := count.ops
	step := 11
	if os.Getenv("KAFKIT_CRASH_EXHAUSTIVE") != "" {
		step = 1
	}
	runs := 0
	for at := 1; at <= total; at += step {
		for _, mode := range crashModes {
			mem := NewMemFS()
			acked := compactCrashWorkload(t, &crashFS{FS: mem, crashAt: at}, "/d/t-0")
			mode.apply(mem)
			t.Run(fmt.Sprintf("op%d/%s", at, mode.name), func(t *testing.T) {
				checkCompactedAfterCrash(t, mem, "/d/t-0", acked)
			})
			runs++
		}
	}
	t.Logf("%d file-system operations, %d crash runs", total, runs)
}
