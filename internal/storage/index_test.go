package storage

import (
	"encoding/binary"
	"os"
	"testing"
)

func TestLookupEntry(t *testing.T) {
	index := []offsetEntry{{rel: 4, pos: 100}, {rel: 9, pos: 250}, {rel: 20, pos: 900}}
	tests := []struct {
		rel  uint32
		want int64 // position, -1 for no entry
	}{{0, -1}, {3, -1}, {4, 100}, {5, 100}, {9, 250}, {19, 250}, {20, 900}, {1000, 900}}
	for _, tt := range tests {
		e, ok := lookupEntry(index, tt.rel)
		if got := int64(e.pos); !ok {
			got = -1
		} else if got != tt.want {
			t.Errorf("lookupEntry(%d) = %d, want %d", tt.rel, got, tt.want)
		}
		if ok != (tt.want >= 0) {
			t.Errorf("lookupEntry(%d): ok %v", tt.rel, ok)
		}
	}
	if _, ok := lookupEntry(nil, 7); ok {
		t.Error("empty index has an entry")
	}
}

func TestLookupBelowTimestamp(t *testing.T) {
	tindex := []timeEntry{{ts: 10, rel: 1}, {ts: 20, rel: 5}, {ts: 30, rel: 8}}
	tests := []struct {
		ts     int64
		want   uint32
		wantOK bool
	}{{5, 0, false}, {10, 0, false}, {11, 1, true}, {20, 1, true}, {21, 5, true}, {31, 8, true}}
	for _, tt := range tests {
		got, ok := lookupBelowTimestamp(tindex, tt.ts)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("lookupBelowTimestamp(%d) = %d %v, want %d %v", tt.ts, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestIndexFilesOnDisk decodes the .index and .timeindex files the log wrote
// and checks them against the .log, entry by entry, as Kafka's tools would.
func TestIndexFilesOnDisk(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			const interval = 300
			l := mustOpen(t, fsys, dir, Config{SegmentBytes: 5000, IndexIntervalBytes: interval})
			for i := range 120 {
				// Timestamps go up and down so the time index has to keep the
				// running maximum.
				ts := int64(1000 + 7*i - 20*(i%3))
				mustAppend(t, l, makeBatch(t, batchSpec{records: 1 + i%4, valueSize: 20 + i%30, ts: ts}), 0)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, base := range segmentBases(t, l) {
				logData, err := readFile(fsys, offsetFileName(dir, base, extLog))
				if err != nil {
					t.Fatal(err)
				}
				batches := decodeBatches(t, logData)
				type info struct {
					pos, last, maxTsSoFar, maxTsOffset int64
				}
				var infos []info
				pos, maxTs, maxTsOff := int64(0), int64(-1), int64(-1)
				for _, b := range batches {
					if b.MaxTimestamp > maxTs {
						maxTs, maxTsOff = b.MaxTimestamp, b.FirstOffset+int64(b.LastOffsetDelta)
					}
					infos = append(infos, info{pos, b.FirstOffset + int64(b.LastOffsetDelta), maxTs, maxTsOff})
					pos += int64(b.Length) + 12
				}
				// Expected .index: Kafka's rule, replayed independently.
				var want []info
				since := int64(0)
				for i, in := range infos {
					if since > interval {
						want = append(want, in)
						since = 0
					}
					since += int64(batches[i].Length) + 12
				}
				idx, err := readFile(fsys, offsetFileName(dir, base, extIndex))
				if err != nil {
					t.Fatal(err)
				}
				if len(idx) != 8*len(want) {
					t.Fatalf("segment %d: .index has %d bytes, want %d entries", base, len(idx), len(want))
				}
				for i, w := range want {
					rel := int64(binary.BigEndian.Uint32(idx[8*i:]))
					p := int64(binary.BigEndian.Uint32(idx[8*i+4:]))
					if base+rel != w.last || p != w.pos {
						t.Fatalf("segment %d entry %d: (%d,%d), want (%d,%d)", base, i, rel, p, w.last-base, w.pos)
					}
				}
				tidx, err := readFile(fsys, offsetFileName(dir, base, extTimeIndex))
				if err != nil {
					t.Fatal(err)
				}
				if len(tidx) == 0 || len(tidx)%12 != 0 {
					t.Fatalf("segment %d: .timeindex has %d bytes", base, len(tidx))
				}
				prev := int64(-1)
				for i := 0; i < len(tidx); i += 12 {
					ts := int64(binary.BigEndian.Uint64(tidx[i:]))
					rel := int64(binary.BigEndian.Uint32(tidx[i+8:]))
					if ts <= prev {
						t.Fatalf("segment %d: time index not increasing at %d", base, i/12)
					}
					prev = ts
					// The entry's offset is where that running maximum was reached.
					found := false
					for _, in := range infos {
						if in.maxTsOffset == base+rel && in.maxTsSoFar == ts {
							found = true
						}
					}
					if !found {
						t.Fatalf("segment %d: time index entry (%d,%d) is not a running maximum", base, ts, rel)
					}
				}
				// The final entry is the segment's largest timestamp.
				if last := infos[len(infos)-1]; prev != last.maxTsSoFar {
					t.Fatalf("segment %d: last time index entry %d, largest timestamp %d", base, prev, last.maxTsSoFar)
				}
			}
		})
	}
}

// TestIndexesLoadLazily: after a clean reopen only the active segment's
// index files are read; an older segment's are read on its first lookup.
func TestIndexesLoadLazily(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 1000, IndexIntervalBytes: 1}
	l := mustOpen(t, fsys, "/d/t-0", cfg)
	for i := range 30 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 2, valueSize: 60, ts: int64(i)}), 0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, fsys, "/d/t-0", cfg)
	defer l.Close()
	ready := func(i int) bool {
		l.mu.RLock()
		defer l.mu.RUnlock()
		return l.segments[i].indexReady.Load()
	}
	n := len(segmentBases(t, l))
	for i := range n - 1 {
		if ready(i) {
			t.Fatalf("segment %d indexes read at open", i)
		}
	}
	if !ready(n - 1) {
		t.Fatal("active segment's indexes not read at open")
	}
	if _, err := l.Read(3, 1, true, nil); err != nil {
		t.Fatal(err)
	}
	if !ready(0) || ready(1) {
		t.Fatalf("after a read of segment 0: ready %v %v", ready(0), ready(1))
	}
	// Retention checks drop indexes not used since the previous check.
	l.ApplyRetention(msTime(0))
	if !ready(0) {
		t.Fatal("indexes used since the last check were dropped")
	}
	l.ApplyRetention(msTime(0))
	if ready(0) || !ready(n-1) {
		t.Fatalf("after an idle check: ready %v, active %v", ready(0), ready(n-1))
	}
	if b, err := l.Read(3, 1, true, nil); err != nil || decodeBatches(t, b)[0].FirstOffset != 2 {
		t.Fatalf("read after eviction: %v", err)
	}
}

// TestBadMiddleIndexEntry: damage that load's cheap checks cannot see (a
// middle entry) is found on first use; the indexes are rebuilt in memory and
// lookups stay right.
func TestBadMiddleIndexEntry(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 1000, IndexIntervalBytes: 1}
	l := mustOpen(t, fsys, "/d/t-0", cfg)
	for i := range 30 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 2, valueSize: 60, ts: int64(i)}), 0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{offsetFileName("/d/t-0", 0, extIndex), offsetFileName("/d/t-0", 0, extTimeIndex)} {
		f, err := fsys.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 8) // breaks the order of entry 1 (or 0)
		f.Close()
	}
	l = mustOpen(t, fsys, "/d/t-0", cfg)
	defer l.Close()
	for off := int64(0); off < l.EndOffset(); off++ {
		b, err := l.Read(off, 1, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bs := decodeBatches(t, b); bs[0].FirstOffset != off&^1 {
			t.Fatalf("Read(%d) landed on %d", off, bs[0].FirstOffset)
		}
	}
	b, ok, err := l.BatchForTimestamp(3)
	if err != nil || !ok || decodeBatches(t, b)[0].FirstOffset != 4 {
		t.Fatalf("BatchForTimestamp: %v %v", ok, err)
	}
}
