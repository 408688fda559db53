package storage

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestIdempotentProducer(t *testing.T) {
	type step struct {
		spec    batchSpec
		wantErr error
		wantDup int64 // base offset the duplicate must report, -1 for a fresh append
	}
	p := func(epoch int16, seq int32, records int) batchSpec {
		return batchSpec{pid: 42, epoch: epoch, seq: seq, records: records}
	}
	fresh := int64(-1)
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{p(0, 0, 3), nil, fresh}, {p(0, 3, 2), nil, fresh}, {p(0, 5, 1), nil, fresh}}},
		{"retry of the last batch", []step{{p(0, 0, 3), nil, fresh}, {p(0, 3, 2), nil, fresh}, {p(0, 3, 2), nil, 3}}},
		{"retry of an older batch", []step{{p(0, 0, 3), nil, fresh}, {p(0, 3, 2), nil, fresh}, {p(0, 5, 1), nil, fresh}, {p(0, 0, 3), nil, 0}}},
		{"gap", []step{{p(0, 0, 3), nil, fresh}, {p(0, 4, 1), ErrOutOfOrderSequence, 0}}},
		{"repeat with other length", []step{{p(0, 0, 3), nil, fresh}, {p(0, 0, 2), ErrOutOfOrderSequence, 0}}},
		{"unknown producer starts anywhere", []step{{p(3, 1000, 2), nil, fresh}, {p(3, 1002, 1), nil, fresh}}},
		{"new epoch from zero", []step{{p(0, 0, 3), nil, fresh}, {p(1, 0, 1), nil, fresh}, {p(1, 1, 1), nil, fresh}}},
		{"new epoch not from zero", []step{{p(0, 0, 3), nil, fresh}, {p(1, 3, 1), ErrOutOfOrderSequence, 0}}},
		{"old epoch", []step{{p(0, 0, 3), nil, fresh}, {p(1, 0, 1), nil, fresh}, {p(0, 3, 1), ErrInvalidProducerEpoch, 0}}},
		{"old epoch retry is fenced", []step{{p(0, 0, 3), nil, fresh}, {p(1, 0, 1), nil, fresh}, {p(0, 0, 3), ErrInvalidProducerEpoch, 0}}},
		{"wrap at MaxInt32", []step{{p(0, math.MaxInt32-1, 3), nil, fresh}, {p(0, 1, 1), nil, fresh}}},
		{"only the last five batches are remembered", []step{
			{p(0, 0, 1), nil, fresh}, {p(0, 1, 1), nil, fresh}, {p(0, 2, 1), nil, fresh}, {p(0, 3, 1), nil, fresh},
			{p(0, 4, 1), nil, fresh}, {p(0, 5, 1), nil, fresh}, {p(0, 1, 1), nil, 1}, {p(0, 0, 1), ErrOutOfOrderSequence, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
			defer l.Close()
			// Another producer and a non-idempotent batch interleave.
			mustAppend(t, l, makeBatch(t, batchSpec{pid: 7, seq: 0}), 0)
			mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
			for i, st := range tt.steps {
				end := l.EndOffset()
				res, err := l.Append(makeBatch(t, st.spec), time.UnixMilli(0), 0)
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d: err %v, want %v", i, err, st.wantErr)
				}
				if err != nil {
					if l.EndOffset() != end {
						t.Fatalf("step %d: a rejected batch moved the end", i)
					}
					continue
				}
				if st.wantDup == fresh {
					if res.Duplicate || res.BaseOffset != end {
						t.Fatalf("step %d: %+v, want a fresh append at %d", i, res, end)
					}
					continue
				}
				if !res.Duplicate || res.BaseOffset != st.wantDup+2 || res.LastOffset != st.wantDup+2+int64(st.spec.records-1) || l.EndOffset() != end {
					t.Fatalf("step %d: %+v, want duplicate at %d", i, res, st.wantDup+2)
				}
			}
		})
	}
}

func TestIdempotenceWithinOneAppend(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	two := append(makeBatch(t, batchSpec{pid: 1, seq: 0, records: 2}), makeBatch(t, batchSpec{pid: 1, seq: 2, records: 2})...)
	if res := mustAppend(t, l, two, 0); res.LastOffset != 3 {
		t.Fatalf("%+v", res)
	}
	gap := append(makeBatch(t, batchSpec{pid: 1, seq: 4}), makeBatch(t, batchSpec{pid: 1, seq: 9})...)
	if _, err := l.Append(gap, time.Now(), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("err %v", err)
	}
	// The failed append staged nothing: seq 4 is still next.
	if res := mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 4}), 0); res.BaseOffset != 4 {
		t.Fatalf("%+v", res)
	}
}

func TestDuplicateLogAppendTime(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{LogAppendTime: true})
	defer l.Close()
	first := mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 0}), 1000)
	dup := mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 0}), 2000)
	if !dup.Duplicate || dup.LogAppendTime != 1000 || dup.BaseOffset != first.BaseOffset {
		t.Fatalf("duplicate %+v, first %+v", dup, first)
	}
}

// TestProducerStateSurvivesReopen checks every way the state is rebuilt:
// from the snapshot of a clean close, from a roll snapshot plus a replay,
// and from a full replay.
func TestProducerStateSurvivesReopen(t *testing.T) {
	for _, mode := range []string{"clean", "unclean", "no snapshot"} {
		t.Run(mode, func(t *testing.T) {
			fsys := NewMemFS()
			cfg := Config{SegmentBytes: 400}
			l := mustOpen(t, fsys, "/d/t-0", cfg)
			var seq [3]int32
			for i := range 30 {
				pid := int64(i%3 + 1)
				mustAppend(t, l, makeBatch(t, batchSpec{pid: pid, seq: seq[pid-1], records: 2, valueSize: 30}), 0)
				seq[pid-1] += 2
			}
			want := l.ProducerStates()
			switch mode {
			case "clean":
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			case "no snapshot":
				names, _ := fsys.ReadDirNames("/d/t-0")
				for _, n := range names {
					if _, ok := parseOffsetName(n, extSnapshot); ok {
						if err := fsys.Remove("/d/t-0/" + n); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			l2 := mustOpen(t, fsys, "/d/t-0", cfg)
			defer l2.Close()
			got := l2.ProducerStates()
			if len(got) != 3 || len(want) != 3 {
				t.Fatalf("got %+v want %+v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("producer %d: got %+v want %+v", i, got[i], want[i])
				}
			}
			// Retries of recent batches are still caught; sequences go on.
			dup := mustAppend(t, l2, makeBatch(t, batchSpec{pid: 3, seq: seq[2] - 2, records: 2}), 0)
			if !dup.Duplicate || dup.LastOffset != want[2].LastOffset {
				t.Fatalf("retry after reopen: %+v", dup)
			}
			if _, err := l2.Append(makeBatch(t, batchSpec{pid: 1, seq: seq[0] + 1}), time.Now(), 0); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap after reopen: %v", err)
			}
			mustAppend(t, l2, makeBatch(t, batchSpec{pid: 1, seq: seq[0]}), 0)
		})
	}
}

func TestSnapshotDecodeRejectsDamage(t *testing.T) {
	p := newProducerStates()
	p.replay(&batchHeader{producerID: 5, producerEpoch: 2, baseSequence: 10, lastOffsetDelta: 3, baseOffset: 100, maxTimestamp: 9})
	b := p.encode()
	got, err := decodeProducerStates(b)
	if err != nil || len(got.m) != 1 || got.m[5].epoch != 2 {
		t.Fatalf("round trip: %v %+v", err, got.m)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := decodeProducerStates(c); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	if _, err := decodeProducerStates(b[:len(b)-1]); err == nil {
		t.Fatal("truncation went unnoticed")
	}
}

// TestControlBatchesSkipSequenceChecks: transaction markers carry the
// producer id with sequence -1; they are not idempotent data batches.
func TestControlBatchesSkipSequenceChecks(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, "/d/t-0", Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 0, attrs: attrTransactional}), 0)
	if off, err := l.WriteMarker(1, 0, true, 0, -1); err != nil || off != 1 {
		t.Fatalf("marker at %d: %v", off, err)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 1, attrs: attrTransactional}), 0)
	l.closeFiles() // unclean: the state is replayed from the headers
	l = mustOpen(t, fsys, "/d/t-0", Config{})
	defer l.Close()
	if st := l.ProducerStates(); len(st) != 1 || st[0].LastSequence != 1 || st[0].LastOffset != 2 {
		t.Fatalf("state %+v", st)
	}
}

func TestExpireProducers(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{TimestampAfterMaxMs: clockFree})
	defer l.Close()
	hour := time.Hour.Milliseconds()
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 0, ts: 1 * hour}), 0)
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 2, seq: 0, ts: 5 * hour}), 0)
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 1, ts: 2 * hour}), 0)
	if n := l.ExpireProducers(msTime(27*hour), 24*time.Hour); n != 1 {
		t.Fatalf("expired %d, want producer 1 only", n)
	}
	if st := l.ProducerStates(); len(st) != 1 || st[0].ProducerID != 2 {
		t.Fatalf("left %+v", st)
	}
	// Producer 1 is new again: any sequence goes.
	mustAppend(t, l, makeBatch(t, batchSpec{pid: 1, seq: 77}), 0)
}
