package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// kv is one record of a test batch; a nil value is a tombstone.
type kv struct {
	key, value []byte
}

func put(k, v string) kv    { return kv{[]byte(k), []byte(v)} }
func tombstone(k string) kv { return kv{key: []byte(k)} }

// kvBatch builds a batch with recordbatch's Builder (not the cleaner's
// encoder) at timestamp ts.
func kvBatch(t testing.TB, ts int64, opts recordbatch.Options, p recordbatch.Producer, recs ...kv) []byte {
	t.Helper()
	b := recordbatch.NewBuilder(opts, 256)
	for _, r := range recs {
		b.Append(ts, r.key, r.value, nil)
	}
	out, err := b.Finish(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readRecords decodes every record of the log, control batches left out,
// reading from every offset the previous batch left off at.
func readRecords(t testing.TB, l *Log) []kafkit.Record {
	t.Helper()
	var out []kafkit.Record
	for off := l.StartOffset(); off < l.EndOffset(); {
		b, err := l.Read(off, 1<<20, true, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing below the end %d", off, l.EndOffset())
		}
		r := recordbatch.NewReader(b, recordbatch.ReadOptions{VerifyCRC: true})
		var batch recordbatch.Batch
		for r.Next(&batch) {
			if !batch.Attributes.Control() {
				for _, rec := range batch.Records {
					if rec.Offset >= off {
						rec.Key, rec.Value = slices.Clone(rec.Key), slices.Clone(rec.Value)
						out = append(out, rec)
					}
				}
			}
			off = batch.NextOffset()
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
	}
	return out
}

func compactCfg() Config {
	return Config{SegmentBytes: 600, CleanupPolicy: CleanupCompact, IndexIntervalBytes: 100}
}

// produced is what a test appended: the record at each offset.
type produced map[int64]kv

// appendKVs appends one single-record batch per kv at timestamp ts.
func appendKVs(t testing.TB, l *Log, ts int64, got produced, recs ...kv) {
	t.Helper()
	for _, r := range recs {
		res := mustAppend(t, l, kvBatch(t, ts, recordbatch.Options{}, recordbatch.NoProducer(), r), ts)
		got[res.BaseOffset] = r
	}
}

// wantCompacted is the records a clean up to offset upTo keeps: below it
// the latest per key (tombstones too, unless dropTombstones), all above.
func wantCompacted(p produced, upTo int64, dropTombstones bool) []kv {
	latest := map[string]int64{}
	for off, r := range p {
		if cur, ok := latest[string(r.key)]; off < upTo && (!ok || off > cur) {
			latest[string(r.key)] = off
		}
	}
	offs := slices.Sorted(func(yield func(int64) bool) {
		for off := range p {
			if !yield(off) {
				return
			}
		}
	})
	var out []kv
	for _, off := range offs {
		r := p[off]
		if off < upTo && (latest[string(r.key)] != off || (dropTombstones && r.value == nil)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func checkRecords(t *testing.T, l *Log, p produced, want []kv) {
	t.Helper()
	got := readRecords(t, l)
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if string(r.Key) != string(want[i].key) || (r.Value == nil) != (want[i].value == nil) || string(r.Value) != string(want[i].value) {
			t.Fatalf("record %d at offset %d: %s=%q, want %s=%q", i, r.Offset, r.Key, r.Value, want[i].key, want[i].value)
		}
		if orig := p[r.Offset]; string(orig.key) != string(r.Key) || string(orig.value) != string(r.Value) {
			t.Fatalf("record at offset %d moved: it is %s=%q, was %s=%q", r.Offset, r.Key, r.Value, orig.key, orig.value)
		}
	}
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l := mustOpen(t, fsys, dir, compactCfg())
			defer func() { l.Close() }()
			p := produced{}
			for i := range 120 {
				appendKVs(t, l, 1000, p, put(fmt.Sprintf("key%d", i%4), fmt.Sprintf("v%d", i)))
			}
			before := len(segmentBases(t, l))
			end := l.EndOffset()
			if ratio, due := l.Cleanable(msTime(2000)); !due || ratio != 1 {
				t.Fatalf("Cleanable = %v, %v; want 1, true", ratio, due)
			}
			st, err := l.Clean(msTime(2000))
			if err != nil {
				t.Fatal(err)
			}
			if st.FirstUncleanable != segmentBases(t, l)[len(segmentBases(t, l))-1] || st.RecordsRemoved == 0 {
				t.Fatalf("stats %+v", st)
			}
			if l.EndOffset() != end || l.StartOffset() != 0 {
				// The first segment stays (empty or not) so that consumers
				// at the start offset are not sent out of range.
				t.Fatalf("offsets [%d, %d), want [0, %d)", l.StartOffset(), l.EndOffset(), end)
			}
			want := wantCompacted(p, st.FirstUncleanable, false)
			checkRecords(t, l, p, want)
			checkGapReads(t, l, p)
			if _, due := l.Cleanable(msTime(2000)); due {
				t.Fatal("due right after cleaning")
			}
			// A second pass removes nothing, and groups the segments that
			// the first pass made small.
			if st, err := l.Clean(msTime(2000)); err != nil || st.RecordsRemoved != 0 {
				t.Fatalf("second Clean: %+v, %v", st, err)
			}
			if after := len(segmentBases(t, l)); after >= before {
				t.Fatalf("%d segments after cleaning, %d before: want them grouped", after, before)
			}
			checkRecords(t, l, p, want)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, fsys, dir, compactCfg())
			checkRecords(t, l, p, want)
			checkIndexes(t, l)
		})
	}
}

// TestCleanStopsAtHighWatermark: a replica's records at or above the high
// watermark may still be truncated, so the cleaner leaves the segments that
// reach it alone, as Kafka's LogCleanerManager bounds cleaning by the last
// stable offset and so by the high watermark. Cleaning key0's committed
// record away for a newer one above it, then truncating that one, would
// lose key0.
func TestCleanStopsAtHighWatermark(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", compactCfg())
	defer l.Close()
	p := produced{}
	for i := range 120 {
		appendKVs(t, l, 1000, p, put(fmt.Sprintf("key%d", i%4), fmt.Sprintf("v%d", i)))
	}
	bases := segmentBases(t, l)
	if len(bases) < 4 {
		t.Fatalf("%d segments, want at least 4", len(bases))
	}
	l.SetHighWatermark(bases[2] + 1) // within the third segment
	if _, err := l.Clean(msTime(2000)); err != nil {
		t.Fatal(err)
	}
	l.SetHighWatermark(l.EndOffset()) // to read everything back
	checkRecords(t, l, p, wantCompacted(p, bases[2], false))

	// With the high watermark at the end, cleaning reaches the active
	// segment.
	if ratio, due := l.Cleanable(msTime(2000)); !due || ratio <= 0 {
		t.Fatalf("Cleanable with the high watermark at the end = %v, %v; want due", ratio, due)
	}
	st, err := l.Clean(msTime(2000))
	if err != nil {
		t.Fatal(err)
	}
	if active := bases[len(bases)-1]; st.FirstUncleanable != active {
		t.Fatalf("cleaned up to %d, want the active segment's base %d", st.FirstUncleanable, active)
	}
	checkRecords(t, l, p, wantCompacted(p, st.FirstUncleanable, false))
}

// checkGapReads reads at every offset, removed ones included: the first
// record returned at or after it is the next record kept.
func checkGapReads(t *testing.T, l *Log, p produced) {
	t.Helper()
	kept := readRecords(t, l)
	for off := l.StartOffset(); off < l.EndOffset(); off++ {
		b, err := l.Read(off, 1<<20, true, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		recs, err := recordbatch.ReadRecords(nil, b, recordbatch.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(recs, func(r kafkit.Record) bool { return r.Offset >= off })
		j := slices.IndexFunc(kept, func(r kafkit.Record) bool { return r.Offset >= off })
		if i < 0 || j < 0 || recs[i].Offset != kept[j].Offset {
			t.Fatalf("Read(%d) does not start at the next kept record", off)
		}
	}
}

// checkIndexes compares every segment's index files with the indexes its
// batches call for.
func checkIndexes(t *testing.T, l *Log) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segments {
		index, tindex, err := s.readIndexes(s.size)
		if err != nil {
			t.Fatalf("segment %d: %v", s.base, err)
		}
		// scanIndexes computes what a segment without indexes would get.
		saved := s.tindex
		s.tindex = nil
		wantIndex, wantTindex, err := s.scanIndexes()
		s.tindex = saved
		if err != nil {
			t.Fatal(err)
		}
		if s != l.segments[len(l.segments)-1] && (!slices.Equal(index, wantIndex) || !slices.Equal(tindex, wantTindex)) {
			t.Fatalf("segment %d: index %v %v, want %v %v", s.base, index, tindex, wantIndex, wantTindex)
		}
	}
}

func TestCleanTombstones(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			cfg := compactCfg()
			cfg.DeleteRetentionMs = time.Hour
			l := mustOpen(t, fsys, dir, cfg)
			defer l.Close()
			p := produced{}
			appendKVs(t, l, 1000, p, put("gone", "x"), put("stay", "1"), tombstone("gone"))
			for i := range 40 {
				appendKVs(t, l, 1000, p, put("filler", fmt.Sprint(i)))
			}
			hasGone := func() bool {
				return slices.ContainsFunc(readRecords(t, l), func(r kafkit.Record) bool { return string(r.Key) == "gone" })
			}
			// First pass, long after the tombstone's own timestamp: it stays,
			// and delete.retention.ms counts from now (KIP-534, issue 24
			// case 4).
			first := 1000 + 2*time.Hour.Milliseconds()
			if _, err := l.Clean(msTime(first)); err != nil {
				t.Fatal(err)
			}
			if !hasGone() {
				t.Fatal("tombstone removed by the pass that first cleaned it")
			}
			// Without new writes the log becomes due when the kept
			// tombstone may go.
			if _, due := l.Cleanable(msTime(first + time.Hour.Milliseconds() - 1)); due {
				t.Fatal("due before delete.retention.ms after the first cleaning ended")
			}
			if _, due := l.Cleanable(msTime(first + time.Hour.Milliseconds())); !due {
				t.Fatal("not due when delete.retention.ms after the first cleaning ended")
			}
			// Cleaned, but less than delete.retention.ms ago: stays.
			if _, err := l.Clean(msTime(first + time.Hour.Milliseconds() - 1)); err != nil {
				t.Fatal(err)
			}
			if !hasGone() {
				t.Fatal("tombstone removed before delete.retention.ms after its first cleaning")
			}
			st, err := l.Clean(msTime(first + time.Hour.Milliseconds() + 1))
			if err != nil {
				t.Fatal(err)
			}
			if hasGone() {
				t.Fatal("tombstone kept after delete.retention.ms")
			}
			if _, due := l.Cleanable(msTime(first + 10*time.Hour.Milliseconds())); due {
				t.Fatal("due with nothing left to remove")
			}
			checkRecords(t, l, p, wantCompacted(p, st.FirstUncleanable, true))
		})
	}
}

func TestCompactRefusesNullKeys(t *testing.T) {
	for _, policy := range []CleanupPolicy{CleanupCompact, CleanupDelete, CleanupCompact | CleanupDelete} {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{CleanupPolicy: policy})
		_, err := l.Append(kvBatch(t, 1, recordbatch.Options{}, recordbatch.NoProducer(), put("k", "v"), kv{value: []byte("v")}), msTime(1), 0)
		if compact := policy&CleanupCompact != 0; compact != errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("policy %d: Append of a null key: %v", policy, err)
		}
		l.Close()
	}
}

func TestCompactAndDelete(t *testing.T) {
	for _, policy := range []CleanupPolicy{CleanupCompact, CleanupCompact | CleanupDelete} {
		cfg := compactCfg()
		cfg.CleanupPolicy = policy
		cfg.RetentionMs = time.Hour
		l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
		p := produced{}
		for i := range 60 {
			appendKVs(t, l, 1000, p, put(fmt.Sprint(i%3), fmt.Sprint(i)))
		}
		if _, err := l.Clean(msTime(2000)); err != nil {
			t.Fatal(err)
		}
		n, err := l.ApplyRetention(msTime(1000 + 2*time.Hour.Milliseconds()))
		if err != nil {
			t.Fatal(err)
		}
		if deletes := policy&CleanupDelete != 0; deletes != (n > 0) {
			t.Fatalf("policy %d: retention deleted %d segments", policy, n)
		}
		l.Close()
	}
}

func TestCleanableRespectsLagAndRatio(t *testing.T) {
	cfg := compactCfg()
	cfg.MinCompactionLagMs = time.Minute
	l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
	defer l.Close()
	p := produced{}
	for i := range 40 {
		appendKVs(t, l, 1000, p, put(fmt.Sprint(i%3), fmt.Sprint(i)))
	}
	if _, due := l.Cleanable(msTime(1000 + time.Minute.Milliseconds() - 1)); due {
		t.Fatal("due within min.compaction.lag.ms")
	}
	if st, err := l.Clean(msTime(1000)); err != nil || st.RecordsRemoved != 0 {
		t.Fatalf("Clean within min.compaction.lag.ms: %+v, %v", st, err)
	}
	if _, due := l.Cleanable(msTime(1000 + time.Minute.Milliseconds() + 1)); !due {
		t.Fatal("not due after min.compaction.lag.ms")
	}
	if _, err := l.Clean(msTime(1000 + time.Minute.Milliseconds() + 1)); err != nil {
		t.Fatal(err)
	}
	// A little new data is below min.cleanable.dirty.ratio.
	for i := range 40 {
		appendKVs(t, l, 1000, p, put(fmt.Sprint("distinct", i), "v"))
	}
	if err := l.roll(msTime(1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(msTime(1000 + time.Minute.Milliseconds() + 1)); err != nil {
		t.Fatal(err)
	}
	appendKVs(t, l, 1000, p, put("0", "new"))
	if err := l.roll(msTime(1000)); err != nil {
		t.Fatal(err)
	}
	if ratio, due := l.Cleanable(msTime(1000 + time.Hour.Milliseconds())); due || ratio <= 0 || ratio >= 0.5 {
		t.Fatalf("Cleanable = %v, %v; want a small ratio, not due", ratio, due)
	}
}

func TestCleanTransactions(t *testing.T) {
	cfg := compactCfg()
	cfg.DeleteRetentionMs = time.Hour
	l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
	defer l.Close()
	now := time.Now().UnixMilli()
	txn := recordbatch.Options{Transactional: true}
	p := produced{}
	appendKVs(t, l, now, p, put("a", "committed"))
	aborted := kvBatch(t, now, txn, recordbatch.Producer{ID: 7, Epoch: 0, BaseSequence: 0}, put("a", "aborted"), put("b", "aborted"))
	mustAppend(t, l, aborted, now)
	abortAt := mustMarker(t, l, 7, 0, false)
	committed := kvBatch(t, now, txn, recordbatch.Producer{ID: 8, Epoch: 0, BaseSequence: 0}, put("c", "txn"))
	mustAppend(t, l, committed, now)
	commitAt := mustMarker(t, l, 8, 0, true)
	for i := range 30 {
		appendKVs(t, l, now, p, put("filler", fmt.Sprint(i)))
	}
	if _, err := l.Clean(msTime(now)); err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, l)
	for _, r := range recs {
		if string(r.Value) == "aborted" {
			t.Fatalf("aborted record at %d survived", r.Offset)
		}
	}
	if !slices.ContainsFunc(recs, func(r kafkit.Record) bool { return string(r.Value) == "committed" }) ||
		!slices.ContainsFunc(recs, func(r kafkit.Record) bool { return string(r.Value) == "txn" }) {
		t.Fatal("a committed record was removed")
	}
	markers := func() (abort, commit bool) {
		for _, b := range readAll(t, l, 0) {
			abort = abort || b.FirstOffset == abortAt
			commit = commit || b.FirstOffset == commitAt
		}
		return abort, commit
	}
	if a, c := markers(); !a || !c {
		t.Fatalf("markers after the first pass: abort %v commit %v, want both", a, c)
	}
	if _, err := l.Clean(msTime(now + 2*time.Hour.Milliseconds())); err != nil {
		t.Fatal(err)
	}
	// The aborted records are gone, but their batch stays (emptied) as
	// producer 7's latest, so its abort marker stays with it, as in Kafka
	// (issue 24 case 8); the commit marker's transaction still has a record.
	if a, c := markers(); !a || !c {
		t.Fatalf("markers after the horizon: abort %v commit %v, want both", a, c)
	}
	if got := l.AbortedTransactions(0, l.EndOffset()); len(got) != 1 || got[0].ProducerID != 7 {
		t.Fatalf("aborted transactions after the horizon: %v, want producer 7's", got)
	}
}

func TestCleanKeepsProducerState(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l := mustOpen(t, fsys, dir, compactCfg())
			seq := int32(0)
			for i := range 40 {
				b := kvBatch(t, 1000, recordbatch.Options{}, recordbatch.Producer{ID: 5, Epoch: 1, BaseSequence: seq}, put(fmt.Sprint(i%2), fmt.Sprint(i)))
				mustAppend(t, l, b, 1000)
				seq++
			}
			// The producer's last batch is below the active segment, and its
			// record is overwritten by a non-idempotent write.
			if err := l.roll(msTime(1000)); err != nil {
				t.Fatal(err)
			}
			appendKVs(t, l, 1000, produced{}, put("1", "plain"), put("0", "plain"))
			if err := l.roll(msTime(1000)); err != nil {
				t.Fatal(err)
			}
			before := l.ProducerStates()
			if _, err := l.Clean(msTime(2000)); err != nil {
				t.Fatal(err)
			}
			if got := l.ProducerStates(); !slices.Equal(got, before) {
				t.Fatalf("producer states %v, want %v", got, before)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// Without the snapshot the state comes from the batches: the
			// producer's last batch must still be there (empty).
			names, _ := fsys.ReadDirNames(dir)
			for _, n := range names {
				if strings.HasSuffix(n, extSnapshot) {
					if err := fsys.Remove(filepath.Join(dir, n)); err != nil {
						t.Fatal(err)
					}
				}
			}
			l = mustOpen(t, fsys, dir, compactCfg())
			defer l.Close()
			if got := l.ProducerStates(); len(got) != 1 || len(before) != 1 || got[0].LastSequence != before[0].LastSequence {
				t.Fatalf("producer states after replay %v, want %v", got, before)
			}
			b := kvBatch(t, 1000, recordbatch.Options{}, recordbatch.Producer{ID: 5, Epoch: 1, BaseSequence: seq}, put("x", "y"))
			mustAppend(t, l, b, 1000)
			checkIndexes(t, l)
		})
	}
}

// renameFaultFS fails the n-th Rename (counting from 1) and every FS call
// after it, as a process that died there.
type renameFaultFS struct {
	FS
	mu      sync.Mutex // guards the fields below
	renames int
	failAt  int
	dead    bool
	crash   func() // called when the process dies, if set (power loss)
}

func (f *renameFaultFS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	f.renames++
	if f.renames == f.failAt {
		f.dead = true
		if f.crash != nil {
			f.crash()
		}
	}
	dead := f.dead
	f.mu.Unlock()
	if dead {
		return errInjected
	}
	return f.FS.Rename(oldpath, newpath)
}

func (f *renameFaultFS) Remove(name string) error {
	f.mu.Lock()
	dead := f.dead
	f.mu.Unlock()
	if dead {
		return errInjected
	}
	return f.FS.Remove(name)
}

func TestCleanCrashDuringSwap(t *testing.T) {
	// A Clean of one group renames 4 .cleaned files to .swap and 4 .swap
	// files to their final names; the checkpoint write renames once more.
	for failAt := 1; failAt <= 9; failAt++ {
		for _, fc := range fsCases {
			t.Run(fmt.Sprintf("%s/rename%d", fc.name, failAt), func(t *testing.T) {
				base, dir := fc.new(t)
				cfg := compactCfg()
				cfg.SegmentBytes = 4000 // one group
				l := mustOpen(t, base, dir, cfg)
				p := produced{}
				for i := range 50 {
					appendKVs(t, l, 1000, p, put(fmt.Sprint(i%3), fmt.Sprint(i)))
				}
				if err := l.roll(msTime(1000)); err != nil {
					t.Fatal(err)
				}
				appendKVs(t, l, 1000, p, put("0", "last"))
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				fsys := &renameFaultFS{FS: base, failAt: failAt}
				l = mustOpen(t, fsys, dir, cfg)
				upTo := l.active().base
				_, err := l.Clean(msTime(2000))
				fsys.mu.Lock()
				died := fsys.dead
				fsys.mu.Unlock()
				if died != (err != nil) && failAt <= 8 {
					t.Fatalf("Clean: %v (injected failure: %v)", err, died)
				}
				// The process dies: reopen on the real FS.
				l = mustOpen(t, base, dir, cfg)
				defer l.Close()
				names, _ := base.ReadDirNames(dir)
				for _, n := range names {
					if strings.HasSuffix(n, extCleaned) || strings.HasSuffix(n, extSwap) {
						t.Fatalf("leftover %s after recovery", n)
					}
				}
				got := readRecords(t, l)
				compacted, whole := wantCompacted(p, upTo, false), wantCompacted(p, 0, false)
				if len(got) != len(compacted) && len(got) != len(whole) {
					t.Fatalf("%d records after recovery; want %d (cleaned) or %d (not)", len(got), len(compacted), len(whole))
				}
				if len(got) == len(compacted) {
					checkRecords(t, l, p, compacted)
				} else {
					checkRecords(t, l, p, whole)
				}
				checkGapReads(t, l, p)
				if _, err := l.Clean(msTime(2000)); err != nil {
					t.Fatal(err)
				}
				checkRecords(t, l, p, compacted)
			})
		}
	}
}

func TestRecoverLeftoverCleanerFiles(t *testing.T) {
	fsys, dir := NewMemFS(), "/d/t-0"
	l := mustOpen(t, fsys, dir, compactCfg())
	p := produced{}
	appendKVs(t, l, 1000, p, put("a", "1"), put("a", "2"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00000000000000000000.log.cleaned", "00000000000000000000.index.swap", "00000000000000000005.txnindex.cleaned"} {
		f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	l = mustOpen(t, fsys, dir, compactCfg())
	defer l.Close()
	names, _ := fsys.ReadDirNames(dir)
	for _, n := range names {
		if strings.HasSuffix(n, extCleaned) || strings.HasSuffix(n, extSwap) {
			t.Fatalf("leftover %s", n)
		}
	}
	checkRecords(t, l, p, wantCompacted(p, 0, false))
}

// TestCleanConcurrentReads cleans while another goroutine reads from every
// offset and this one appends: a reader sees the old segments or the new
// ones, never an error or a latest value going back.
func TestCleanConcurrentReads(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", compactCfg())
	defer l.Close()
	p := produced{}
	for i := range 100 {
		appendKVs(t, l, 1000, p, put(fmt.Sprint(i%5), fmt.Sprint(i)))
	}
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			for off := l.StartOffset(); off < l.EndOffset(); off += 7 {
				b, err := l.Read(off, 1<<20, true, nil)
				if err == nil && len(b) == 0 {
					err = fmt.Errorf("Read(%d) returned nothing", off)
				}
				if err == nil {
					_, err = recordbatch.ReadRecords(nil, b, recordbatch.ReadOptions{VerifyCRC: true})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	for i := range 20 {
		appendKVs(t, l, 1000, p, put(fmt.Sprint(i%5), fmt.Sprint(100+i)))
		if _, err := l.Clean(msTime(2000)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	checkRecords(t, l, p, wantCompacted(p, l.active().base, false))
}

// TestCleanPowerLoss loses power (MemFS.SimulateCrash) before the commit
// point of a Clean, at each of its renames, and after a finished Clean: the
// log comes back whole, or cleaned.
func TestCleanPowerLoss(t *testing.T) {
	// failAt 0 never fails: the crash comes after Clean returned.
	for _, failAt := range []int{1, 2, 3, 4, 0} {
		t.Run(fmt.Sprint("rename", failAt), func(t *testing.T) {
			mem, dir := NewMemFS(), "/d/t-0"
			cfg := compactCfg()
			l := mustOpen(t, mem, dir, cfg)
			p := produced{}
			for i := range 50 {
				appendKVs(t, l, 1000, p, put(fmt.Sprint(i%3), fmt.Sprint(i)))
			}
			upTo := l.active().base
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			fsys := &renameFaultFS{FS: mem, failAt: failAt, crash: mem.SimulateCrash}
			l2 := mustOpen(t, fsys, dir, cfg)
			_, err := l2.Clean(msTime(2000))
			if (err != nil) != (failAt > 0) {
				t.Fatalf("Clean: %v", err)
			}
			if failAt == 0 {
				mem.SimulateCrash()
			}
			l3 := mustOpen(t, mem, dir, cfg)
			defer l3.Close()
			if failAt == 0 {
				checkRecords(t, l3, p, wantCompacted(p, upTo, false))
			} else {
				checkRecords(t, l3, p, wantCompacted(p, 0, false))
			}
			checkIndexes(t, l3)
		})
	}
}

// BenchmarkClean cleans a MemFS log of 20,000 updates (100-byte values) to
// 1,000 keys in 1 MiB segments.
func BenchmarkClean(b *testing.B) {
	value := strings.Repeat("v", 100)
	var bytesRead int64
	for b.Loop() {
		b.StopTimer()
		l, err := Open(NewMemFS(), "/d/t-0", Config{CleanupPolicy: CleanupCompact, SegmentBytes: 1 << 20}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 20_000 {
			batch := kvBatch(b, 1000, recordbatch.Options{}, recordbatch.NoProducer(), put(fmt.Sprint("key", i%1000), value))
			if _, err := l.Append(batch, msTime(1000), 0); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.roll(msTime(1000)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st, err := l.Clean(msTime(2000))
		if err != nil {
			b.Fatal(err)
		}
		bytesRead += st.BytesRead
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(bytesRead)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// TestCleanWithConcurrentAppendsAndRetention cleans while appends roll
// segments and retention deletes the oldest ones: Clean neither fails nor
// brings a deleted segment back, and the log stays readable.
func TestCleanWithConcurrentAppendsAndRetention(t *testing.T) {
	cfg := compactCfg()
	cfg.CleanupPolicy |= CleanupDelete
	cfg.RetentionMs = time.Minute
	l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
	defer l.Close()
	p := produced{}
	for round := range 20 {
		for i := range 30 {
			appendKVs(t, l, int64(round)*time.Minute.Milliseconds(), p, put(fmt.Sprint(i%4), fmt.Sprint(round, i)))
		}
		errc := make(chan error, 1)
		go func() {
			_, err := l.Clean(msTime(int64(round) * time.Minute.Milliseconds()))
			errc <- err
		}()
		for i := range 30 {
			appendKVs(t, l, int64(round)*time.Minute.Milliseconds(), p, put(fmt.Sprint(i%4), fmt.Sprint(round, "b", i)))
		}
		if _, err := l.ApplyRetention(msTime(int64(round)*time.Minute.Milliseconds() + 1)); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("round %d: Clean: %v", round, err)
		}
		recs := readRecords(t, l)
		for _, r := range recs {
			if orig := p[r.Offset]; string(orig.key) != string(r.Key) || string(orig.value) != string(r.Value) {
				t.Fatalf("offset %d holds %s=%q, was %s=%q", r.Offset, r.Key, r.Value, orig.key, orig.value)
			}
		}
		if len(recs) == 0 || recs[len(recs)-1].Offset != l.EndOffset()-1 {
			t.Fatalf("round %d: the last record is missing", round)
		}
	}
}

func TestMaxCompactionLagRollsActiveSegment(t *testing.T) {
	for _, policy := range []CleanupPolicy{CleanupDelete, CleanupCompact} {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{CleanupPolicy: policy, MaxCompactionLagMs: time.Minute})
		appendKVs(t, l, 0, produced{}, put("a", "1"))
		appendKVs(t, l, 2*time.Minute.Milliseconds(), produced{}, put("a", "2"))
		if rolled := len(segmentBases(t, l)) == 2; rolled != (policy == CleanupCompact) {
			t.Fatalf("policy %d: segments %v", policy, segmentBases(t, l))
		}
		l.Close()
	}
}

// TestCleanKeepsCompression: a batch the cleaner rewrites keeps its codec,
// as Kafka's cleaner does, so a compacted compressed topic does not grow.
func TestCleanKeepsCompression(t *testing.T) {
	for _, codec := range []recordbatch.Codec{recordbatch.None, recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			// Ten records per batch over three keys: cleaning keeps some of
			// each batch's records and rewrites it.
			value := strings.Repeat("compressible ", 20)
			var batches [][]kv
			var raw [][]byte
			largest := 0
			for b := 0; b < 12; b++ {
				var recs []kv
				for i := 0; i < 10; i++ {
					recs = append(recs, put(fmt.Sprintf("key%d", (b*10+i)%3), fmt.Sprintf("%s%d", value, b*10+i)))
				}
				batches = append(batches, recs)
				raw = append(raw, kvBatch(t, 1000, recordbatch.Options{Compression: codec}, recordbatch.NoProducer(), recs...))
				largest = max(largest, len(raw[b]))
			}
			// About one batch per segment, so every batch but the active
			// segment's is cleanable.
			l := mustOpen(t, NewMemFS(), "/log", Config{SegmentBytes: int64(largest + largest/2), CleanupPolicy: CleanupCompact, IndexIntervalBytes: 100})
			defer l.Close()
			p := produced{}
			for b, recs := range batches {
				res := mustAppend(t, l, raw[b], 1000)
				for i, r := range recs {
					p[res.BaseOffset+int64(i)] = r
				}
			}
			st, err := l.Clean(msTime(2000))
			if err != nil {
				t.Fatal(err)
			}
			if st.RecordsRemoved == 0 {
				t.Fatalf("nothing cleaned: %+v", st)
			}
			checkRecords(t, l, p, wantCompacted(p, st.FirstUncleanable, false))
			for off := l.StartOffset(); off < l.EndOffset(); {
				b, err := l.Read(off, 1<<20, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				r := recordbatch.NewReader(b, recordbatch.ReadOptions{VerifyCRC: true})
				var batch recordbatch.Batch
				for r.Next(&batch) {
					if got := batch.Attributes.Codec(); got != codec {
						t.Fatalf("batch at %d: codec %s after cleaning, want %s", batch.BaseOffset, got, codec)
					}
					off = batch.NextOffset()
				}
				if r.Err() != nil {
					t.Fatal(r.Err())
				}
			}
		})
	}
}
