package storage

// Issue 24: the log's edge cases as Kafka's log handles them, one test (or
// more) per numbered case of the issue.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// emptiedFirstSegment builds a compacted log whose first segment cleaning
// emptied ([0, 2) held a=1 and a's tombstone) followed by the segment at 2,
// and returns it with the time after the two passes.
func emptiedFirstSegment(t *testing.T, fsys FS, dir string) (*Log, int64) {
	t.Helper()
	cfg := compactCfg()
	cfg.DeleteRetentionMs = time.Minute
	l := mustOpen(t, fsys, dir, cfg)
	now := time.Now().UnixMilli()
	appendKVs(t, l, now, produced{}, put("a", "1"), tombstone("a"))
	if err := l.roll(msTime(now)); err != nil {
		t.Fatal(err)
	}
	// The first pass drops a=1 and keeps the tombstone (cleaned once); the
	// second, past delete.retention.ms, drops it too.
	for _, at := range []int64{now, now + time.Hour.Milliseconds()} {
		if _, err := l.Clean(msTime(at)); err != nil {
			t.Fatal(err)
		}
	}
	if segs := segmentBases(t, l); len(segs) != 2 || segs[1] != 2 || l.segments[0].size != 0 {
		t.Fatalf("segments %v (first %d bytes), want an emptied [0] and the active 2", segs, l.segments[0].size)
	}
	return l, now + time.Hour.Milliseconds()
}

// Case 1: an empty last segment past the previous segment's end is normal
// in a compacted log; recovery keeps it, and the end offset with it.
func TestRecoveryKeepsEmptySegmentAfterCompactionGap(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l, _ := emptiedFirstSegment(t, fsys, dir)
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			// No Close: the next Open is unclean.
			l2 := mustOpen(t, fsys, dir, compactCfg())
			defer l2.Close()
			if end := l2.EndOffset(); end != 2 {
				t.Fatalf("end offset after the unclean restart = %d, want 2", end)
			}
			res := mustAppend(t, l2, kvBatch(t, 0, recordbatch.Options{}, recordbatch.NoProducer(), put("b", "1")), 0)
			if res.BaseOffset != 2 {
				t.Fatalf("next append got offset %d, want 2 (offsets handed out again)", res.BaseOffset)
			}
		})
	}
}

// Case 2: a read_committed read from an offset in a gap right below the
// LSO must not return the open transaction's first batch.
func TestReadCommittedGapBelowLSO(t *testing.T) {
	l, _ := emptiedFirstSegment(t, NewMemFS(), "/d/t-0")
	defer l.Close()
	open := kvBatch(t, 0, recordbatch.Options{Transactional: true}, recordbatch.Producer{ID: 9, Epoch: 0, BaseSequence: 0}, put("t", "open"))
	mustAppend(t, l, open, 0)
	if lso := l.LastStableOffset(); lso != 2 {
		t.Fatalf("LSO = %d, want 2", lso)
	}
	for off := int64(0); off < 2; off++ {
		b, _, err := l.ReadCommitted(off, 1<<20, true, nil)
		if err != nil || len(b) != 0 {
			t.Fatalf("ReadCommitted(%d) = %d bytes (%v), want none: the batch at 2 is not stable", off, len(b), err)
		}
	}
}

// Case 7: the LSO never falls below the log start offset.
func TestLastStableOffsetClampedToLogStart(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{TimestampAfterMaxMs: clockFree})
	defer l.Close()
	mustAppend(t, l, txnBatch(t, 1, 0, 2), 0)                // 0-1: open transaction
	mustAppend(t, l, makeBatch(t, batchSpec{records: 4}), 0) // 2-5
	if _, err := l.DeleteRecordsBefore(5); err != nil {
		t.Fatal(err)
	}
	if lso := l.LastStableOffset(); lso != 5 {
		t.Fatalf("LSO after DeleteRecords(5) past the open transaction = %d, want the log start 5", lso)
	}
	if b, _, err := l.ReadCommitted(5, 1<<20, true, nil); err != nil || len(b) != 0 {
		t.Fatalf("ReadCommitted(5) = %d bytes, %v; want none (offset 5 is not stable)", len(b), err)
	}
}

// Case 8: the cleaner keeps a transaction's marker while its last batch
// stays (emptied, as its producer's latest), so a full replay of the log
// (no snapshot) closes the transaction again and the LSO moves on.
func TestCleanKeepsMarkerOfEmptiedTransaction(t *testing.T) {
	for _, commit := range []bool{false, true} {
		fsys, dir := NewMemFS(), "/d/t-0"
		cfg := compactCfg()
		cfg.DeleteRetentionMs = time.Minute
		l := mustOpen(t, fsys, dir, cfg)
		now := time.Now().UnixMilli()
		// Producer 7's only batch: its records are aborted, or (committed)
		// overwritten by later records of the same key.
		mustAppend(t, l, kvBatch(t, now, recordbatch.Options{Transactional: true}, recordbatch.Producer{ID: 7, Epoch: 0, BaseSequence: 0}, put("a", "txn")), now)
		mustMarker(t, l, 7, 0, commit)
		for i := range 30 {
			appendKVs(t, l, now, produced{}, put("a", string(rune('0'+i%10))))
		}
		for _, at := range []int64{now, now + time.Hour.Milliseconds()} {
			if _, err := l.Clean(msTime(at)); err != nil {
				t.Fatal(err)
			}
		}
		end := l.EndOffset()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		removeSnapshots(t, fsys, dir)
		l = mustOpen(t, fsys, dir, cfg)
		if lso := l.LastStableOffset(); lso != end {
			t.Errorf("commit=%v: LSO after a full replay = %d, want the end %d (the transaction reopened)", commit, lso, end)
		}
		l.Close()
	}
}

func removeSnapshots(t *testing.T, fsys FS, dir string) {
	t.Helper()
	names, err := fsys.ReadDirNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, extSnapshot) {
			if err := fsys.Remove(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Case 9: a producer whose only trace is a marker (a fencing abort bumps
// its epoch and forgets its batches) expires producer.id.expiration.ms after
// the marker, not at the next check, so its zombie stays fenced; the
// marker's time survives a restart through the snapshot.
func TestExpireProducersCountsFromMarker(t *testing.T) {
	fsys, dir := NewMemFS(), "/d/t-0"
	l := mustOpen(t, fsys, dir, Config{})
	now := time.Now()
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, epoch: 0, seq: 0, attrs: attrTransactional, ts: now.UnixMilli()}), now.UnixMilli())
	mustMarker(t, l, 1, 1, false) // the coordinator's fencing abort
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, fsys, dir, Config{})
	defer l.Close()
	if st := l.ProducerStates(); len(st) != 1 || st[0].LastTimestamp < now.UnixMilli() {
		t.Fatalf("producer states %+v, want the marker's time as LastTimestamp (DescribeProducers)", st)
	}
	if n := l.ExpireProducers(now.Add(time.Minute), time.Hour); n != 0 {
		t.Fatalf("ExpireProducers a minute after the marker forgot %d producers, want 0", n)
	}
	zombie := makeBatch(t, batchSpec{pid: 1, epoch: 0, seq: 1, attrs: attrTransactional, ts: now.UnixMilli()})
	if _, err := l.Append(zombie, now, 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("zombie of the fenced epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if n := l.ExpireProducers(now.Add(2*time.Hour), time.Hour); n != 1 {
		t.Fatalf("ExpireProducers past the expiration forgot %d producers, want 1", n)
	}
}

// Case 3: ReadCommitted returns the aborted transactions of the batches it
// read from the same read, so retention or DeleteRecords racing it never
// leaves aborted records without their entry.
func TestReadCommittedAbortedUnderRetention(t *testing.T) {
	// A segment per batch or two: every DeleteRecords deletes some.
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 200})
	defer l.Close()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range 2000 {
			pid := int64(i%7 + 1)
			mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
			if _, err := l.Append(makeBatch(t, batchSpec{pid: pid, seq: int32(i / 7), attrs: attrTransactional}), time.Now(), 0); err != nil {
				t.Error(err)
				return
			}
			if _, err := l.WriteMarker(pid, 0, false, 0, -1); err != nil {
				t.Error(err)
				return
			}
			if _, err := l.DeleteRecordsBefore(l.EndOffset()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var buf []byte
	reads, off := 0, int64(0)
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		// A consumer behind the log start offset, reading a segment at a
		// time (a read never spans segments).
		if off < l.StartOffset() || off >= l.EndOffset() {
			off = l.StartOffset()
		}
		data, aborted, err := l.ReadCommitted(off, 1<<20, true, buf[:0])
		if errors.Is(err, ErrOffsetOutOfRange) || len(data) == 0 {
			off = -1
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		buf = data
		off = nextOffsetAfter(data)
		for _, b := range decodeBatches(t, data) {
			if b.Attributes&attrTransactional == 0 || b.Attributes&attrControl != 0 {
				continue
			}
			reads++
			if !slices.ContainsFunc(aborted, func(a Aborted) bool { return a.ProducerID == b.ProducerID && a.FirstOffset <= b.FirstOffset }) {
				t.Fatalf("aborted batch of producer %d at %d read without its entry (got %v)", b.ProducerID, b.FirstOffset, aborted)
			}
		}
	}
	wg.Wait()
	if reads == 0 {
		t.Fatal("no aborted batch was read")
	}
}

// lyingBatch encodes records (offset deltas as given) under a header that
// claims count records, lastOffsetDelta and maxTs, compressed with codec,
// with a correct CRC.
func lyingBatch(t testing.TB, deltas []int32, count, lastOffsetDelta int32, maxTs int64, codec recordbatch.Codec) []byte {
	t.Helper()
	var recs []byte
	for i, d := range deltas {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: d, Key: []byte{'k', byte('0' + i)}, Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	var err error
	if recs, err = recordbatch.Compress(codec, nil, recs); err != nil {
		t.Fatal(err)
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec), LastOffsetDelta: lastOffsetDelta,
		FirstTimestamp: 1000, MaxTimestamp: maxTs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: count, Records: recs}
	b.Length = int32(49 + len(recs))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], batchCRC(out))
	return out
}

// Case 5: a produced batch whose header lies about its records is refused
// as Kafka's LogValidator refuses it (INVALID_RECORD) and nothing is
// stored; a wrong maxTimestamp is replaced by the records' largest, as
// Kafka sets it.
func TestAppendValidatesRecordsAgainstHeader(t *testing.T) {
	for _, codec := range []recordbatch.Codec{recordbatch.None, recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		for _, tc := range []struct {
			name                   string
			deltas                 []int32
			count, lastOffsetDelta int32
		}{
			{"one claimed, three carried", []int32{0, 1, 2}, 1, 0},
			{"three claimed, two carried", []int32{0, 1}, 3, 2},
			{"relative offsets out of order", []int32{0, 2, 1}, 3, 2},
			{"relative offsets from one", []int32{1, 2, 3}, 3, 2},
		} {
			t.Run(codec.String()+"/"+tc.name, func(t *testing.T) {
				l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
				defer l.Close()
				mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
				_, err := l.Append(lyingBatch(t, tc.deltas, tc.count, tc.lastOffsetDelta, 1000+int64(len(tc.deltas))-1, codec), time.Now(), 0)
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("Append = %v, want ErrInvalidRecord", err)
				}
				if end := l.EndOffset(); end != 1 {
					t.Fatalf("end offset %d after the refused append, want 1", end)
				}
			})
		}
		t.Run(codec.String()+"/maxTimestamp", func(t *testing.T) {
			l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
			defer l.Close()
			// The header claims a timestamp far in the future; the records
			// are at 1000..1002.
			mustAppend(t, l, lyingBatch(t, []int32{0, 1, 2}, 3, 2, 1<<50, codec), 0)
			got := readAll(t, l, 0) // decodeBatches checks the CRC
			if len(got) != 1 || got[0].MaxTimestamp != 1002 {
				t.Fatalf("stored maxTimestamp %d, want the records' largest 1002", got[0].MaxTimestamp)
			}
			if _, ok, err := l.BatchForTimestamp(1003); ok || err != nil {
				t.Fatalf("BatchForTimestamp(1003) found a batch (%v): the header's timestamp was kept", err)
			}
		})
	}
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	bad := lyingBatch(t, []int32{0}, 1, 0, 1000, recordbatch.LZ4)
	bad[batchHeaderLen+2] ^= 0xff // inside the LZ4 frame header
	binary.BigEndian.PutUint32(bad[offCRC:], batchCRC(bad))
	if _, err := l.Append(bad, time.Now(), 0); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("undecompressable records: %v, want ErrCorruptMessage", err)
	}
}

// cleanedFullFS fails every write to the failAt-th .log.cleaned file
// opened (counting from 1), as a full disk would.
type cleanedFullFS struct {
	FS
	mu     sync.Mutex // guards opened
	opened int
	failAt int
}

func (f *cleanedFullFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, extLog+extCleaned) {
		return file, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened++
	if f.opened == f.failAt {
		return fullFile{file}, nil
	}
	return file, nil
}

type fullFile struct{ File }

func (fullFile) WriteAt([]byte, int64) (int, error) { return 0, syscall.ENOSPC }

// Case 10: a Clean whose second group fails (disk full) reports the error
// and leaves the cleaner checkpoint where it was.
func TestCleanReportsErrorAfterFirstGroup(t *testing.T) {
	fsys := &cleanedFullFS{FS: NewMemFS(), failAt: 2}
	l := mustOpen(t, fsys, "/d/t-0", compactCfg())
	defer l.Close()
	p := produced{}
	// Every group keeps records (and so writes its .log.cleaned).
	for i := range 50 {
		appendKVs(t, l, 1000, p, put(fmt.Sprint(i%40), fmt.Sprint(i)))
	}
	if err := l.roll(msTime(1000)); err != nil {
		t.Fatal(err)
	}
	if n := len(l.segments); n < 4 {
		t.Fatalf("%d segments, want several groups", n)
	}
	if _, err := l.Clean(msTime(2000)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Clean with a full disk at the second group = %v, want ENOSPC", err)
	}
	l.appendMu.Lock()
	firstDirty := l.cleanerFirstDirty()
	l.appendMu.Unlock()
	if firstDirty != 0 {
		t.Fatalf("cleaner checkpoint moved to %d after the failed Clean, want 0", firstDirty)
	}
	// The disk has room again: the next Clean finishes the job.
	if _, err := l.Clean(msTime(2000)); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, l, p, wantCompacted(p, l.active().base, false))
}

// BenchmarkValidateIncoming measures Append's batch validation alone on
// BenchmarkAppend's batch (100 records of 100 bytes), uncompressed and
// LZ4-compressed: the cost the record walk of case 5 adds to every append.
func BenchmarkValidateIncoming(b *testing.B) {
	plain := makeBatch(b, batchSpec{records: 100, valueSize: 100, ts: time.Now().UnixMilli()})
	rb := decodeBatches(b, plain)[0]
	compressed, err := recordbatch.Compress(recordbatch.LZ4, nil, rb.Records)
	if err != nil {
		b.Fatal(err)
	}
	rb.Attributes, rb.Records = int16(recordbatch.LZ4), compressed
	rb.Length = int32(49 + len(compressed))
	lz4 := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(lz4[offCRC:], batchCRC(lz4))
	for _, tc := range []struct {
		name  string
		batch []byte
	}{{"none", plain}, {"lz4", lz4}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.batch)))
			b.ReportAllocs()
			for range b.N {
				if _, err := validateIncoming(tc.batch, anyTimestamp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Case 6: a batch the cleaner rewrites gets the largest timestamp of the
// records it keeps, so a lookup by timestamp moves on to a later batch.
func TestCleanRewritesMaxTimestamp(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", compactCfg())
	defer l.Close()
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 256)
	bl.Append(1000, []byte("a"), []byte("old"), nil)
	bl.Append(5000, []byte("b"), []byte("overwritten"), nil) // the batch's largest timestamp
	first, err := bl.Finish(recordbatch.NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, first, 0)
	appendKVs(t, l, 1000, produced{}, put("b", "new"))   // 2
	appendKVs(t, l, 3000, produced{}, put("c", "later")) // 3
	if err := l.roll(msTime(5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(msTime(6000)); err != nil {
		t.Fatal(err)
	}
	b, ok, err := l.BatchForTimestamp(2000)
	if err != nil || !ok {
		t.Fatalf("BatchForTimestamp(2000): ok=%v %v", ok, err)
	}
	if got := decodeBatches(t, b)[0]; got.FirstOffset != 3 {
		t.Fatalf("BatchForTimestamp(2000) = the batch at %d (maxTimestamp %d), want the one at 3 holding the first record at or after 2000",
			got.FirstOffset, got.MaxTimestamp)
	}
}

// Case 4: a tombstone kept by the pass that first cleans it stays
// delete.retention.ms from that pass, whatever its own timestamp, and the
// stamp (the batch's delete horizon) leaves record timestamps unchanged.
func TestTombstoneRetentionCountsFromFirstCleaning(t *testing.T) {
	cfg := compactCfg()
	cfg.DeleteRetentionMs = time.Hour
	l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
	defer l.Close()
	p := produced{}
	appendKVs(t, l, 1000, p, put("gone", "x"), tombstone("gone"))
	for i := range 30 {
		appendKVs(t, l, 1000, p, put("filler", fmt.Sprint(i)))
	}
	week := 7 * 24 * time.Hour.Milliseconds() // first cleaned after segment.ms
	for _, at := range []int64{week, week + time.Minute.Milliseconds()} {
		if _, err := l.Clean(msTime(at)); err != nil {
			t.Fatal(err)
		}
	}
	recs := readRecords(t, l)
	i := slices.IndexFunc(recs, func(r kafkit.Record) bool { return string(r.Key) == "gone" })
	if i < 0 {
		t.Fatal("tombstone removed a minute after its first cleaning (by its own timestamp)")
	}
	if recs[i].Value != nil || recs[i].Timestamp.UnixMilli() != 1000 {
		t.Fatalf("kept tombstone: value %q timestamp %d, want null at 1000", recs[i].Value, recs[i].Timestamp.UnixMilli())
	}
	if _, err := l.Clean(msTime(week + time.Hour.Milliseconds() + 1)); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(readRecords(t, l), func(r kafkit.Record) bool { return string(r.Key) == "gone" }) {
		t.Fatal("tombstone kept past delete.retention.ms after its first cleaning")
	}
}

// Suspected item: bit rot in a flushed segment cuts that segment only, as
// Kafka's recovery of a segment that fails its sanity checks does; the
// later segments (acknowledged, flushed data) stay.
func TestBitRotRecoversOnlyTheBadSegment(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			cfg := Config{SegmentBytes: 500}
			l := mustOpen(t, fsys, dir, cfg)
			for range 12 {
				mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100}), 0)
			}
			bases := segmentBases(t, l)
			end := l.EndOffset()
			if len(bases) < 3 {
				t.Fatalf("segments %v, want at least 3", bases)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// The magic byte of the first segment's second batch rots.
			f, err := fsys.OpenFile(offsetFileName(dir, bases[0], extLog), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(len(makeBatch(t, batchSpec{valueSize: 100})))
			if _, err := f.WriteAt([]byte{9}, size+offMagic); err != nil {
				t.Fatal(err)
			}
			f.Close()
			l = mustOpen(t, fsys, dir, cfg)
			defer l.Close()
			if got := segmentBases(t, l); !slices.Equal(got, bases) || l.EndOffset() != end {
				t.Fatalf("after bit rot in segment %d: segments %v end %d, want %v end %d", bases[0], got, l.EndOffset(), bases, end)
			}
			if got := readAll(t, l, bases[1]); len(got) != int(end-bases[1]) {
				t.Fatalf("%d batches readable after the bad segment, want %d", len(got), end-bases[1])
			}
		})
	}
}
