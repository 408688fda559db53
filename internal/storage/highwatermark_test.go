package storage

import (
	"fmt"
	"testing"
	"time"
)

// TestReadsPastSegment: whether a read from an offset leaves readable
// records in a later segment, below the high watermark; compaction gaps
// at a segment's end send the read to the next segment.
func TestReadsPastSegment(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", compactCfg())
	defer l.Close()
	p := produced{}
	for i := range 60 {
		appendKVs(t, l, 1000, p, put(fmt.Sprintf("key%d", i%4), fmt.Sprintf("v%d", i)))
	}
	bases := segmentBases(t, l)
	if len(bases) < 4 {
		t.Fatalf("%d segments, want at least 4", len(bases))
	}
	active, end := bases[len(bases)-1], l.EndOffset()
	for _, tc := range []struct {
		offset int64
		want   bool
	}{
		{0, true}, {bases[1] - 1, true}, {bases[1], true},
		{active - 1, true}, {active, false}, {end - 1, false}, {end, false}, {end + 1, false},
	} {
		if got := l.ReadsPastSegment(tc.offset, false); got != tc.want {
			t.Errorf("ReadsPastSegment(%d) = %v, want %v (segments %v, end %d)", tc.offset, got, tc.want, bases, end)
		}
	}
	// Below the high watermark only: in the segment holding it, a read
	// returns all there is.
	l.SetHighWatermark(bases[2] + 1)
	if !l.ReadsPastSegment(bases[1], false) || l.ReadsPastSegment(bases[2], false) || l.ReadsPastSegment(bases[2]+1, true) {
		t.Errorf("with the high watermark at %d: %v %v %v", bases[2]+1,
			l.ReadsPastSegment(bases[1], false), l.ReadsPastSegment(bases[2], false), l.ReadsPastSegment(bases[2]+1, true))
	}
	l.SetHighWatermark(end)

	// Cleaning leaves gaps: a read from a removed tombstone's offset at the
	// end of the segment before the active one comes from the active
	// segment, which holds all the rest.
	appendKVs(t, l, 1000, p, tombstone("key0"))
	tomb := l.EndOffset() - 1
	if err := l.roll(msTime(1000)); err != nil {
		t.Fatal(err)
	}
	appendKVs(t, l, 1000, p, put("key1", "x"), put("key2", "y"))
	l.SetHighWatermark(l.EndOffset())
	for _, now := range []int64{2000, 2000 + 25*time.Hour.Milliseconds()} { // keeps, then drops the tombstone
		if _, err := l.Clean(msTime(now)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readRecords(t, l); got[len(got)-3].Offset == tomb {
		t.Fatal("the tombstone was not cleaned away")
	}
	if l.ReadsPastSegment(tomb, false) {
		t.Errorf("ReadsPastSegment(%d), a gap before the active segment = true", tomb)
	}
	if !l.ReadsPastSegment(0, false) {
		t.Error("ReadsPastSegment(0) = false after cleaning")
	}
}
