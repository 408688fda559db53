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
		c, dst, ok, err := l.ReadChunk(tc.offset, false, tc.maxBytes, tc.minOne, 0, nil)
		if err != nil || !ok || len(dst) != 0 {
			t.Fatalf("%+v: ok %v err %v, %d bytes copied", tc, ok, err, len(dst))
		}
		if c.Len != tc.wantLen {
			t.Errorf("%+v: chunk of %d bytes, want %d", tc, c.Len, tc.wantLen)
		}
		want, err := l.Read(tc.offset, 1<<20, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len > 0 {
			if got := chunkBytes(c); !bytes.Equal(got, want[:c.Len]) {
				t.Errorf("%+v: chunk bytes differ from Read's", tc)
			}
		}
		c.Close()
		// Below copyBelow the same range comes as a copy after dst's
		// bytes, without a descriptor.
		prefix := []byte("prefix")
		c, dst, ok, err = l.ReadChunk(tc.offset, false, tc.maxBytes, tc.minOne, tc.wantLen+1, prefix)
		if err != nil || !ok || c.File != nil || c.Len != 0 {
			t.Fatalf("%+v copied: ok %v err %v chunk %+v", tc, ok, err, c)
		}
		if !bytes.Equal(dst, append(prefix, want[:tc.wantLen]...)) {
			t.Errorf("%+v: copied %d bytes, want the %d Read returns after the prefix", tc, len(dst)-len(prefix), tc.wantLen)
		}
	}
	if _, _, _, err := l.ReadChunk(51, false, 100, true, 0, nil); err == nil {
		t.Error("offset past the end: want ErrOffsetOutOfRange")
	}

	// The chunk's descriptor outlives the segment's removal.
	c, _, _, err := l.ReadChunk(0, false, 1<<20, true, 0, nil)
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
	if _, _, ok, err := mem.ReadChunk(0, false, 1<<20, true, 0, nil); ok || err != nil {
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

// TestFindBatchTail: what the tail of recent batches answers is what the
// index and header walk answer, for every offset of every segment, as the
// log grows, rolls, is truncated and reopened.
func TestFindBatchTail(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, OSFS{}, dir, Config{SegmentBytes: 4 << 10, IndexIntervalBytes: 1 << 10})
	defer func() { l.Close() }()
	check := func(when string) {
		t.Helper()
		l.mu.RLock()
		defer l.mu.RUnlock()
		var buf [batchHeaderLen]byte
		hits := 0
		for _, s := range l.segments {
			for off := s.base - 1; off <= s.next+1; off++ {
				got, gotFound, err := s.findBatch(off, buf[:])
				if err != nil {
					t.Fatalf("%s: findBatch(%d): %v", when, off, err)
				}
				pos, h, found, err := s.locate(off, buf[:])
				if err != nil {
					t.Fatalf("%s: locate(%d): %v", when, off, err)
				}
				want := tailBatch{pos: pos, base: h.baseOffset, lastDelta: h.lastOffsetDelta, size: h.size}
				if gotFound != found || found && got != want {
					t.Fatalf("%s: segment %d offset %d: tail says %+v %v, locate %+v %v", when, s.base, off, got, gotFound, want, found)
				}
				if t := s.tail; t != nil && t.n > 0 && off >= t.b[0].base {
					hits++
				}
			}
		}
		if hits == 0 {
			t.Fatalf("%s: no offset was answered from the tail", when)
		}
	}
	appendSome := func(n int) {
		for i := range n {
			mustAppend(t, l, makeBatch(t, batchSpec{records: 1 + i%4, valueSize: 40 + 30*(i%3)}), 1000)
		}
	}
	appendSome(5)
	check("first appends")
	appendSome(40) // rolls several times
	check("after rolls")
	if err := l.TruncateTo(l.EndOffset() - 3); err != nil {
		t.Fatal(err)
	}
	appendSome(2)
	check("after a truncation")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, OSFS{}, dir, Config{SegmentBytes: 4 << 10, IndexIntervalBytes: 1 << 10})
	appendSome(3)
	check("after reopening")
}
