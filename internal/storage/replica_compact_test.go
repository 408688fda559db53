package storage

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// A follower copies a compacted leader's log, gaps and all, byte for byte;
// a truncation into the cleaned part moves the cleaner checkpoint back.
func TestFollowerOfCompactedLog(t *testing.T) {
	fsys := NewMemFS()
	leader := mustOpen(t, fsys, "/d/leader-0", compactCfg())
	defer leader.Close()
	p := produced{}
	for i := range 120 {
		appendKVs(t, leader, 1000, p, put(fmt.Sprintf("key%d", i%4), fmt.Sprintf("v%d", i)))
	}
	if _, err := leader.Clean(msTime(2000)); err != nil {
		t.Fatal(err)
	}
	all := rawLog(t, leader)

	f := mustOpen(t, fsys, "/d/f-0", compactCfg())
	defer func() { f.Close() }()
	// Batch by batch, as fetches from each follower position would bring them.
	for pos := 0; pos < len(all); {
		n := int(parseHeader(all[pos:]).size)
		if _, err := f.AppendAsFollower(bytes.Clone(all[pos:pos+n]), time.Now()); err != nil {
			t.Fatalf("AppendAsFollower at byte %d: %v", pos, err)
		}
		pos += n
	}
	if got := rawLog(t, f); !bytes.Equal(got, all) {
		t.Fatal("the follower's bytes differ from the compacted leader's")
	}
	if f.EndOffset() != leader.EndOffset() {
		t.Fatalf("end %d, leader's %d", f.EndOffset(), leader.EndOffset())
	}
	// The leader, become a follower, truncates into its cleaned part.
	dirty, ok, err := readCheckpoint(fsys, leader.dir, cleanerCheckpointFile)
	if err != nil || !ok || dirty < 60 {
		t.Fatalf("cleaner checkpoint %d, %v, %v", dirty, ok, err)
	}
	if err := leader.TruncateTo(40); err != nil {
		t.Fatal(err)
	}
	if dirty, _, err := readCheckpoint(fsys, leader.dir, cleanerCheckpointFile); err != nil || dirty != leader.EndOffset() {
		t.Fatalf("cleaner checkpoint %d after truncating to %d, %v", dirty, leader.EndOffset(), err)
	}
	if err := f.TruncateTo(40); err != nil {
		t.Fatal(err)
	}
	if got := rawLog(t, f); !bytes.Equal(got, all[:len(got)]) || nextOffsetAfter(got) > 40 || !bytes.Equal(got, rawLog(t, leader)) {
		t.Fatalf("after TruncateTo(40): %d bytes ending at %d", len(got), nextOffsetAfter(got))
	}
	// Catching up again from the new end gives the leader's log back.
	rest := all[bytePos(t, all, f.EndOffset()):]
	if _, err := f.AppendAsFollower(bytes.Clone(rest), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := rawLog(t, f); !bytes.Equal(got, all) {
		t.Fatal("after catching up, the follower's bytes differ")
	}
	f.Close()
	f = mustOpen(t, fsys, "/d/f-0", compactCfg())
	if got := rawLog(t, f); !bytes.Equal(got, all) {
		t.Fatal("reopened, the follower's bytes differ")
	}
}

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
		name  string
		off   int64
		fully bool
	}{{"TruncateTo", steps[3], false}, {"TruncateTo first segment", 1, false}, {"TruncateFullyAndStartAt", 100, true}} {
		points := 0
		for k := 1; ; k++ {
			done := false
			for _, keep := range []int{0, -1} {
				mem := NewMemFS()
				c := &crashFS{FS: mem}
				l := mustOpen(t, c, "/d/f-0", cfg)
				if _, err := l.AppendAsFollower(bytes.Clone(all), time.Now()); err != nil {
					t.Fatal(err)
				}
				c.mu.Lock()
				c.crashAt = c.ops + k
				c.mu.Unlock()
				var err error
				if op.fully {
					err = l.TruncateFullyAndStartAt(op.off)
				} else {
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
				case done && !op.fully && len(got) != keptBytes(all, op.off):
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
