package storage

import (
	"slices"
	"testing"
)

// The cases of Kafka's LeaderEpochFileCacheTest, ported: each applies
// operations in order, then checks the entries and endOffsetFor answers.
func TestEpochCacheKafkaCases(t *testing.T) {
	type op struct {
		kind  byte // 'a' assign, 'e' truncateFromEnd, 's' truncateFromStart
		epoch int32
		off   int64
	}
	a := func(e int32, o int64) op { return op{'a', e, o} }
	tfe := func(o int64) op { return op{kind: 'e', off: o} }
	tfs := func(o int64) op { return op{kind: 's', off: o} }
	type query struct {
		epoch     int32
		logEnd    int64
		wantEpoch int32
		wantEnd   int64
	}
	for _, tc := range []struct {
		name    string
		ops     []op
		entries []epochEntry
		queries []query
	}{
		{"assign and latest", []op{a(2, 10)}, []epochEntry{{2, 10}}, []query{{2, 11, 2, 11}}},
		{"same epoch later offset ignored", []op{a(2, 10), a(2, 11), a(2, 12)}, []epochEntry{{2, 10}}, []query{{2, 14, 2, 14}}},
		{"undefined epoch requested", []op{a(2, 11), a(3, 12)}, nil, []query{{-1, 0, -1, -1}}},
		{"not overwritten once assigned", []op{a(2, 9), a(2, 10)}, []epochEntry{{2, 9}}, nil},
		{"monotonic start offsets", []op{a(2, 9), a(3, 9)}, []epochEntry{{3, 9}}, nil},
		{"empty cache", nil, []epochEntry{}, []query{{0, 0, -1, -1}, {-1, 73, -1, -1}, {7, 0, -1, -1}}},
		{"requested below the first epoch", []op{a(5, 11), a(6, 12), a(7, 13)}, nil, []query{{4, 0, 4, 11}}},
		{"same epoch earlier offset truncates", []op{a(5, 11), a(6, 12), a(7, 13), a(7, 12)}, []epochEntry{{5, 11}, {7, 12}},
			[]query{{5, 0, 5, 12}, {6, 0, 5, 12}}},
		{"next epoch's start", []op{a(1, 11), a(1, 12), a(2, 13), a(2, 14), a(3, 15), a(3, 16)}, nil, []query{{2, 17, 2, 15}}},
		{"no exact epoch", []op{a(0, 10), a(2, 13), a(4, 17)}, nil, []query{{1, 0, 0, 13}, {2, 0, 2, 17}, {3, 0, 2, 17}}},
		{"unchanged", []op{a(2, 6), a(2, 7)}, []epochEntry{{2, 6}}, nil},
		{"above the latest", []op{a(2, 100)}, nil, []query{{3, 100, -1, -1}}},
		{"not from zero", []op{a(2, 6)}, []epochEntry{{2, 6}}, []query{{2, 7, 2, 7}}},
		{"older epoch at a later offset", []op{a(1, 5), a(2, 6), a(1, 7)}, []epochEntry{{1, 7}}, []query{{1, 8, 1, 8}, {2, 8, -1, -1}}},
		{"later epoch at an earlier offset", []op{a(2, 6), a(3, 5)}, []epochEntry{{3, 5}}, nil},
		{"epochs at one offset", []op{a(0, 0), a(1, 0)}, []epochEntry{{1, 0}}, []query{{1, 0, 1, 0}, {0, 0, 0, 0}}},
		{"epochs in order", []op{a(0, 0), a(0, 1), a(0, 2), a(1, 3), a(1, 4), a(1, 5), a(2, 6), a(2, 7), a(2, 8)},
			[]epochEntry{{0, 0}, {1, 3}, {2, 6}}, []query{{2, 9, 2, 9}, {0, 9, 0, 3}, {1, 9, 1, 6}}},
		{"truncate from end", []op{a(2, 6), a(3, 8), a(4, 11), tfe(8)}, []epochEntry{{2, 6}}, nil},
		{"truncate from end between", []op{a(2, 6), a(3, 8), a(4, 11), tfe(9)}, []epochEntry{{2, 6}, {3, 8}}, nil},
		{"truncate from end undefined", []op{a(2, 6), a(3, 8), a(4, 11), tfe(-1)}, []epochEntry{{2, 6}, {3, 8}, {4, 11}}, nil},
		{"truncate from start at a boundary", []op{a(2, 6), a(3, 8), a(4, 11), tfs(8)}, []epochEntry{{3, 8}, {4, 11}}, nil},
		{"truncate from start between", []op{a(2, 6), a(3, 8), a(4, 11), tfs(9)}, []epochEntry{{3, 9}, {4, 11}}, nil},
		{"truncate from start before", []op{a(2, 6), a(3, 8), a(4, 11), tfs(1)}, []epochEntry{{2, 6}, {3, 8}, {4, 11}}, nil},
		{"truncate from start at first", []op{a(2, 6), a(3, 8), a(4, 11), tfs(6)}, []epochEntry{{2, 6}, {3, 8}, {4, 11}}, nil},
		{"truncate from start at last", []op{a(2, 6), a(3, 8), a(4, 11), tfs(11)}, []epochEntry{{4, 11}}, nil},
		{"truncate from start past last", []op{a(2, 6), a(3, 8), a(4, 11), tfs(15)}, []epochEntry{{4, 15}}, nil},
		{"truncate from start inside first", []op{a(0, 0), a(1, 7), a(2, 10), tfs(5)}, []epochEntry{{0, 5}, {1, 7}, {2, 10}}, nil},
		{"truncate from start undefined", []op{a(2, 6), a(3, 8), a(4, 11), tfs(-1)}, []epochEntry{{2, 6}, {3, 8}, {4, 11}}, nil},
		{"truncate empty", []op{tfs(7), tfe(7)}, []epochEntry{}, nil},
		{"negative epoch ignored", []op{a(-1, 0), a(2, 5), a(-1, 9)}, []epochEntry{{2, 5}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c epochCache
			for _, o := range tc.ops {
				before := slices.Clone(c)
				var changed bool
				switch o.kind {
				case 'a':
					changed = c.assign(o.epoch, o.off)
					if w := withEpoch(before, o.epoch, o.off); !slices.Equal(w, c) {
						t.Fatalf("withEpoch(%v, %d, %d) = %v, assign gave %v", before, o.epoch, o.off, w, c)
					}
				case 'e':
					changed = c.truncateFromEnd(o.off)
				case 's':
					changed = c.truncateFromStart(o.off)
				}
				if changed != !slices.Equal(before, c) {
					t.Fatalf("op %c %d %d: changed=%v, %v -> %v", o.kind, o.epoch, o.off, changed, before, c)
				}
			}
			if tc.entries != nil && !slices.Equal(c, epochCache(tc.entries)) && !(len(c) == 0 && len(tc.entries) == 0) {
				t.Errorf("entries %v, want %v", c, tc.entries)
			}
			for _, q := range tc.queries {
				if e, o := c.endOffsetFor(q.epoch, q.logEnd); e != q.wantEpoch || o != q.wantEnd {
					t.Errorf("endOffsetFor(%d, %d) = (%d, %d), want (%d, %d)", q.epoch, q.logEnd, e, o, q.wantEpoch, q.wantEnd)
				}
			}
			// The cache survives its file.
			back, err := decodeEpochCheckpoint(encodeEpochCheckpoint(c))
			if err != nil || !slices.Equal(back, c) && len(c)+len(back) > 0 {
				t.Errorf("file round trip: %v, %v; want %v", back, err, c)
			}
		})
	}
}

func TestEpochCheckpointFormat(t *testing.T) {
	c := epochCache{{0, 0}, {3, 120}, {7, 4096}}
	if got := string(encodeEpochCheckpoint(c)); got != "0\n3\n0 0\n3 120\n7 4096\n" {
		t.Fatalf("encoded %q", got)
	}
	for _, tc := range []struct {
		in   string
		want epochCache
		ok   bool
	}{
		{"", nil, true},    // Kafka reads an empty file as no entries
		{"0\n", nil, true}, // a version only
		{"0\n0\n", nil, true},
		{"0\n2\n1  5\n2\t9", epochCache{{1, 5}, {2, 9}}, true}, // whitespace as Kafka splits it, no final newline
		{"0\r\n1\r\n1 5\r\n", epochCache{{1, 5}}, true},
		{"1\n1\n1 5\n", nil, false},   // version
		{"0\n2\n1 5\n", nil, false},   // count
		{"0\n1\n1 5 6\n", nil, false}, // fields
		{"0\n1\n1\n", nil, false},
		{"0\n1\nx 5\n", nil, false},
		{"0\n1\n-1 5\n", nil, false},
		{"0\n1\n1 -5\n", nil, false},
		{"0\n1\n3000000000 5\n", nil, false}, // epoch beyond int32
		{"0\n2\n2 5\n1 9\n", nil, false},     // epochs not increasing
		{"0\n2\n1 9\n2 9\n", nil, false},     // offsets not increasing
		{"0\n-1\n", nil, false},
		{"0\nx\n", nil, false},
	} {
		got, err := decodeEpochCheckpoint([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(got, tc.want)) {
			t.Errorf("decode %q = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzEpochCheckpoint(f *testing.F) {
	f.Add([]byte("0\n2\n1 5\n2 9\n"))
	f.Add([]byte(""))
	f.Add([]byte("0\n1\n1 5"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeEpochCheckpoint(b)
		if err != nil {
			return
		}
		// What decodes is a valid cache, and encodes back to itself.
		for i := range c {
			if c[i].epoch < 0 || c[i].startOffset < 0 || i > 0 && (c[i].epoch <= c[i-1].epoch || c[i].startOffset <= c[i-1].startOffset) {
				t.Fatalf("decoded an invalid cache %v from %q", c, b)
			}
		}
		back, err := decodeEpochCheckpoint(encodeEpochCheckpoint(c))
		if err != nil || !slices.Equal(back, c) && len(back)+len(c) > 0 {
			t.Fatalf("round trip of %v: %v, %v", c, back, err)
		}
	})
}

// epochForOffset is the epoch of the last entry starting at or below the
// offset (Kafka's LeaderEpochFileCacheTest epochForOffset cases).
func TestEpochForOffset(t *testing.T) {
	c := epochCache{{1, 0}, {2, 10}, {4, 25}}
	for _, tc := range []struct {
		off  int64
		want int32
	}{{0, 1}, {9, 1}, {10, 2}, {24, 2}, {25, 4}, {1000, 4}, {-1, -1}} {
		if got := c.epochForOffset(tc.off); got != tc.want {
			t.Errorf("epochForOffset(%d) = %d, want %d", tc.off, got, tc.want)
		}
	}
	if got := (epochCache{{3, 5}}).epochForOffset(4); got != -1 {
		t.Errorf("offset below the first entry: %d, want -1", got)
	}
	if got := (epochCache{}).epochForOffset(0); got != -1 {
		t.Errorf("empty cache: %d, want -1", got)
	}
}
