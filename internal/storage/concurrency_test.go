package storage

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestConcurrentReadsDuringAppends runs readers against an appender that
// also rolls and applies retention, and checks that readers only ever see
// whole, valid batches below the end offset they observed afterwards.
func TestConcurrentReadsDuringAppends(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/t-0", Config{SegmentBytes: 3000, IndexIntervalBytes: 200, RetentionBytes: 20000, RetentionMs: -1})
	defer l.Close()
	const appends = 600
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range appends {
			if _, err := l.Append(makeBatch(t, batchSpec{records: 1 + i%5, valueSize: 30, ts: int64(i)}), time.Now(), 1); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 0 {
				if _, err := l.ApplyRetention(time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			var buf []byte
			for {
				select {
				case <-done:
					return
				default:
				}
				start, end := l.StartOffset(), l.EndOffset()
				if end == start {
					continue
				}
				off := start + rng.Int64N(end-start)
				var err error
				buf, err = l.Read(off, int32(rng.IntN(2000)), true, buf[:0])
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err != nil {
					t.Error(err)
					return
				}
				bs, err := splitBatches(buf, true)
				if err != nil {
					t.Error(err)
					return
				}
				if len(bs) == 0 {
					t.Errorf("Read(%d) returned nothing with minOne", off)
					return
				}
				first, last := bs[0], bs[len(bs)-1]
				if first.FirstOffset > off || first.FirstOffset+int64(first.LastOffsetDelta) < off {
					t.Errorf("Read(%d) started at batch %d+%d", off, first.FirstOffset, first.LastOffsetDelta)
					return
				}
				if next := last.FirstOffset + int64(last.LastOffsetDelta) + 1; next > l.EndOffset() {
					t.Errorf("read up to %d beyond the end %d", next, l.EndOffset())
					return
				}
			}
		}()
	}
	wg.Wait()
	if l.EndOffset() == 0 || len(segmentBases(t, l)) < 2 {
		t.Fatalf("end %d, segments %v", l.EndOffset(), segmentBases(t, l))
	}
}

// TestCloseWhileReading: Close waits for running reads; reads after it get
// ErrClosed, never a closed file.
func TestCloseWhileReading(t *testing.T) {
	dir := t.TempDir() + "/t-0"
	l := mustOpen(t, OSFS{}, dir, Config{SegmentBytes: 4000})
	for range 100 {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 50}), 0)
	}
	var wg, started sync.WaitGroup
	for range 2 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; ; i++ {
				var err error
				buf, err = l.Read(int64(i%100), 1000, true, buf[:0])
				if i == 0 {
					started.Done()
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	started.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestConcurrentFirstLookups: readers racing to the first lookup of cold
// segments after a reopen all see the same, right batches.
func TestConcurrentFirstLookups(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 1000, IndexIntervalBytes: 1}
	l := mustOpen(t, fsys, "/d/t-0", cfg)
	for range 60 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 2, valueSize: 60}), 0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, fsys, "/d/t-0", cfg)
	defer l.Close()
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := int64(r); off < l.EndOffset(); off += 3 {
				b, err := l.Read(off, 1, true, nil)
				if err != nil {
					t.Error(err)
					return
				}
				bs, err := splitBatches(b, true)
				if err != nil || len(bs) != 1 || bs[0].FirstOffset != off&^1 {
					t.Errorf("Read(%d): %v %v", off, bs, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
