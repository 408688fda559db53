package storage

import (
	"bytes"
	"testing"
	"time"
)

// A truncation whose fsync fails reports it, and the log is consistent
// after a reopen.
func TestTruncateToSyncFailure(t *testing.T) {
	f := &faultFS{FS: NewMemFS()}
	leader := mustOpen(t, f, "/d/leader-0", Config{})
	leaderBatches(t, leader)
	all := rawLog(t, leader)
	leader.Close()
	l := mustOpen(t, f, "/d/f-0", Config{SegmentBytes: 250})
	if _, err := l.AppendAsFollower(bytes.Clone(all), time.Now()); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *faultFS) { f.failSync = true })
	if err := l.TruncateTo(8); err == nil {
		t.Fatal("TruncateTo with failing fsyncs succeeded")
	}
	f.set(func(f *faultFS) { f.failSync = false })
	l.Close()
	l = mustOpen(t, f, "/d/f-0", Config{SegmentBytes: 250})
	defer l.Close()
	prefix := mustOpen(t, f, "/d/p-0", Config{})
	defer prefix.Close()
	if _, err := prefix.AppendAsFollower(bytes.Clone(all[:bytePos(t, all, 8)]), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, want := stateOf(l), stateOf(prefix); !got.equal(want) {
		t.Fatalf("reopened after a failed truncation:\n%+v\nwant\n%+v", got, want)
	}
}

// A process death at each file-system operation of a truncation, then a
// power loss keeping none or all of the pending directory operations,
// leaves a log that is a prefix of the old one, at least as long as the
// truncated one, whose producers, aborted transactions and epoch cache are
// those of that prefix; or, after TruncateFullyAndStartAt, the new empty
// log.
func TestTruncationCrashExplorer(t *testing.T) {
	leader := mustOpen(t, NewMemFS(), "/d/leader-0", Config{})
	steps := leaderBatches(t, leader)
	all := rawLog(t, leader)
	leader.Close()
	cfg := Config{SegmentBytes: 250, FlushMessages: 1}
	for _, op := range []struct {
		name   string
		off    int64
		fully  bool
		follow bool // the operation is AppendAsFollower of everything, to an empty log
	}{{"TruncateTo", steps[3], false, false}, {"TruncateTo first segment", 1, false, false},
		{"TruncateFullyAndStartAt", 100, true, false}, {"AppendAsFollower", 0, false, true}} {
		points := 0
		for k := 1; ; k++ {
			done := false
			for _, keep := range []int{0, -1} {
				mem := NewMemFS()
				c := &crashFS{FS: mem}
				l := mustOpen(t, c, "/d/f-0", cfg)
				if !op.follow {
					if _, err := l.AppendAsFollower(bytes.Clone(all), time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				c.mu.Lock()
				c.crashAt = c.ops + k
				c.mu.Unlock()
				var err error
				switch {
				case op.follow:
					_, err = l.AppendAsFollower(bytes.Clone(all), time.Now())
				case op.fully:
					err = l.TruncateFullyAndStartAt(op.off)
				default:
					err = l.TruncateTo(op.off)
				}
				if err == nil {
					done = true
				}
				mem.SimulateCrashKeeping(keep)
				l = mustOpen(t, mem, "/d/f-0", cfg)
				got := rawLog(t, l)
				switch {
				case op.fully && l.StartOffset() == op.off:
					if st := stateOf(l); st.end != op.off || len(got) != 0 || len(st.epochs) > 1 || len(st.producers) != 0 {
						t.Fatalf("%s, crash at op %d keeping %d: %+v", op.name, k, keep, st)
					}
				case done && op.follow && len(got) != len(all):
					t.Fatalf("%s completed with flush.messages=1: %d bytes after a power loss, want %d", op.name, len(got), len(all))
				case done && !op.fully && !op.follow && len(got) != keptBytes(all, op.off):
					t.Fatalf("%s completed: %d bytes after a power loss, want %d", op.name, len(got), keptBytes(all, op.off))
				case !bytes.Equal(got, all[:len(got)]) || len(got) < keptBytes(all, op.off):
					t.Fatalf("%s, crash at op %d keeping %d: %d bytes, not a prefix of the old log at least %d long", op.name, k, keep, len(got), keptBytes(all, op.off))
				default:
					prefix := mustOpen(t, mem, "/d/p-0", Config{})
					if len(got) > 0 {
						if _, err := prefix.AppendAsFollower(bytes.Clone(got), time.Now()); err != nil {
							t.Fatal(err)
						}
					}
					if want, st := stateOf(prefix), stateOf(l); !want.equal(st) {
						t.Fatalf("%s, crash at op %d keeping %d:\n%+v\nwant that of its %d bytes\n%+v", op.name, k, keep, st, len(got), want)
					}
					prefix.Close()
				}
				l.Close()
			}
			points++
			if done {
				break
			}
		}
		if points < 5 {
			t.Fatalf("%s: only %d crash points", op.name, points)
		}
	}
}

// keptBytes is the length of the batches wholly below off, which a
// truncation to off keeps.
func keptBytes(b []byte, off int64) int {
	pos := 0
	for pos < len(b) {
		h := parseHeader(b[pos:])
		if h.lastOffset() >= off {
			break
		}
		pos += int(h.size)
	}
	return pos
}

// FuzzAppendAsFollower hands arbitrary bytes (optionally with each framed
// batch's CRC fixed) to AppendAsFollower. It must not panic; what it
// accepts reads back byte for byte, and reopens to the same state.
func FuzzAppendAsFollower(f *testing.F) {
	lead := mustOpen(f, NewMemFS(), "/d/l-0", Config{})
	leaderBatches(f, lead)
	f.Add(rawLog(f, lead), false)
	lead.Close()
	f.Add(makeBatch(f, batchSpec{records: 3, pid: 5, seq: 7}), true)
	f.Add(append(makeBatch(f, batchSpec{}), makeBatch(f, batchSpec{records: 2})...), true)
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC {
			for pos := 0; pos+batchHeaderLen <= len(data); {
				size := int(int32(be32u(data[pos+offBatchLength:]))) + logOverhead
				if size < batchHeaderLen || pos+size > len(data) {
					break
				}
				copy(data[pos+offCRC:], be32(batchCRC(data[pos:pos+size])))
				pos += size
			}
		}
		fsys := NewMemFS()
		cfg := Config{SegmentBytes: 1 << 12}
		l, err := Open(fsys, "/d/t-0", cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		in := bytes.Clone(data)
		if _, err := l.AppendAsFollower(in, time.UnixMilli(1)); err != nil {
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("a refused append changed the log: %v", err)
			}
			return
		}
		if !bytes.Equal(in, data) {
			t.Fatal("the input was changed")
		}
		var got []byte
		for off := l.StartOffset(); off < l.EndOffset(); {
			b, err := l.Read(off, 1<<20, true, nil)
			if err != nil || len(b) == 0 {
				t.Fatalf("Read(%d): %d bytes, %v", off, len(b), err)
			}
			got = append(got, b...)
			off = nextOffsetAfter(b)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes that differ from the %d appended", len(got), len(data))
		}
		want := stateOf(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open(fsys, "/d/t-0", cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := stateOf(l); !got.equal(want) {
			t.Fatalf("reopened:\n%+v\nwant\n%+v", got, want)
		}
	})
}
