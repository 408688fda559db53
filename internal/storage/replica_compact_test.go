package storage

import (
	"bytes"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
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

// blockFS blocks the first creation of a ".log.cleaned" file until release
// is closed, signalling started: a Clean is then running.
type blockFS struct {
	FS
	once             sync.Once
	started, release chan struct{}
}

func (b *blockFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if strings.HasSuffix(name, extLog+extCleaned) {
		b.once.Do(func() {
			close(b.started)
			<-b.release
		})
	}
	return b.FS.OpenFile(name, flag, perm)
}

// A truncation does not wait for a running Clean's pass to end: the pass
// gives up at its next batch and swaps nothing in.
func TestTruncateGivesCleanUp(t *testing.T) {
	fsys := &blockFS{FS: NewMemFS(), started: make(chan struct{}), release: make(chan struct{})}
	l := mustOpen(t, fsys, "/d/t-0", compactCfg())
	defer l.Close()
	p := produced{}
	for i := range 120 {
		appendKVs(t, l, 1000, p, put(fmt.Sprintf("key%d", i%4), fmt.Sprintf("v%d", i)))
	}
	before := rawLog(t, l)
	cleaned := make(chan error, 1)
	go func() {
		st, err := l.Clean(msTime(2000))
		if err == nil && st.RecordsRemoved > 0 {
			err = fmt.Errorf("the pass removed %d records", st.RecordsRemoved)
		}
		cleaned <- err
	}()
	<-fsys.started
	truncated := make(chan error, 1)
	go func() { truncated <- l.TruncateTo(50) }()
	for l.truncating.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(fsys.release)
	if err := <-cleaned; err != nil {
		t.Fatalf("Clean: %v", err)
	}
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	if got := rawLog(t, l); !bytes.Equal(got, before[:keptBytes(before, 50)]) {
		t.Fatalf("%d bytes after the truncation, want the first %d of the uncleaned log", len(got), keptBytes(before, 50))
	}
	if names, _ := fsys.ReadDirNames("/d/t-0"); slices.ContainsFunc(names, func(n string) bool {
		return strings.HasSuffix(n, extCleaned) || strings.HasSuffix(n, extSwap)
	}) {
		t.Fatalf("files of the given-up pass are left: %v", names)
	}
	// The next pass cleans.
	if st, err := l.Clean(msTime(2000)); err != nil || st.RecordsRemoved == 0 {
		t.Fatalf("next pass: %+v, %v", st, err)
	}
}
