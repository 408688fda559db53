package storage

import (
	"errors"
	"maps"
	"path/filepath"
	"testing"
)

func TestOffsetCheckpointRoundTrip(t *testing.T) {
	for _, fc := range fsCases {
		t.Run(fc.name, func(t *testing.T) {
			fsys, dir := fc.new(t)
			if err := fsys.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "replication-offset-checkpoint")
			if m, err := ReadOffsetCheckpoint(fsys, path); err != nil || len(m) != 0 {
				t.Fatalf("missing file: %v, %v; want an empty map", m, err)
			}
			want := map[TopicPartition]int64{{"b.t", 1}: 7, {"a_t-x", 10}: 0, {"a_t-x", 2}: 1 << 40, {"b.t", 0}: 3}
			if err := WriteOffsetCheckpoint(fsys, path, want); err != nil {
				t.Fatal(err)
			}
			b, err := readFile(fsys, path)
			if err != nil {
				t.Fatal(err)
			}
			// Kafka's layout, entries sorted.
			if string(b) != "0\n4\na_t-x 2 1099511627776\na_t-x 10 0\nb.t 0 3\nb.t 1 7\n" {
				t.Fatalf("file %q", b)
			}
			got, err := ReadOffsetCheckpoint(fsys, path)
			if err != nil || !maps.Equal(got, want) {
				t.Fatalf("read back %v, %v; want %v", got, err, want)
			}
			if err := WriteOffsetCheckpoint(fsys, path, nil); err != nil {
				t.Fatal(err)
			}
			if got, err := ReadOffsetCheckpoint(fsys, path); err != nil || len(got) != 0 {
				t.Fatalf("empty checkpoint read back %v, %v", got, err)
			}
			for _, bad := range []map[TopicPartition]int64{{{"a b", 0}: 1}, {{"", 0}: 1}, {{"t", -1}: 1}} {
				if err := WriteOffsetCheckpoint(fsys, path, bad); err == nil {
					t.Errorf("WriteOffsetCheckpoint(%v) succeeded", bad)
				}
			}
		})
	}
}

func TestOffsetCheckpointReadsKafkasFiles(t *testing.T) {
	fsys := NewMemFS()
	fsys.MkdirAll("/d", 0o755)
	for _, tc := range []struct {
		in   string
		want map[TopicPartition]int64
	}{
		{"", map[TopicPartition]int64{}},
		{"0\n0\n", map[TopicPartition]int64{}},
		{"0\n2\n__consumer_offsets 49 12\nt 0\t5", map[TopicPartition]int64{{"__consumer_offsets", 49}: 12, {"t", 0}: 5}},
	} {
		writeSynced(t, fsys, "/d/cp", tc.in)
		if got, err := ReadOffsetCheckpoint(fsys, "/d/cp"); err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"1\n0\n", "0\n2\nt 0 5\n", "0\n1\nt 0\n", "0\n1\nt x 5\n", "0\n1\nt 0 -5\n",
		"0\n2\nt 0 5\nt 0 6\n", "0\n1\nt 0 5 9\n", "x"} {
		writeSynced(t, fsys, "/d/cp", bad)
		if got, err := ReadOffsetCheckpoint(fsys, "/d/cp"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v, %v; want ErrCorrupt", bad, got, err)
		}
	}
}

// A power loss at any point of a checkpoint write leaves the old file or
// the new one whole.
func TestOffsetCheckpointCrashAtomic(t *testing.T) {
	old := map[TopicPartition]int64{{"t", 0}: 1, {"t", 1}: 2}
	next := map[TopicPartition]int64{{"t", 0}: 10, {"t", 1}: 20, {"u", 0}: 30}
	for keep := 0; ; keep++ {
		m := NewMemFS()
		m.MkdirAll("/d", 0o755)
		m.SyncDir("/")
		if err := WriteOffsetCheckpoint(m, "/d/cp", old); err != nil {
			t.Fatal(err)
		}
		if err := WriteOffsetCheckpoint(m, "/d/cp", next); err != nil {
			t.Fatal(err)
		}
		pending := m.PendingDirOps()
		m.SimulateCrashKeeping(keep)
		got, err := ReadOffsetCheckpoint(m, "/d/cp")
		if err != nil || !(maps.Equal(got, old) || maps.Equal(got, next)) {
			t.Fatalf("keeping %d directory operations: %v, %v", keep, got, err)
		}
		if keep > pending {
			if !maps.Equal(got, next) {
				t.Fatalf("all operations kept: %v, want the new file", got)
			}
			break
		}
	}
	// A failed fsync leaves the old file.
	f := &faultFS{FS: NewMemFS()}
	f.MkdirAll("/d", 0o755)
	if err := WriteOffsetCheckpoint(f, "/d/cp", old); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *faultFS) { f.failSync = true })
	if err := WriteOffsetCheckpoint(f, "/d/cp", next); !errors.Is(err, errInjected) {
		t.Fatalf("write with a failing fsync: %v", err)
	}
	if got, err := ReadOffsetCheckpoint(f, "/d/cp"); err != nil || !maps.Equal(got, old) {
		t.Fatalf("after a failed write: %v, %v; want the old file", got, err)
	}
}

func FuzzOffsetCheckpoint(f *testing.F) {
	f.Add([]byte("0\n2\nt 0 5\nu 3 9\n"))
	f.Add([]byte("0\n1\nt 0 5"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeOffsetCheckpoint(b)
		if err != nil {
			return
		}
		enc, err := encodeOffsetCheckpoint(m)
		if err != nil {
			t.Fatalf("decoded %v from %q, which cannot be encoded: %v", m, b, err)
		}
		back, err := decodeOffsetCheckpoint(enc)
		if err != nil || !maps.Equal(back, m) {
			t.Fatalf("round trip of %v: %v, %v", m, back, err)
		}
	})
}
