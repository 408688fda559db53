package storage

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"
)

// txnState is what a transactional log must keep across reopen.
type txnState struct {
	end, lso int64
	aborted  []Aborted
	ongoing  map[int64]int64 // producer id → CurrentTxnStartOffset
}

func snapshotTxnState(l *Log) txnState {
	s := txnState{end: l.EndOffset(), lso: l.LastStableOffset(), aborted: l.AbortedTransactions(0, l.EndOffset()+1),
		ongoing: map[int64]int64{}}
	for _, p := range l.ProducerStates() {
		if p.CurrentTxnStartOffset >= 0 {
			s.ongoing[p.ProducerID] = p.CurrentTxnStartOffset
		}
	}
	return s
}

func (s txnState) equal(o txnState) bool {
	if s.end != o.end || s.lso != o.lso || !slices.Equal(s.aborted, o.aborted) || len(s.ongoing) != len(o.ongoing) {
		return false
	}
	for k, v := range s.ongoing {
		if o.ongoing[k] != v {
			return false
		}
	}
	return true
}

func txnBatch(t *testing.T, pid int64, seq int32, records int) []byte {
	// Stamped now like the markers, so segments roll by size only.
	return makeBatch(t, batchSpec{pid: pid, seq: seq, records: records, attrs: attrTransactional, valueSize: 30, ts: time.Now().UnixMilli()})
}

func mustMarker(t testing.TB, l *Log, pid int64, epoch int16, commit bool) int64 {
	t.Helper()
	off, err := l.WriteMarker(pid, epoch, commit, 3, -1)
	if err != nil {
		t.Fatalf("WriteMarker(%d, commit=%v): %v", pid, commit, err)
	}
	return off
}

func TestLastStableOffsetAndAbortedTransactions(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l := mustOpen(t, fsys, dir, Config{TimestampAfterMaxMs: clockFree})
			defer l.Close()
			mustAppend(t, l, makeBatch(t, batchSpec{}), 0) // 0: plain
			if lso := l.LastStableOffset(); lso != 1 {
				t.Fatalf("LSO without transactions = %d, want the end 1", lso)
			}
			mustAppend(t, l, txnBatch(t, 1, 0, 2), 0)      // 1-2: producer 1
			mustAppend(t, l, txnBatch(t, 2, 0, 1), 0)      // 3: producer 2
			mustAppend(t, l, makeBatch(t, batchSpec{}), 0) // 4: plain
			if lso := l.LastStableOffset(); lso != 1 {
				t.Fatalf("LSO = %d, want producer 1's first offset 1", lso)
			}
			if b, _, err := l.ReadCommitted(0, 1<<20, true, nil); err != nil || len(decodeBatches(t, b)) != 1 {
				t.Fatalf("ReadCommitted(0) = %d bytes, %v; want only the batch below the LSO", len(b), err)
			}
			if b, _, err := l.ReadCommitted(2, 1<<20, true, nil); err != nil || len(b) != 0 {
				t.Fatalf("ReadCommitted above the LSO = %d bytes, %v", len(b), err)
			}
			if m := mustMarker(t, l, 1, 0, false); m != 5 {
				t.Fatalf("abort marker at %d", m)
			}
			if lso := l.LastStableOffset(); lso != 3 {
				t.Fatalf("LSO after the abort = %d, want producer 2's 3", lso)
			}
			mustAppend(t, l, txnBatch(t, 1, 2, 1), 0) // 6: producer 1's next transaction
			mustMarker(t, l, 2, 0, true)              // 7
			if lso := l.LastStableOffset(); lso != 6 {
				t.Fatalf("LSO = %d, want 6", lso)
			}
			mustMarker(t, l, 1, 0, false) // 8
			if lso := l.LastStableOffset(); lso != 9 {
				t.Fatalf("LSO with nothing ongoing = %d, want the end 9", lso)
			}
			all := []Aborted{{1, 1}, {1, 6}}
			for _, tc := range []struct {
				from, upper int64
				want        []Aborted
			}{
				{0, 9, all},
				{0, 3, all[:1]},
				{3, 6, all[:1]}, // transaction 1 still has its marker (5) in range
				{6, 9, all[1:]},
				{9, 9, nil},
			} {
				if got := l.AbortedTransactions(tc.from, tc.upper); !slices.Equal(got, tc.want) {
					t.Errorf("AbortedTransactions(%d, %d) = %v, want %v", tc.from, tc.upper, got, tc.want)
				}
			}
			if n := countCommitted(t, l); n != 8 {
				t.Fatalf("ReadCommitted from 0 after the end of every transaction: %d batches, want 8", n)
			}
			var markers int
			for _, b := range readAll(t, l, 0) {
				if b.Attributes&attrControl != 0 {
					markers++
					if commit, epoch, err := parseMarker(b.AppendTo(nil)); err != nil || epoch != 3 || commit != (b.FirstOffset == 7) {
						t.Errorf("marker at %d: commit=%v epoch=%d err=%v", b.FirstOffset, commit, epoch, err)
					}
				}
			}
			if markers != 3 {
				t.Fatalf("%d markers in the log, want 3", markers)
			}
		})
	}
}

// countCommitted counts the batches ReadCommitted returns from offset 0 on
// (a read never spans segments, and markers have the wall clock's
// timestamps, so they roll these tests' segments stamped near 1970).
func countCommitted(t *testing.T, l *Log) int {
	n := 0
	for off := int64(0); ; {
		b, _, err := l.ReadCommitted(off, 1<<20, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			return n
		}
		bs := decodeBatches(t, b)
		n += len(bs)
		last := bs[len(bs)-1]
		off = last.FirstOffset + int64(last.LastOffsetDelta) + 1
	}
}

func TestMarkerEpochs(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, epoch: 4, seq: 0, attrs: attrTransactional}), 0)
	if _, err := l.WriteMarker(1, 3, false, 0, -1); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	// An abort with a bumped epoch (KIP-360) starts the new epoch at sequence 0.
	mustMarker(t, l, 1, 5, false)
	if st := l.ProducerStates(); st[0].ProducerEpoch != 5 || st[0].CoordinatorEpoch != 3 || st[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("state after the bumped abort: %+v", st)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{pid: 1, epoch: 4, seq: 1, attrs: attrTransactional}), time.Now(), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("data of the fenced epoch: %v", err)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, epoch: 5, seq: 0, attrs: attrTransactional}), 0)
	if _, err := l.Append(makeBatch(t, batchSpec{pid: 1, seq: -1, rawSeq: true, attrs: attrTransactional | attrControl}), time.Now(), 0); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("control batch without a marker record: %v", err)
	}
	two := makeBatch(t, batchSpec{pid: 1, epoch: 5, seq: -1, rawSeq: true, records: 2, attrs: attrTransactional | attrControl})
	if _, err := l.Append(two, time.Now(), 0); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("control batch of two records: %v", err)
	}
}

// A marker from an older transaction coordinator epoch than the
// producer's last marker in the partition is refused; the same or a newer
// epoch is written. A follower copies markers as the leader took them.
func TestMarkerCoordinatorEpochFencing(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, epoch: 0, seq: 0, attrs: attrTransactional}), 0)
	if _, err := l.WriteMarker(1, 0, true, 5, -1); err != nil {
		t.Fatal(err)
	}
	end := l.EndOffset()
	if _, err := l.WriteMarker(1, 0, false, 4, -1); !errors.Is(err, ErrTransactionCoordinatorFenced) {
		t.Fatalf("marker from coordinator epoch 4 after 5: %v", err)
	}
	if l.EndOffset() != end {
		t.Fatal("the fenced marker was appended")
	}
	if st := l.ProducerStates(); st[0].CoordinatorEpoch != 5 {
		t.Fatalf("coordinator epoch %d after the fenced marker, want 5", st[0].CoordinatorEpoch)
	}
	for _, ce := range []int32{5, 6} {
		if _, err := l.WriteMarker(1, 0, false, ce, -1); err != nil {
			t.Fatalf("marker from coordinator epoch %d: %v", ce, err)
		}
	}
	if st := l.ProducerStates(); st[0].CoordinatorEpoch != 6 {
		t.Fatalf("coordinator epoch %d, want 6", st[0].CoordinatorEpoch)
	}
	// A replica copies the leader's log as it is (a read stops at a
	// segment's end).
	f := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer f.Close()
	for f.EndOffset() < l.EndOffset() {
		b, err := l.ReadReplica(f.EndOffset(), 1<<20, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.AppendAsFollower(b, time.Now()); err != nil {
			t.Fatalf("follower copy: %v", err)
		}
	}
	if st := f.ProducerStates(); st[0].CoordinatorEpoch != 6 {
		t.Fatalf("follower's coordinator epoch %d, want 6", st[0].CoordinatorEpoch)
	}
}

// TestUnsequencedTransactionalBatches: the coordinator writes transactional
// offset commits without sequences; they open the transaction, check the
// epoch and are never taken for duplicates.
func TestUnsequencedTransactionalBatches(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	unseq := func(epoch int16) []byte {
		return makeBatch(t, batchSpec{pid: 7, epoch: epoch, seq: -1, attrs: attrTransactional})
	}
	mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	for i := range 3 {
		if res := mustAppend(t, l, unseq(2), 0); res.Duplicate || res.BaseOffset != int64(i+1) {
			t.Fatalf("unsequenced batch %d: %+v", i, res)
		}
	}
	if lso := l.LastStableOffset(); lso != 1 {
		t.Fatalf("LSO %d, want 1", lso)
	}
	if _, err := l.Append(unseq(1), time.Now(), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("older epoch: %v", err)
	}
	mustMarker(t, l, 7, 2, true)
	if lso := l.LastStableOffset(); lso != l.EndOffset() {
		t.Fatalf("LSO %d after commit, end %d", lso, l.EndOffset())
	}
}

// TestTxnRecovery checks that ongoing transactions, the LSO and the aborted
// index survive a clean close, an unclean one and a power loss, across
// segment rolls.
func TestTxnRecovery(t *testing.T) {
	build := func(t *testing.T, l *Log) {
		seq := map[int64]int32{}
		for i := range 30 {
			pid := int64(i%3 + 1)
			mustAppend(t, l, txnBatch(t, pid, seq[pid], 2), 0)
			seq[pid] += 2
			switch i % 5 {
			case 2:
				mustMarker(t, l, pid, 0, false)
			case 4:
				mustMarker(t, l, pid, 0, true)
			}
		}
	}
	type reopen func(t *testing.T, fsys FS, l *Log)
	cases := []struct {
		name    string
		memOnly bool
		close   reopen
	}{
		{"clean close", false, func(t *testing.T, _ FS, l *Log) {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"unclean close", false, func(t *testing.T, _ FS, l *Log) {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			l.closeFiles()
		}},
		{"power loss after flush", true, func(t *testing.T, fsys FS, l *Log) {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			l.closeFiles()
			fsys.(*MemFS).SimulateCrash()
		}},
		{"unclean close without flush", false, func(t *testing.T, _ FS, l *Log) {
			l.closeFiles()
		}},
	}
	for _, fc := range fsCases {
		for _, tc := range cases {
			if tc.memOnly && fc.name != "MemFS" {
				continue
			}
			t.Run(fc.name+"/"+tc.name, func(t *testing.T) {
				fsys, dir := fc.new(t)
				cfg := Config{SegmentBytes: 1000, TimestampAfterMaxMs: clockFree}
				l := mustOpen(t, fsys, dir, cfg)
				build(t, l)
				if len(segmentBases(t, l)) < 3 {
					t.Fatalf("only %d segments; the test needs rolls", len(segmentBases(t, l)))
				}
				want := snapshotTxnState(l)
				if len(want.ongoing) == 0 || len(want.aborted) < 3 || want.lso >= want.end {
					t.Fatalf("weak fixture: %+v", want)
				}
				tc.close(t, fsys, l)
				l = mustOpen(t, fsys, dir, cfg)
				defer l.Close()
				got := snapshotTxnState(l)
				if !got.equal(want) {
					t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
				}
				// The recovered state goes on working: ending every
				// transaction makes everything stable.
				for pid := range got.ongoing {
					mustMarker(t, l, pid, 0, false)
				}
				if lso := l.LastStableOffset(); lso != l.EndOffset() {
					t.Fatalf("LSO %d after ending everything, end %d", lso, l.EndOffset())
				}
			})
		}
	}
}

func TestTxnIndexCorruptFallsBackToReplay(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 600, TimestampAfterMaxMs: clockFree}
	l := mustOpen(t, fsys, "/d/t-0", cfg)
	for i := range 12 {
		mustAppend(t, l, txnBatch(t, 1, int32(i), 1), 0)
		if i%2 == 1 {
			mustMarker(t, l, 1, 0, false)
		}
	}
	want := snapshotTxnState(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fsys.ReadDirNames("/d/t-0")
	damaged := false
	for _, n := range names {
		if _, ok := parseOffsetName(n, extTxnIndex); ok && !damaged {
			appendFile(t, fsys, "/d/t-0/"+n, []byte{1, 2, 3})
			damaged = true
		}
	}
	if !damaged {
		t.Fatal("no .txnindex file")
	}
	l = mustOpen(t, fsys, "/d/t-0", cfg)
	defer l.Close()
	if got := snapshotTxnState(l); !got.equal(want) {
		t.Fatalf("after a damaged .txnindex:\n got %+v\nwant %+v", got, want)
	}
}

func TestRetentionDropsAbortedEntries(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 600, TimestampAfterMaxMs: clockFree})
	defer l.Close()
	for i := range 12 {
		mustAppend(t, l, txnBatch(t, 1, int32(i), 1), 0)
		mustMarker(t, l, 1, 0, false)
	}
	before := len(l.AbortedTransactions(0, l.EndOffset()))
	start, err := l.DeleteRecordsBefore(l.EndOffset() - 2)
	if err != nil {
		t.Fatal(err)
	}
	after := l.AbortedTransactions(0, l.EndOffset())
	if len(after) >= before || len(after) == 0 {
		t.Fatalf("%d aborted entries before, %d after deleting below %d", before, len(after), start)
	}
	for _, e := range l.aborted {
		if e.LastOffset < segmentBases(t, l)[0] {
			t.Fatalf("entry %+v has its marker in a deleted segment", e)
		}
	}
}

func TestTxnIndexDecodeRejectsDamage(t *testing.T) {
	entries := []txnIndexEntry{{1, 10, 12, 13}, {2, 11, 14, 15}}
	b := encodeTxnIndex(entries)
	got, err := decodeTxnIndex(b, 10, 20)
	if err != nil || !slices.Equal(got, entries) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for name, tc := range map[string]struct {
		b          []byte
		base, next int64
	}{
		"torn":            {b[:len(b)-1], 10, 20},
		"outside segment": {b, 13, 20},
		"past the end":    {b, 10, 14},
		"bad version":     {append([]byte{0, 9}, b[2:]...), 10, 20},
		"out of order":    {encodeTxnIndex([]txnIndexEntry{entries[1], entries[0]}), 10, 20},
	} {
		if _, err := decodeTxnIndex(tc.b, tc.base, tc.next); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkTransaction measures a transaction per partition: one batch of
// 100 records and its marker (every fourth one an abort, which adds an
// aborted-index entry), with a read_committed read of the result.
func BenchmarkTransaction(b *testing.B) {
	for _, fc := range benchFS(b) {
		b.Run(fc.name, func(b *testing.B) {
			l, err := Open(fc.fsys, fc.dir, Config{SegmentBytes: 64 << 20}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Delete()
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			var buf []byte
			batch := makeBatch(b, batchSpec{pid: 1, records: 100, valueSize: 100, ts: now.UnixMilli(), attrs: attrTransactional})
			for i := range b.N {
				binary.BigEndian.PutUint32(batch[offBaseSequence:], uint32(i*100%(1<<30)))
				binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
				res, err := l.Append(batch, now, 0)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.WriteMarker(1, 0, i%4 != 3, 0, -1); err != nil {
					b.Fatal(err)
				}
				if buf, _, err = l.ReadCommitted(res.BaseOffset, 1<<20, true, buf[:0]); err != nil || len(buf) == 0 {
					b.Fatalf("ReadCommitted: %d bytes, %v", len(buf), err)
				}
				_ = l.AbortedTransactions(res.BaseOffset, l.LastStableOffset())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
		})
	}
}

// FuzzTxnIndex: decoding arbitrary .txnindex bytes never panics, and what
// decodes encodes back to the same bytes.
func FuzzTxnIndex(f *testing.F) {
	f.Add(encodeTxnIndex([]txnIndexEntry{{1, 10, 12, 13}, {2, 11, 14, 15}}), int64(10), int64(20))
	f.Add([]byte{0, 0, 1}, int64(0), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, base, next int64) {
		entries, err := decodeTxnIndex(b, base, next)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if got := encodeTxnIndex(entries); string(got) != string(b) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}
