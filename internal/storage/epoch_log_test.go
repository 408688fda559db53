package storage

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func epochFile(t *testing.T, fsys FS, dir string) string {
	t.Helper()
	b, err := readFile(fsys, filepath.Join(dir, leaderEpochFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func appendAt(t *testing.T, l *Log, epoch int32, records int) AppendResult {
	t.Helper()
	res, err := l.Append(makeBatch(t, batchSpec{records: records, ts: time.Now().UnixMilli()}), time.Now(), epoch)
	if err != nil {
		t.Fatalf("Append at epoch %d: %v", epoch, err)
	}
	return res
}

// The leader's appends record each new epoch at its first offset, in
// leader-epoch-checkpoint as Kafka writes it, which survives a restart and
// a power loss.
func TestLeaderEpochsOfAppends(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l := mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
			if l.LatestEpoch() != -1 {
				t.Fatalf("new log's latest epoch %d", l.LatestEpoch())
			}
			for _, e := range []int32{0, 0, 2, 2, 2, 5} {
				appendAt(t, l, e, 3)
			}
			want := []epochEntry{{0, 0}, {2, 6}, {5, 15}}
			if got := l.epochEntries(); !slices.Equal(got, want) || l.LatestEpoch() != 5 {
				t.Fatalf("epochs %v latest %d, want %v", got, l.LatestEpoch(), want)
			}
			if got := epochFile(t, fsys, dir); got != "0\n3\n0 0\n2 6\n5 15\n" {
				t.Fatalf("leader-epoch-checkpoint %q", got)
			}
			for _, q := range [][4]int64{{0, 0, 6}, {1, 0, 6}, {2, 2, 15}, {4, 2, 15}, {5, 5, 18}, {6, -1, -1}, {-1, -1, -1}} {
				if e, o := l.EndOffsetForEpoch(int32(q[0])); e != int32(q[1]) || o != q[2] {
					t.Errorf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", q[0], e, o, q[1], q[2])
				}
			}
			// An older epoch is a stale leader's: Kafka's assign drops
			// the later entries to stay monotonic.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
			if got := l.epochEntries(); !slices.Equal(got, want) {
				t.Fatalf("reopened: epochs %v, want %v", got, want)
			}
			l.Close()
			if m, ok := fsys.(*MemFS); ok {
				l = mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
				appendAt(t, l, 7, 2)
				m.SimulateCrash() // no Close: the epoch file was synced at the append
				l = mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
				defer l.Close()
				got := l.epochEntries()
				// The batch at epoch 7 was not fsynced: the entry goes with it.
				if l.EndOffset() == 18 && !slices.Equal(got, want) || l.EndOffset() == 20 && !slices.Equal(got, append(want, epochEntry{7, 18})) {
					t.Fatalf("after a crash at end %d: epochs %v", l.EndOffset(), got)
				}
			}
		})
	}
}

// Without its file (a log from before leader epochs were kept, or a lost
// or damaged file) the cache is rebuilt from the batches; recovery that
// cuts a torn tail cuts the cache too.
func TestLeaderEpochsRebuilt(t *testing.T) {
	fsys := NewMemFS()
	dir := "/d/t-0"
	l := mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
	for _, e := range []int32{1, 1, 3, 3, 4} {
		appendAt(t, l, e, 3)
	}
	want := l.epochEntries()
	l.Close()
	for _, damage := range []func(){
		func() { fsys.Remove(filepath.Join(dir, leaderEpochFile)) },
		func() { writeSynced(t, fsys, filepath.Join(dir, leaderEpochFile), "0\n2\n1 0\n") },
		func() { writeSynced(t, fsys, filepath.Join(dir, leaderEpochFile), "garbage") },
	} {
		damage()
		l = mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
		if got := l.epochEntries(); !slices.Equal(got, want) {
			t.Fatalf("rebuilt %v, want %v", got, want)
		}
		l.Close()
		if got := epochFile(t, fsys, dir); got != string(encodeEpochCheckpoint(want)) {
			t.Fatalf("file after rebuild %q", got)
		}
	}

	// A torn write at epoch 6 after an unclean shutdown: recovery drops it
	// and the cache entry the append wrote first.
	l = mustOpen(t, fsys, dir, Config{SegmentBytes: 4000})
	end := l.EndOffset()
	appendAt(t, l, 6, 2)
	segs := segmentBases(t, l)
	fsys.SimulateCrash()
	appendFile(t, fsys, offsetFileName(dir, segs[len(segs)-1], extLog), []byte("torn"))
	l = mustOpen(t, fsys, dir, Config{SegmentBytes: 4000})
	defer l.Close()
	got := l.epochEntries()
	if l.EndOffset() == end && !slices.Equal(got, want) || l.EndOffset() > end && got[len(got)-1] != (epochEntry{6, end}) {
		t.Fatalf("after recovery to %d: %v", l.EndOffset(), got)
	}
}

// The damaged-file case must rebuild, not keep the damaged entries.
func TestLeaderEpochsRebuiltFromBatches(t *testing.T) {
	fsys := NewMemFS()
	dir := "/d/t-0"
	l := mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
	for _, e := range []int32{1, 1, 3, 3, 4} {
		appendAt(t, l, e, 3)
	}
	want := l.epochEntries()
	l.Close()
	for _, content := range []string{"", "garbage", "0\n1\n9 0\n"} {
		if content == "" {
			fsys.Remove(filepath.Join(dir, leaderEpochFile))
		} else {
			writeSynced(t, fsys, filepath.Join(dir, leaderEpochFile), content)
		}
		// Recovery (unclean) of every segment rebuilds from the batches;
		// a file the clean shutdown vouches for is trusted, except a
		// missing or unreadable one.
		fsys.Remove(filepath.Join(dir, cleanShutdownFile))
		fsys.Remove(filepath.Join(dir, recoveryPointFile))
		l = mustOpen(t, fsys, dir, Config{SegmentBytes: 400})
		if got := l.epochEntries(); !slices.Equal(got, want) {
			t.Fatalf("file %q: rebuilt %v, want %v", content, got, want)
		}
		l.Close()
	}
}

func TestLeaderEpochsFollowLogStart(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, "/d/t-0", Config{SegmentBytes: 300, RetentionBytes: 200, RetentionMs: -1})
	defer l.Close()
	for _, e := range []int32{1, 1, 2, 2, 3, 3, 3, 3} {
		appendAt(t, l, e, 3)
	}
	if _, err := l.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if got, want := l.epochEntries(), []epochEntry{{1, 4}, {2, 6}, {3, 12}}; !slices.Equal(got, want) {
		t.Fatalf("after DeleteRecords(4): %v, want %v", got, want)
	}
	if _, err := l.ApplyRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	start := l.StartOffset()
	if start <= 12 {
		t.Fatalf("retention kept from %d; the test wants it past epoch 3's start", start)
	}
	want := []epochEntry{{3, start}}
	if got := l.epochEntries(); !slices.Equal(got, want) {
		t.Fatalf("after retention to %d: %v, want %v", start, got, want)
	}
	if got := epochFile(t, l.fsys, l.dir); got != string(encodeEpochCheckpoint(want)) {
		t.Fatalf("file %q", got)
	}
}

// A failed append leaves the published cache as it was, and the entry it
// wrote to the file first is cut at the next Open.
func TestLeaderEpochFailedAppend(t *testing.T) {
	f := &faultFS{FS: NewMemFS()}
	l := mustOpen(t, f, "/d/t-0", Config{})
	appendAt(t, l, 1, 3)
	f.set(func(f *faultFS) { f.shortWrite = true })
	if _, err := l.Append(makeBatch(t, batchSpec{records: 2}), time.Now(), 2); !errors.Is(err, errInjected) {
		t.Fatalf("append with a short write: %v", err)
	}
	want := []epochEntry{{1, 0}}
	if got := l.epochEntries(); !slices.Equal(got, want) || l.LatestEpoch() != 1 {
		t.Fatalf("after the failed append: %v", got)
	}
	if e, o := l.EndOffsetForEpoch(1); e != 1 || o != 3 {
		t.Fatalf("EndOffsetForEpoch(1) = (%d, %d)", e, o)
	}
	l.Close()
	l = mustOpen(t, f, "/d/t-0", Config{})
	defer l.Close()
	if got := l.epochEntries(); !slices.Equal(got, want) {
		t.Fatalf("reopened: %v", got)
	}
}

// A leader assigns its epoch at its log end when it becomes leader, so a
// replica of the epoch before learns where it ended (KIP-279).
func TestAssignLeaderEpoch(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, "/d/t-0", Config{})
	defer l.Close()
	if e, o := l.EndOffsetForEpochAsLeader(0, 0); e != 0 || o != 0 {
		t.Fatalf("empty log as leader of 0: (%d, %d)", e, o)
	}
	if names, _ := fsys.ReadDirNames("/d/t-0"); len(names) != 0 {
		t.Fatalf("a read created %v", names)
	}
	appendAt(t, l, 1, 4)
	for _, q := range [][3]int32{{1, 1, 4}, {3, -1, -1}} {
		if e, o := l.EndOffsetForEpoch(q[0]); e != q[1] || o != int64(q[2]) {
			t.Errorf("before: EndOffsetForEpoch(%d) = (%d, %d)", q[0], e, o)
		}
	}
	if e, o := l.EndOffsetForEpochAsLeader(3, 2); e != 1 || o != 4 {
		t.Errorf("as leader of 3, epoch 2: (%d, %d), want (1, 4)", e, o)
	}
	if err := l.AssignLeaderEpoch(3); err != nil {
		t.Fatal(err)
	}
	if err := l.AssignLeaderEpoch(3); err != nil {
		t.Fatal(err)
	}
	if got, want := l.epochEntries(), []epochEntry{{1, 0}, {3, 4}}; !slices.Equal(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
	for _, q := range [][3]int32{{1, 1, 4}, {2, 1, 4}, {3, 3, 4}, {4, -1, -1}} {
		if e, o := l.EndOffsetForEpoch(q[0]); e != q[1] || o != int64(q[2]) {
			t.Errorf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", q[0], e, o, q[1], q[2])
		}
	}
	appendAt(t, l, 3, 2)
	if got, want := l.epochEntries(), []epochEntry{{1, 0}, {3, 4}}; !slices.Equal(got, want) {
		t.Fatalf("after an append: %v, want %v", got, want)
	}
	// A truncation at the end (a follower again) cuts an epoch that wrote
	// nothing, as Kafka's truncateTo does.
	if err := l.AssignLeaderEpoch(4); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if got, want := l.epochEntries(), []epochEntry{{1, 0}, {3, 4}}; !slices.Equal(got, want) {
		t.Fatalf("after TruncateTo(end): %v, want %v", got, want)
	}
}

// Truncation is durable: a power loss right after it brings back none of
// what it removed.
func TestTruncateToCrash(t *testing.T) {
	fsys := NewMemFS()
	leader := mustOpen(t, fsys, "/d/leader-0", Config{})
	steps := leaderBatches(t, leader)
	all := rawLog(t, leader)
	leader.Close()
	for _, off := range steps[1:] {
		f := mustOpen(t, fsys, "/d/f-0", Config{SegmentBytes: 250, FlushMessages: 1})
		if _, err := f.AppendAsFollower(bytes.Clone(all), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := f.TruncateTo(off); err != nil {
			t.Fatal(err)
		}
		want := stateOf(f)
		fsys.SimulateCrash()
		f = mustOpen(t, fsys, "/d/f-0", Config{SegmentBytes: 250})
		if got := stateOf(f); !got.equal(want) {
			t.Fatalf("TruncateTo(%d) then a crash:\n%+v\nwant\n%+v", off, got, want)
		}
		if got := rawLog(t, f); !bytes.Equal(got, all[:bytePos(t, all, off)]) {
			t.Fatalf("TruncateTo(%d) then a crash: %d bytes, want %d", off, len(got), bytePos(t, all, off))
		}
		if err := f.Delete(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTruncateToEdges(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, "/d/t-0", Config{SegmentBytes: 300})
	defer l.Close()
	for _, e := range []int32{1, 1, 2, 2, 3} {
		appendAt(t, l, e, 3) // batches at 0, 3, 6, 9, 12
	}
	// Mid-batch: the batch holding the offset goes whole.
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 9 {
		t.Fatalf("TruncateTo(10) left end %d, want 9", l.EndOffset())
	}
	if got, want := l.epochEntries(), []epochEntry{{1, 0}, {2, 6}}; !slices.Equal(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
	// Beyond the end: nothing.
	if err := l.TruncateTo(100); err != nil || l.EndOffset() != 9 {
		t.Fatalf("TruncateTo(100): %v, end %d", err, l.EndOffset())
	}
	// Below the log start: the start comes down with the end.
	if _, err := l.DeleteRecordsBefore(7); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(8); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 6 || l.EndOffset() != 6 {
		t.Fatalf("TruncateTo(8) below start 7: start %d end %d, want 6 6", l.StartOffset(), l.EndOffset())
	}
	if got, want := l.epochEntries(), []epochEntry{{2, 6}}; len(got) != 0 {
		t.Fatalf("epochs %v of an empty log, want none (%v went with the end)", got, want)
	}
	// Below the first segment: Kafka's truncateFullyAndStartAt.
	if err := l.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 4 || l.EndOffset() != 4 || !slices.Equal(segmentBases(t, l), []int64{4}) {
		t.Fatalf("TruncateTo(4) below the first segment: start %d end %d segments %v", l.StartOffset(), l.EndOffset(), segmentBases(t, l))
	}
	if res := appendAt(t, l, 4, 2); res.BaseOffset != 4 {
		t.Fatalf("append after: base %d", res.BaseOffset)
	}
	l.Close()
	l = mustOpen(t, fsys, "/d/t-0", Config{SegmentBytes: 300})
	if l.StartOffset() != 4 || l.EndOffset() != 6 {
		t.Fatalf("reopened: start %d end %d, want 4 6", l.StartOffset(), l.EndOffset())
	}
	if got, want := l.epochEntries(), []epochEntry{{4, 4}}; !slices.Equal(got, want) {
		t.Fatalf("reopened epochs %v, want %v", got, want)
	}
	if err := l.TruncateTo(-1); err == nil {
		t.Fatal("TruncateTo(-1) succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("TruncateTo on a closed log: %v", err)
	}
}

// Gaps, as a compacted leader's log has, are taken as they come.
func TestAppendAsFollowerGap(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, "/d/t-0", Config{})
	b := makeBatch(t, batchSpec{records: 2})
	assignOffsets(b, 10, 3, -1)
	if _, err := l.AppendAsFollower(b, time.Now()); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 12 || l.LatestEpoch() != 3 {
		t.Fatalf("end %d latest epoch %d", l.EndOffset(), l.LatestEpoch())
	}
	got, err := l.Read(0, 1<<20, true, nil)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Read(0) = %d bytes, %v", len(got), err)
	}
	l.Close()
	l = mustOpen(t, fsys, "/d/t-0", Config{})
	defer l.Close()
	if l.EndOffset() != 12 {
		t.Fatalf("reopened end %d", l.EndOffset())
	}
}

// Readers running beside follower appends and truncations see whole
// batches below the end offset, never bytes a truncation removed.
func TestConcurrentReadsDuringTruncation(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 2000, IndexIntervalBytes: 100})
	defer l.Close()
	src := mustOpen(t, NewMemFS(), "/d/src-0", Config{})
	defer src.Close()
	for i := range 60 {
		appendAt(t, src, int32(i/10), 1+i%4)
	}
	all := rawLog(t, src)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range 40 {
			if end := l.EndOffset(); end < src.EndOffset() {
				pos := bytePos(t, all, end)
				next := bytePos(t, all, end+int64(1+i%30))
				if _, err := l.AppendAsFollower(bytes.Clone(all[pos:max(next, pos+1)]), time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
			if i%3 == 2 {
				if err := l.TruncateTo(l.EndOffset() / 2); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				b, err := l.Read(0, 1<<20, true, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if len(b) > 0 && !bytes.Equal(b, all[:len(b)]) {
					t.Error("a reader saw bytes the source does not have")
					return
				}
				l.EndOffsetForEpoch(2)
				l.AbortedTransactions(0, 1000)
			}
		}()
	}
	wg.Wait()
}
