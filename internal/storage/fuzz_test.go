package storage

import (
	"errors"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// validSegment returns a few valid batches back to back with their offsets
// assigned, as a .log file holds them.
func validSegment(tb testing.TB) []byte {
	var seg []byte
	off := int64(0)
	for i := range 4 {
		b := makeBatch(tb, batchSpec{records: 1 + i, valueSize: 20, ts: int64(i * 10), pid: int64(1 + i%2), seq: int32(i / 2)})
		assignOffsets(b, off, 0, -1)
		off += int64(i + 1)
		seg = append(seg, b...)
	}
	return seg
}

// FuzzSegmentRecovery hands arbitrary bytes to Open as a segment (and its
// .index), with or without a clean-shutdown marker. Open must not panic and
// must leave a consistent log: readable from start to end, appendable at the
// end, and the same after a reopen.
func FuzzSegmentRecovery(f *testing.F) {
	seg := validSegment(f)
	f.Add(seg, []byte(nil), false)
	f.Add(seg, []byte(nil), true)
	f.Add(seg[:len(seg)-7], []byte(nil), false)
	f.Add(seg[:len(seg)-7], []byte(nil), true)
	f.Add(append(append([]byte(nil), seg...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100), []byte{0, 0, 0, 3, 0, 0, 0, 100}, true)
	f.Add([]byte("garbage"), []byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, logData, indexData []byte, clean bool) {
		fsys := NewMemFS()
		dir := "/d/t-0"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{
			offsetFileName(dir, 0, extLog):   logData,
			offsetFileName(dir, 0, extIndex): indexData,
		} {
			if err := writeFileAtomic(fsys, name, data); err != nil {
				t.Fatal(err)
			}
		}
		if clean {
			if err := writeFileAtomic(fsys, dir+"/"+cleanShutdownFile, nil); err != nil {
				t.Fatal(err)
			}
		}
		l, err := Open(fsys, dir, Config{IndexIntervalBytes: 1}, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		end := l.EndOffset()
		// Trusted (clean) data is not CRC-checked, as in Kafka.
		var read int64
		for off := l.StartOffset(); off < end; {
			b, err := l.Read(off, 1<<20, true, nil)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			bs, err := splitBatches(b, !clean)
			if err != nil || len(bs) == 0 {
				t.Fatalf("Read(%d): %d batches, %v", off, len(bs), err)
			}
			last := bs[len(bs)-1]
			next := last.FirstOffset + int64(last.LastOffsetDelta) + 1
			if next <= off {
				t.Fatalf("Read(%d) does not advance", off)
			}
			read += int64(len(bs))
			off = next
		}
		res, err := l.Append(makeBatch(t, batchSpec{}), time.Now(), 0)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err == nil && res.BaseOffset != end {
			t.Fatalf("append at %d, end was %d", res.BaseOffset, end)
		}
		want := l.EndOffset()
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		l, err = Open(fsys, dir, Config{}, nil)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer l.Close()
		if l.EndOffset() != want {
			t.Fatalf("end %d after reopen, want %d", l.EndOffset(), want)
		}
	})
}

// FuzzAppend hands arbitrary bytes to Append (optionally with each framed
// batch's CRC fixed, to get past the CRC check). Append must not panic; what
// it accepts must read back as valid batches with the offsets it returned.
func FuzzAppend(f *testing.F) {
	f.Add(makeBatch(f, batchSpec{records: 3}), false)
	f.Add(makeBatch(f, batchSpec{records: 3, pid: 5, seq: 7}), true)
	f.Add(append(makeBatch(f, batchSpec{}), makeBatch(f, batchSpec{records: 2})...), false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0, 0, 0, 0, 2}, true)
	for _, codec := range []recordbatch.Codec{recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		f.Add(streamBatch(f, codec, encodeRecords(3, 100, 7), 3, nil), true) // validateRecords' streamed walk
	}
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
		// Arbitrary timestamps would mostly be refused, and leave the
		// rest of the validation unexplored.
		l, err := Open(NewMemFS(), "/d/t-0", Config{SegmentBytes: 1 << 16, TimestampAfterMaxMs: clockFree}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		res, err := l.Append(data, time.UnixMilli(1), 3)
		if err != nil {
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("a failed append changed the log: %v", err)
			}
			return
		}
		if res.BaseOffset != 0 || res.LastOffset != l.EndOffset()-1 || l.Size() != int64(len(data)) {
			t.Fatalf("result %+v, end %d, size %d of %d", res, l.EndOffset(), l.Size(), len(data))
		}
		b, err := l.Read(0, int32(len(data)), true, nil)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := splitBatches(b, true)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, rb := range bs {
			if rb.FirstOffset != n {
				t.Fatalf("batch at %d, want %d", rb.FirstOffset, n)
			}
			n += int64(rb.LastOffsetDelta) + 1
		}
		if n != l.EndOffset() {
			t.Fatalf("batches end at %d, log at %d", n, l.EndOffset())
		}
	})
}

func be32u(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// FuzzIndexFiles hands arbitrary .index and .timeindex files to a trusted,
// inactive segment (after a clean shutdown). Open must not panic, and every
// read must return the batch holding the offset or an error wrapping
// ErrCorrupt: an index must never send a reader to the wrong batch.
func FuzzIndexFiles(f *testing.F) {
	seg := validSegment(f) // offsets 0-9 in batches of 1, 2, 3 and 4 records
	f.Add([]byte(nil), []byte(nil))
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 9})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, index, timeIndex []byte) {
		fsys := NewMemFS()
		dir := "/d/t-0"
		fsys.MkdirAll(dir, 0o755)
		second := makeBatch(t, batchSpec{ts: 100})
		assignOffsets(second, 10, 0, -1)
		for name, data := range map[string][]byte{
			offsetFileName(dir, 0, extLog):        seg,
			offsetFileName(dir, 0, extIndex):      index,
			offsetFileName(dir, 0, extTimeIndex):  timeIndex,
			offsetFileName(dir, 10, extLog):       second,
			offsetFileName(dir, 10, extTimeIndex): {0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0},
			dir + "/" + cleanShutdownFile:         nil,
		} {
			if err := writeFileAtomic(fsys, name, data); err != nil {
				t.Fatal(err)
			}
		}
		l, err := Open(fsys, dir, Config{IndexIntervalBytes: 1 << 20}, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		if l.EndOffset() != 11 {
			t.Fatalf("end %d", l.EndOffset())
		}
		batchStart := []int64{0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10}
		for off := range int64(11) {
			b, err := l.Read(off, 1, true, nil)
			if errors.Is(err, ErrCorrupt) {
				continue
			}
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			bs, err := splitBatches(b, true)
			if err != nil || len(bs) != 1 || bs[0].FirstOffset != batchStart[off] {
				t.Fatalf("Read(%d) gave %v %v, want the batch at %d", off, bs, err, batchStart[off])
			}
		}
		if _, _, err := l.BatchForTimestamp(15); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("BatchForTimestamp: %v", err)
		}
	})
}
