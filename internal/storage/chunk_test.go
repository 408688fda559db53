package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// TestReadChunk: a chunk is the same bytes Read returns, starting at the
// batch holding the offset and ending on a batch boundary within maxBytes
// (at least the first batch with minOne); the in-memory FS gives no chunks.
func TestReadChunk(t *testing.T) {
	// An index entry per batch (interval 1) and none (the header walk alone).
	for _, interval := range []int32{1, 1 << 20} {
		t.Run(fmt.Sprint(interval), func(t *testing.T) { testReadChunk(t, interval) })
	}
}

func testReadChunk(t *testing.T, interval int32) {
	dir := t.TempDir()
	l := mustOpen(t, OSFS{}, dir, Config{SegmentBytes: 1 << 20, IndexIntervalBytes: interval})
	defer l.Close()
	var sizes []int64
	for i := range 10 {
		b := makeBatch(t, batchSpec{records: 5, valueSize: 50, tag: byte('a' + i)})
		sizes = append(sizes, int64(len(b)))
		mustAppend(t, l, b, 1000)
	}
	chunkBytes := func(c Chunk) []byte {
		t.Helper()
		b := make([]byte, c.Len)
		if _, err := c.File.ReadAt(b, c.Pos); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		offset   int64
		maxBytes int32
		minOne   bool
		wantLen  int64
	}{
		{offset: 0, maxBytes: 1 << 20, wantLen: sum(sizes)},
		{offset: 12, maxBytes: 1 << 20, wantLen: sum(sizes[2:])},                                   // inside the third batch
		{offset: 0, maxBytes: int32(sizes[0]) + 10, wantLen: sizes[0]},                             // would cut the second batch
		{offset: 0, maxBytes: int32(sizes[0]+sizes[1]+sizes[2]) - 1, wantLen: sizes[0] + sizes[1]}, // just short of three
		{offset: 0, maxBytes: 5, minOne: true, wantLen: sizes[0]},
		{offset: 0, maxBytes: 5, wantLen: 0},
		{offset: 50, maxBytes: 1 << 20, wantLen: 0}, // the end offset
	} {
		c, ok, err := l.ReadChunk(tc.offset, false, tc.maxBytes, tc.minOne)
		if err != nil || !ok {
			t.Fatalf("%+v: ok %v err %v", tc, ok, err)
		}
		if c.Len != tc.wantLen {
			t.Errorf("%+v: chunk of %d bytes, want %d", tc, c.Len, tc.wantLen)
		}
		if c.Len > 0 {
			want, err := l.Read(tc.offset, 1<<20, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := chunkBytes(c); !bytes.Equal(got, want[:c.Len]) {
				t.Errorf("%+v: chunk bytes differ from Read's", tc)
			}
		}
		c.Close()
	}
	if _, _, err := l.ReadChunk(51, false, 100, true); err == nil {
		t.Error("offset past the end: want ErrOffsetOutOfRange")
	}

	// The chunk's descriptor outlives the segment's removal.
	c, _, err := l.ReadChunk(0, false, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	want := chunkBytes(c)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if got := chunkBytes(c); !bytes.Equal(got, want) {
		t.Error("chunk unreadable after the log was deleted")
	}
	c.Close()

	mem := mustOpen(t, NewMemFS(), "/m", Config{})
	defer mem.Close()
	mustAppend(t, mem, makeBatch(t, batchSpec{}), 1000)
	if _, ok, err := mem.ReadChunk(0, false, 1<<20, true); ok || err != nil {
		t.Errorf("MemFS: ok %v err %v, want no chunk", ok, err)
	}
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}
