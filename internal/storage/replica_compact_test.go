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
