package storage

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAppendReadRoundTrip(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 300}
			l := mustOpen(t, fsys, dir, cfg)
			type sent struct{ base, last int64 }
			var want []sent
			for i := range 150 {
				b := makeBatch(t, batchSpec{records: 1 + i%7, valueSize: 10 + i%50, ts: int64(1000 + i), tag: byte(i)})
				res := mustAppend(t, l, b, 5000)
				if len(want) > 0 && res.BaseOffset != want[len(want)-1].last+1 {
					t.Fatalf("batch %d: base %d does not follow %d", i, res.BaseOffset, want[len(want)-1].last)
				}
				if res.LastOffset-res.BaseOffset != int64(i%7) || res.LogAppendTime != -1 || res.Duplicate {
					t.Fatalf("batch %d: bad result %+v", i, res)
				}
				want = append(want, sent{res.BaseOffset, res.LastOffset})
			}
			if n := len(segmentBases(t, l)); n < 5 {
				t.Fatalf("only %d segments; the test wants several", n)
			}
			check := func(l *Log) {
				t.Helper()
				got := readAll(t, l, 0)
				if len(got) != len(want) {
					t.Fatalf("read %d batches, want %d", len(got), len(want))
				}
				for i, b := range got {
					if b.FirstOffset != want[i].base || b.FirstOffset+int64(b.LastOffsetDelta) != want[i].last {
						t.Fatalf("batch %d: offsets [%d,+%d], want [%d,%d]", i, b.FirstOffset, b.LastOffsetDelta, want[i].base, want[i].last)
					}
					if b.PartitionLeaderEpoch != 7 {
						t.Fatalf("batch %d: leader epoch %d", i, b.PartitionLeaderEpoch)
					}
					var r kmsg.Record
					if err := r.ReadFrom(b.Records); err != nil || len(r.Value) == 0 || r.Value[0] != byte(i) {
						t.Fatalf("batch %d: first record %v %q", i, err, r.Value)
					}
				}
				// Every offset lands on the batch holding it.
				for i, w := range want {
					for off := w.base; off <= w.last; off++ {
						b, err := l.Read(off, 1, true, nil)
						if err != nil {
							t.Fatalf("Read(%d): %v", off, err)
						}
						bs := decodeBatches(t, b)
						if len(bs) != 1 || bs[0].FirstOffset != w.base {
							t.Fatalf("Read(%d) gave %d batches starting at %d, want batch %d at %d", off, len(bs), bs[0].FirstOffset, i, w.base)
						}
					}
				}
			}
			check(l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, fsys, dir, cfg)
			defer l.Close()
			if l.EndOffset() != want[len(want)-1].last+1 {
				t.Fatalf("end offset after reopen %d", l.EndOffset())
			}
			check(l)
		})
	}
}

func TestReadBounds(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	var sizes []int
	for i := range 5 {
		b := makeBatch(t, batchSpec{records: 3, valueSize: 100})
		sizes = append(sizes, len(b))
		mustAppend(t, l, b, int64(i))
	}
	end := l.EndOffset()
	tests := []struct {
		name        string
		offset      int64
		maxBytes    int32
		minOne      bool
		wantBatches int
		wantErr     error
	}{
		{"below start", -1, 1 << 20, true, 0, ErrOffsetOutOfRange},
		{"past end", end + 1, 1 << 20, true, 0, ErrOffsetOutOfRange},
		{"at end", end, 1 << 20, true, 0, nil},
		{"all", 0, 1 << 20, false, 5, nil},
		{"mid batch", 4, 1 << 20, false, 4, nil},
		{"too small without minOne", 0, int32(sizes[0] - 1), false, 0, nil},
		{"too small with minOne", 0, int32(sizes[0] - 1), true, 1, nil},
		{"two and a half", 0, int32(sizes[0] + sizes[1] + sizes[2]/2), false, 2, nil},
		{"zero maxBytes with minOne", 3, 0, true, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := l.Read(tt.offset, tt.maxBytes, tt.minOne, prefix)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("dst prefix lost")
			}
			if n := len(decodeBatches(t, got[len(prefix):])); n != tt.wantBatches {
				t.Fatalf("%d batches, want %d", n, tt.wantBatches)
			}
		})
	}
}

func TestAppendValidation(t *testing.T) {
	good := func() []byte { return makeBatch(t, batchSpec{records: 2}) }
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		wantErr error
	}{
		{"empty", func([]byte) []byte { return nil }, ErrInvalidRecord},
		{"bad CRC", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorruptMessage},
		{"magic 1", func(b []byte) []byte { b[offMagic] = 1; return b }, ErrUnsupportedMagic},
		{"magic 3", func(b []byte) []byte { b[offMagic] = 3; return b }, ErrCorruptMessage},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, ErrCorruptMessage},
		{"short header", func(b []byte) []byte { return b[:40] }, ErrCorruptMessage},
		{"trailing garbage", func(b []byte) []byte { return append(b, 1, 2, 3) }, ErrCorruptMessage},
		{"length too small", func(b []byte) []byte { b[offBatchLength+3] = 10; b[offBatchLength+2] = 0; return b }, ErrCorruptMessage},
		{"count mismatch", func(b []byte) []byte {
			b[offRecordCount+3] = 1
			copy(b[offCRC:], be32(batchCRC(b)))
			return b
		}, ErrInvalidRecord},
		{"negative delta", func(b []byte) []byte {
			copy(b[offLastOffsetDelta:], be32(math.MaxUint32))
			copy(b[offCRC:], be32(batchCRC(b)))
			return b
		}, ErrCorruptMessage},
		{"second batch corrupt", func(b []byte) []byte {
			c := good()
			c[len(c)-1] ^= 1
			return append(b, c...)
		}, ErrCorruptMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
			defer l.Close()
			_, err := l.Append(tt.mutate(good()), time.Now(), 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("a rejected append changed the log: end %d size %d", l.EndOffset(), l.Size())
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{MaxMessageBytes: 500})
		defer l.Close()
		if _, err := l.Append(makeBatch(t, batchSpec{records: 10, valueSize: 100}), time.Now(), 0); !errors.Is(err, ErrRecordTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("larger than a segment", func(t *testing.T) {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 200})
		defer l.Close()
		if _, err := l.Append(makeBatch(t, batchSpec{records: 10, valueSize: 100}), time.Now(), 0); !errors.Is(err, ErrRecordTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func TestMultiBatchAppend(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	mustAppend(t, l, makeBatch(t, batchSpec{records: 2}), 0)
	in := append(makeBatch(t, batchSpec{records: 3, tag: 1}), makeBatch(t, batchSpec{records: 4, tag: 2})...)
	res := mustAppend(t, l, in, 0)
	if res.BaseOffset != 2 || res.LastOffset != 8 {
		t.Fatalf("result %+v", res)
	}
	got := readAll(t, l, 0)
	if len(got) != 3 || got[1].FirstOffset != 2 || got[2].FirstOffset != 5 {
		t.Fatalf("batches %+v", got)
	}
}

func TestLogAppendTime(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{LogAppendTime: true})
	defer l.Close()
	res := mustAppend(t, l, makeBatch(t, batchSpec{records: 3, ts: 100}), 123456)
	if res.LogAppendTime != 123456 {
		t.Fatalf("LogAppendTime %d", res.LogAppendTime)
	}
	b, err := l.Read(0, 1<<20, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeBatches(t, b) // checks the recomputed CRC
	if got[0].MaxTimestamp != 123456 || got[0].Attributes&attrTimestampType == 0 || got[0].FirstTimestamp != 100 {
		t.Fatalf("batch %+v", got[0])
	}
}

func TestRollBySize(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 1000})
	defer l.Close()
	b := makeBatch(t, batchSpec{records: 1, valueSize: 200})
	perSegment := 1000 / len(b)
	for i := range 3 * perSegment {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 1, valueSize: 200}), int64(i))
	}
	bases := segmentBases(t, l)
	want := []int64{0, int64(perSegment), int64(2 * perSegment)}
	if len(bases) != 3 || bases[1] != want[1] || bases[2] != want[2] {
		t.Fatalf("bases %v, want %v", bases, want)
	}
	l.mu.RLock()
	for _, s := range l.segments {
		if s.size > 1000 {
			t.Errorf("segment %d has %d bytes", s.base, s.size)
		}
	}
	l.mu.RUnlock()
}

func TestRollByTime(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentMs: time.Hour, TimestampAfterMaxMs: clockFree})
	defer l.Close()
	hour := time.Hour.Milliseconds()
	mustAppend(t, l, makeBatch(t, batchSpec{ts: 0}), 0)
	mustAppend(t, l, makeBatch(t, batchSpec{ts: hour}), 0) // exactly segment.ms: no roll
	if n := len(segmentBases(t, l)); n != 1 {
		t.Fatalf("%d segments after an hour", n)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{ts: hour + 1}), 0)
	if bases := segmentBases(t, l); len(bases) != 2 || bases[1] != 2 {
		t.Fatalf("bases %v", bases)
	}
	// The new segment counts from its own first batch.
	mustAppend(t, l, makeBatch(t, batchSpec{ts: 2 * hour}), 0)
	if n := len(segmentBases(t, l)); n != 2 {
		t.Fatalf("%d segments", n)
	}
}

func TestRollByIndexFull(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentIndexBytes: 24, IndexIntervalBytes: 1})
	defer l.Close()
	for i := range 10 {
		mustAppend(t, l, makeBatch(t, batchSpec{ts: int64(i)}), 0)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segments) < 3 {
		t.Fatalf("%d segments", len(l.segments))
	}
	for _, s := range l.segments {
		if len(s.index) > 3 || len(s.tindex) > 3 {
			t.Fatalf("segment %d: %d index and %d time index entries", s.base, len(s.index), len(s.tindex))
		}
	}
}

func TestRetentionByTime(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			l := mustOpen(t, fsys, dir, Config{SegmentBytes: 500, RetentionMs: time.Minute, TimestampAfterMaxMs: clockFree})
			defer l.Close()
			minute := time.Minute.Milliseconds()
			for i := range 12 {
				mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 150, ts: int64(i) * minute}), 0)
			}
			before := segmentBases(t, l)
			// At 12 minutes, only segments whose newest record is older
			// than 11 minutes go.
			n, err := l.ApplyRetention(msTime(12 * minute))
			if err != nil {
				t.Fatal(err)
			}
			after := segmentBases(t, l)
			if n == 0 || len(after) != len(before)-n {
				t.Fatalf("deleted %d of %v, left %v", n, before, after)
			}
			if l.StartOffset() != after[0] {
				t.Fatalf("start %d, first segment %d", l.StartOffset(), after[0])
			}
			if _, err := l.Read(after[0]-1, 100, true, nil); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below start: %v", err)
			}
			for _, base := range before[:n] {
				if _, err := fsys.OpenFile(offsetFileName(dir, base, extLog), os.O_RDONLY, 0); err == nil {
					t.Fatalf("segment %d still on disk", base)
				}
			}
			got := readAll(t, l, l.StartOffset())
			if got[0].MaxTimestamp < 10*minute {
				t.Fatalf("kept a batch of %d", got[0].MaxTimestamp)
			}
			// Everything expired: the active segment is rolled first and an
			// empty one remains.
			if _, err := l.ApplyRetention(msTime(100 * minute)); err != nil {
				t.Fatal(err)
			}
			if bases := segmentBases(t, l); len(bases) != 1 || bases[0] != 12 || l.StartOffset() != 12 || l.EndOffset() != 12 {
				t.Fatalf("bases %v start %d end %d", bases, l.StartOffset(), l.EndOffset())
			}
			res := mustAppend(t, l, makeBatch(t, batchSpec{ts: 100 * minute}), 0)
			if res.BaseOffset != 12 || res.LogStartOffset != 12 {
				t.Fatalf("append after retention: %+v", res)
			}
		})
	}
}

func TestRetentionBySize(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 1000, RetentionMs: -1})
	defer l.Close()
	for i := range 30 {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 200, ts: int64(i)}), 0)
	}
	total := l.Size()
	bases := segmentBases(t, l)
	retention := total - 1500
	if err := l.SetConfig(Config{SegmentBytes: 1000, RetentionMs: -1, RetentionBytes: retention}); err != nil {
		t.Fatal(err)
	}
	n, err := l.ApplyRetention(msTime(1 << 40))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || l.Size() < retention {
		t.Fatalf("deleted %d segments, size %d below retention %d", n, l.Size(), retention)
	}
	// One more segment would have gone below retention.bytes.
	l.mu.RLock()
	first := l.segments[0].size
	l.mu.RUnlock()
	if l.Size()-first >= retention {
		t.Fatalf("size %d: the oldest segment (%d bytes) should have gone", l.Size(), first)
	}
	if l.StartOffset() != bases[n] {
		t.Fatalf("start %d, want %d", l.StartOffset(), bases[n])
	}
	// Unlimited time retention keeps everything else.
	if n, err := l.ApplyRetention(msTime(1 << 40)); n != 0 || err != nil {
		t.Fatalf("second pass deleted %d: %v", n, err)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 500}
	l := mustOpen(t, fsys, "/d/t-0", cfg)
	for range 20 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 2, valueSize: 50}), 0)
	}
	if _, err := l.DeleteRecordsBefore(41); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past end: %v", err)
	}
	bases := segmentBases(t, l)
	target := bases[2] + 1 // inside the third segment
	start, err := l.DeleteRecordsBefore(target)
	if err != nil || start != target || l.StartOffset() != target {
		t.Fatalf("start %d (%d) err %v", start, l.StartOffset(), err)
	}
	if got := segmentBases(t, l); got[0] != bases[2] {
		t.Fatalf("segments %v, want first %d", got, bases[2])
	}
	if _, err := l.Read(target-1, 100, true, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if start, _ := l.DeleteRecordsBefore(2); start != target {
		t.Fatalf("moving back: start %d", start)
	}
	// Persisted even without a clean shutdown.
	l2 := mustOpen(t, fsys, "/d/t-0", cfg)
	if l2.StartOffset() != target {
		t.Fatalf("start after reopen %d", l2.StartOffset())
	}
	l2.Close()
	l.Close()
	// Deleting up to the end leaves an empty readable range that survives
	// a reopen.
	l = mustOpen(t, fsys, "/d/t-0", cfg)
	defer l.Close()
	if _, err := l.DeleteRecordsBefore(40); err != nil {
		t.Fatal(err)
	}
	if b, err := l.Read(40, 100, true, nil); err != nil || len(b) != 0 {
		t.Fatalf("read at end: %d bytes, %v", len(b), err)
	}
}

func TestBatchForTimestamp(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 600, IndexIntervalBytes: 1})
	defer l.Close()
	// Timestamps 0,10,20,...; batch i holds 2 records at 10i and 10i+1.
	for i := range 40 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 2, ts: int64(10 * i)}), 0)
	}
	for ts := int64(-5); ts <= 400; ts++ {
		b, ok, err := l.BatchForTimestamp(ts)
		if err != nil {
			t.Fatal(err)
		}
		wantBatch := (ts + 8) / 10 // first batch with maxTs (10i+1) >= ts
		if ts < 0 {
			wantBatch = 0
		}
		if wantBatch >= 40 {
			if ok {
				t.Fatalf("ts %d: found a batch past the end", ts)
			}
			continue
		}
		bs := decodeBatches(t, b)
		if !ok || len(bs) != 1 || bs[0].FirstOffset != 2*wantBatch {
			t.Fatalf("ts %d: got %+v, want batch at offset %d", ts, bs, 2*wantBatch)
		}
	}
	// A batch with a timestamp from the past does not hide later ones.
	mustAppend(t, l, makeBatch(t, batchSpec{ts: 5}), 0)
	mustAppend(t, l, makeBatch(t, batchSpec{ts: 1000}), 0)
	mustAppend(t, l, makeBatch(t, batchSpec{ts: 1000}), 0)
	b, ok, err := l.MaxTimestampBatch()
	if err != nil || !ok {
		t.Fatalf("MaxTimestampBatch: %v %v", ok, err)
	}
	if bs := decodeBatches(t, b); bs[0].FirstOffset != 81 {
		t.Fatalf("max timestamp batch at %d, want the first of the two, 81", bs[0].FirstOffset)
	}
}

func TestMaxTimestampEmpty(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	if _, ok, err := l.MaxTimestampBatch(); ok || err != nil {
		t.Fatalf("empty log: %v %v", ok, err)
	}
	if _, ok, err := l.BatchForTimestamp(0); ok || err != nil {
		t.Fatalf("empty log: %v %v", ok, err)
	}
}

func TestClosed(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{}), time.Now(), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append: %v", err)
	}
	if _, err := l.Read(0, 1, true, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read: %v", err)
	}
	if err := l.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush: %v", err)
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := mustOpen(t, OSFS{}, dir, Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory left: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{SegmentBytes: 10, IndexIntervalBytes: -1, FlushMessages: -1}.Validate()
	for _, key := range []string{"segment.bytes", "index.interval.bytes", "flush.messages"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(key)) {
			t.Fatalf("error %v does not name %s", err, key)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(NewMemFS(), "/d/t-0", Config{SegmentBytes: -1}, nil); err == nil {
		t.Fatal("Open accepted a bad config")
	}
}

// TestKafkaZeroSettings checks the documented spellings of Kafka's 0 values
// and Kafka's minimum sizes.
func TestKafkaZeroSettings(t *testing.T) {
	t.Run("retention.ms=0", func(t *testing.T) {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{RetentionMs: time.Nanosecond})
		defer l.Close()
		mustAppend(t, l, makeBatch(t, batchSpec{ts: 1000}), 0)
		if n, err := l.ApplyRetention(msTime(1001)); n != 1 || err != nil || l.StartOffset() != 1 {
			t.Fatalf("deleted %d, start %d, %v", n, l.StartOffset(), err)
		}
	})
	t.Run("flush.ms=0", func(t *testing.T) {
		fsys := NewMemFS()
		l := mustOpen(t, fsys, "/d/t-0", Config{FlushMs: time.Nanosecond})
		mustAppend(t, l, makeBatch(t, batchSpec{}), 5)
		mustAppend(t, l, makeBatch(t, batchSpec{}), 5)
		l.closeFiles()
		fsys.SimulateCrash()
		l = mustOpen(t, fsys, "/d/t-0", Config{})
		defer l.Close()
		if l.EndOffset() != 2 {
			t.Fatalf("end %d after crash", l.EndOffset())
		}
	})
	t.Run("minimum sizes", func(t *testing.T) {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 14, SegmentIndexBytes: 4})
		defer l.Close()
		if _, err := l.Append(makeBatch(t, batchSpec{}), time.Now(), 0); !errors.Is(err, ErrRecordTooLarge) {
			t.Fatalf("err %v", err)
		}
		l2 := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentIndexBytes: 4})
		defer l2.Close()
		for range 3 {
			mustAppend(t, l2, makeBatch(t, batchSpec{}), 0)
		}
		if n := len(segmentBases(t, l2)); n != 3 {
			t.Fatalf("%d segments", n)
		}
	})
}

func TestSetConfigLive(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
	defer l.Close()
	for range 10 {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100}), 0)
	}
	if n := len(segmentBases(t, l)); n != 1 {
		t.Fatalf("%d segments", n)
	}
	if err := l.SetConfig(Config{SegmentBytes: 500}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100}), 0)
	if bases := segmentBases(t, l); len(bases) != 2 || bases[1] != 10 {
		t.Fatalf("bases %v", bases)
	}
	if err := l.SetConfig(Config{SegmentBytes: -5}); err == nil {
		t.Fatal("bad config accepted")
	}
	// The bad config did not replace the good one.
	for range 5 {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100}), 0)
	}
	if n := len(segmentBases(t, l)); n < 3 {
		t.Fatalf("%d segments", n)
	}
}

// TestRetentionAfterDeleteRecords: the retention check also removes segments
// left wholly below a start offset (here one set before a restart).
func TestRetentionAfterDeleteRecords(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 400, RetentionMs: -1}
	l := mustOpen(t, fsys, "/d/t-0", cfg)
	for range 12 {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 60}), 0)
	}
	bases := segmentBases(t, l)
	l.Close()
	// A start offset checkpointed by a DeleteRecords whose segment deletion
	// did not happen (a crash right after the checkpoint).
	if err := writeCheckpoint(fsys, "/d/t-0", logStartOffsetFile, bases[2]); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, fsys, "/d/t-0", cfg)
	defer l.Close()
	if l.StartOffset() != bases[2] {
		t.Fatalf("start %d", l.StartOffset())
	}
	n, err := l.ApplyRetention(time.Now())
	if err != nil || n != 2 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if got := segmentBases(t, l); got[0] != bases[2] {
		t.Fatalf("segments %v", got)
	}
}
