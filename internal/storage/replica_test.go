package storage

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

// leaderBatches builds a leader log's history for the replication tests:
// plain batches, an idempotent producer (pid 1), a transactional producer
// (pid 2) with an aborted and a committed transaction, across leader
// epochs 1, 2 and 4. It returns the log and the offsets where each step
// began.
func leaderBatches(t testing.TB, l *Log) (steps []int64) {
	t.Helper()
	ts := time.Now().UnixMilli()
	app := func(b []byte, epoch int32) {
		t.Helper()
		steps = append(steps, l.EndOffset())
		if _, err := l.Append(b, msTime(ts), epoch); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	marker := func(pid int64, commit bool) {
		t.Helper()
		steps = append(steps, l.EndOffset())
		mustMarker(t, l, pid, 0, commit)
	}
	app(makeBatch(t, batchSpec{records: 3, ts: ts, tag: 'a'}), 1)                                           // 0-2
	app(makeBatch(t, batchSpec{records: 2, ts: ts, pid: 1, seq: 0, tag: 'b'}), 1)                           // 3-4
	app(makeBatch(t, batchSpec{records: 2, ts: ts, pid: 2, seq: 0, attrs: attrTransactional, tag: 'c'}), 2) // 5-6
	marker(2, false)                                                                                        // 7 abort
	app(makeBatch(t, batchSpec{records: 2, ts: ts, pid: 1, seq: 2, tag: 'd'}), 2)                           // 8-9
	app(makeBatch(t, batchSpec{records: 1, ts: ts, pid: 2, seq: 2, attrs: attrTransactional, tag: 'e'}), 4) // 10
	app(makeBatch(t, batchSpec{records: 2, ts: ts, pid: 1, seq: 4, tag: 'f'}), 4)                           // 11-12
	marker(2, true)                                                                                         // 13 commit
	app(makeBatch(t, batchSpec{records: 1, ts: ts, pid: 2, seq: 3, attrs: attrTransactional, tag: 'g'}), 4) // 14 open txn
	return steps
}

// rawLog reads every stored byte of l.
func rawLog(t testing.TB, l *Log) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		b, err := l.Read(off, 1<<20, true, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		off = nextOffsetAfter(b)
	}
	return out
}

type replicaState struct {
	start, end, lso int64
	epochs          []epochEntry
	producers       []ProducerState
	aborted         []Aborted
}

func stateOf(l *Log) replicaState {
	return replicaState{start: l.StartOffset(), end: l.EndOffset(), lso: l.LastStableOffset(), epochs: l.epochEntries(),
		producers: l.ProducerStates(), aborted: l.AbortedTransactions(0, l.EndOffset()+1)}
}

func (s replicaState) equal(o replicaState) bool {
	return s.start == o.start && s.end == o.end && s.lso == o.lso && slices.Equal(s.epochs, o.epochs) &&
		slices.Equal(s.producers, o.producers) && slices.Equal(s.aborted, o.aborted)
}

func TestAppendAsFollowerByteIdentical(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			leader := mustOpen(t, fsys, dir, Config{LogAppendTime: true})
			defer leader.Close()
			leaderBatches(t, leader)
			want := rawLog(t, leader)

			// Small segments: the follower writes the fetch in parts.
			follower := mustOpen(t, fsys, dir+"-f", Config{SegmentBytes: 300})
			defer follower.Close()
			fetch := bytes.Clone(want)
			res, err := follower.AppendAsFollower(fetch, time.Now())
			if err != nil {
				t.Fatalf("AppendAsFollower: %v", err)
			}
			if res.BaseOffset != 0 || res.LastOffset != leader.EndOffset()-1 || res.Duplicate {
				t.Fatalf("result %+v, leader end %d", res, leader.EndOffset())
			}
			if !bytes.Equal(fetch, want) {
				t.Fatal("AppendAsFollower changed its input")
			}
			if got := rawLog(t, follower); !bytes.Equal(got, want) {
				t.Fatalf("follower holds %d bytes that differ from the leader's %d", len(got), len(want))
			}
			if len(segmentBases(t, follower)) < 2 {
				t.Fatalf("segments %v: the fetch should have been split", segmentBases(t, follower))
			}
			if ls, fs := stateOf(leader), stateOf(follower); !ls.equal(fs) {
				t.Fatalf("follower state\n%+v\nleader state\n%+v", fs, ls)
			}
			wantEpochs := []epochEntry{{1, 0}, {2, 5}, {4, 10}}
			if got := follower.epochEntries(); !slices.Equal(got, wantEpochs) {
				t.Fatalf("epochs %v, want %v", got, wantEpochs)
			}
			// Reopened, the follower's state is the same.
			if err := follower.Close(); err != nil {
				t.Fatal(err)
			}
			follower = mustOpen(t, fsys, dir+"-f", Config{SegmentBytes: 300})
			if ls, fs := stateOf(leader), stateOf(follower); !ls.equal(fs) {
				t.Fatalf("reopened follower state\n%+v\nleader state\n%+v", fs, ls)
			}
			// Become leader: a retry of a batch the old leader acknowledged
			// is a duplicate, the next one is in sequence, and the open
			// transaction completes.
			res, err = follower.Append(makeBatch(t, batchSpec{records: 2, pid: 1, seq: 4, tag: 'f'}), time.Now(), 6)
			if err != nil || !res.Duplicate || res.BaseOffset != 11 {
				t.Fatalf("retry on the new leader: %+v, %v; want a duplicate at 11", res, err)
			}
			if _, err := follower.Append(makeBatch(t, batchSpec{records: 1, pid: 1, seq: 7}), time.Now(), 6); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("a sequence gap on the new leader: %v", err)
			}
			res, err = follower.Append(makeBatch(t, batchSpec{records: 1, pid: 1, seq: 6}), time.Now(), 6)
			if err != nil || res.Duplicate || res.BaseOffset != 15 {
				t.Fatalf("next batch on the new leader: %+v, %v", res, err)
			}
			if follower.LastStableOffset() != 14 {
				t.Fatalf("LSO %d with pid 2's transaction open at 14", follower.LastStableOffset())
			}
			mustMarker(t, follower, 2, 0, true)
			if follower.LastStableOffset() != follower.EndOffset() {
				t.Fatalf("LSO %d after the commit, end %d", follower.LastStableOffset(), follower.EndOffset())
			}
			follower.Close()
		})
	}
}

func TestAppendAsFollowerRejects(t *testing.T) {
	fsys := NewMemFS()
	leader := mustOpen(t, fsys, "/d/t-0", Config{})
	defer leader.Close()
	leaderBatches(t, leader)
	all := rawLog(t, leader)
	follower := mustOpen(t, fsys, "/d/f-0", Config{})
	defer follower.Close()
	first := all[:parseHeader(all).size]
	if _, err := follower.AppendAsFollower(bytes.Clone(first), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.AppendAsFollower(bytes.Clone(first), time.Now()); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("repeated batch: %v, want ErrOffsetMismatch", err)
	}
	rest := bytes.Clone(all[len(first):])
	rest[len(rest)-1] ^= 1
	if _, err := follower.AppendAsFollower(rest, time.Now()); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("bad CRC: %v, want ErrCorruptMessage", err)
	}
	if follower.EndOffset() != 3 {
		t.Fatalf("end %d after refused appends, want 3", follower.EndOffset())
	}
	// Batches out of order within one fetch.
	second := all[len(first) : len(first)+int(parseHeader(all[len(first):]).size)]
	swapped := append(append([]byte{}, second...), first...)
	if _, err := follower.AppendAsFollower(swapped, time.Now()); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("out of order: %v, want ErrInvalidRecord", err)
	}
}

// TestTruncateToProducerState replicates the history, truncates at each
// step boundary and compares with a log that only ever had the prefix;
// then a retry of the idempotent producer's batch from before the
// truncation is a duplicate, and one from after it is written.
func TestTruncateToProducerState(t *testing.T) {
	fsys := NewMemFS()
	leader := mustOpen(t, fsys, "/d/leader-0", Config{})
	defer leader.Close()
	steps := leaderBatches(t, leader)
	all := rawLog(t, leader)
	for i, off := range steps {
		prefix := mustOpen(t, fsys, "/d/prefix-0", Config{})
		if off > 0 {
			if _, err := prefix.AppendAsFollower(bytes.Clone(all[:bytePos(t, all, off)]), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		f := mustOpen(t, fsys, "/d/f-0", Config{SegmentBytes: 250})
		if _, err := f.AppendAsFollower(bytes.Clone(all), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := f.TruncateTo(off); err != nil {
			t.Fatalf("TruncateTo(%d): %v", off, err)
		}
		if want, got := stateOf(prefix), stateOf(f); !want.equal(got) {
			t.Fatalf("step %d: after TruncateTo(%d)\n%+v\nwant\n%+v", i, off, got, want)
		}
		if got, want := rawLog(t, f), all[:bytePos(t, all, off)]; !bytes.Equal(got, want) {
			t.Fatalf("step %d: %d bytes left, want %d", i, len(got), len(want))
		}
		// Reopened (a crash right after), the state holds.
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f = mustOpen(t, fsys, "/d/f-0", Config{SegmentBytes: 250})
		if want, got := stateOf(prefix), stateOf(f); !want.equal(got) {
			t.Fatalf("step %d: reopened after TruncateTo(%d)\n%+v\nwant\n%+v", i, off, got, want)
		}
		for _, l := range []*Log{prefix, f} {
			if err := l.Delete(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Truncate after pid 1's seq 2 batch (offsets 8-9): seq 2 retried is a
	// duplicate, seq 4 (truncated) is new.
	f := mustOpen(t, fsys, "/d/f-0", Config{})
	defer f.Close()
	if _, err := f.AppendAsFollower(bytes.Clone(all), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	res, err := f.Append(makeBatch(t, batchSpec{records: 2, pid: 1, seq: 2, tag: 'd'}), time.Now(), 5)
	if err != nil || !res.Duplicate || res.BaseOffset != 8 {
		t.Fatalf("retry of seq 2: %+v, %v; want duplicate at 8", res, err)
	}
	res, err = f.Append(makeBatch(t, batchSpec{records: 2, pid: 1, seq: 4, tag: 'f'}), time.Now(), 5)
	if err != nil || res.Duplicate || res.BaseOffset != 10 {
		t.Fatalf("retry of seq 4: %+v, %v; want written at 10", res, err)
	}
	if got, want := f.epochEntries(), []epochEntry{{1, 0}, {2, 5}, {5, 10}}; !slices.Equal(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
}

// bytePos is the byte position of the batch starting at offset off in
// back-to-back batches (len(b) past the last).
func bytePos(t *testing.T, b []byte, off int64) int {
	t.Helper()
	pos := 0
	for pos < len(b) {
		h := parseHeader(b[pos:])
		if h.baseOffset >= off {
			return pos
		}
		pos += int(h.size)
	}
	return pos
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l := mustOpen(t, fsys, dir, Config{SegmentBytes: 300})
			leaderBatches(t, l)
			if err := l.TruncateFullyAndStartAt(100); err != nil {
				t.Fatal(err)
			}
			want := replicaState{start: 100, end: 100, lso: 100, producers: []ProducerState{}}
			check := func(what string) {
				t.Helper()
				got := stateOf(l)
				if got.producers == nil {
					got.producers = []ProducerState{}
				}
				if !got.equal(want) {
					t.Fatalf("%s: %+v, want %+v", what, got, want)
				}
			}
			check("after")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, fsys, dir, Config{SegmentBytes: 300})
			defer l.Close()
			check("reopened")
			res, err := l.Append(makeBatch(t, batchSpec{records: 2}), time.Now(), 9)
			if err != nil || res.BaseOffset != 100 {
				t.Fatalf("append after: %+v, %v", res, err)
			}
		})
	}
}
