package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch; the zero value is one 10-byte record
// at timestamp 0 without a producer id.
type batchSpec struct {
	records   int
	valueSize int
	ts        int64 // first timestamp; record i has ts+i
	pid       int64 // 0 means none (-1 on the wire)
	epoch     int16
	seq       int32
	tag       byte // fills the values, to tell batches apart
	attrs     int16
	rawSeq    bool // use seq even without a producer id (-1 sequences)
}

// makeBatch builds a valid v2 batch with kmsg, independently of the
// package's fixed-offset header code.
func makeBatch(tb testing.TB, s batchSpec) []byte {
	tb.Helper()
	if s.records == 0 {
		s.records = 1
	}
	if s.valueSize == 0 {
		s.valueSize = 10
	}
	var recs []byte
	for i := range s.records {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("k%d", i)),
			Value:            bytes.Repeat([]byte{s.tag}, s.valueSize),
		}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // the zero Length took one varint byte
		recs = r.AppendTo(recs)
	}
	pid := int64(-1)
	epoch := int16(-1)
	seq := int32(-1)
	if s.pid != 0 {
		pid, epoch, seq = s.pid, s.epoch, s.seq
	}
	if s.rawSeq {
		seq = s.seq
	}
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           s.attrs,
		LastOffsetDelta:      int32(s.records - 1),
		FirstTimestamp:       s.ts,
		MaxTimestamp:         s.ts + int64(s.records-1),
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(s.records),
		Records:              recs,
	}
	b.Length = int32(49 + len(recs))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// decodeBatches splits stored bytes into batches with kmsg, checking the
// CRC of each.
func decodeBatches(tb testing.TB, b []byte) []kmsg.RecordBatch {
	tb.Helper()
	out, err := splitBatches(b, true)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// splitBatches decodes back-to-back batches with kmsg, checking CRCs if asked.
func splitBatches(b []byte, checkCRC bool) ([]kmsg.RecordBatch, error) {
	var out []kmsg.RecordBatch
	for len(b) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			return out, fmt.Errorf("decode batch: %w", err)
		}
		size := int(rb.Length) + 12
		if got := crc32.Checksum(b[21:size], crc32.MakeTable(crc32.Castagnoli)); checkCRC && got != uint32(rb.CRC) {
			return out, fmt.Errorf("batch at offset %d: CRC %x, want %x", rb.FirstOffset, uint32(rb.CRC), got)
		}
		out = append(out, rb)
		b = b[size:]
	}
	return out, nil
}

// fsCase is a file system to run a test against, with its directory.
type fsCase struct {
	name string
	new  func(t *testing.T) (FS, string)
}

var fsCases = []fsCase{
	{"OSFS", func(t *testing.T) (FS, string) { return OSFS{}, filepath.Join(t.TempDir(), "topic-0") }},
	{"MemFS", func(t *testing.T) (FS, string) { return NewMemFS(), "/data/topic-0" }},
}

// testLogger sends the log's messages to the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func mustOpen(t testing.TB, fsys FS, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(fsys, dir, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// clockFree is message.timestamp.after.max.ms without a bound, for tests
// whose records' timestamps do not follow the clock Append is given.
const clockFree = time.Duration(math.MaxInt64)

func mustAppend(t testing.TB, l *Log, batch []byte, now int64) AppendResult {
	t.Helper()
	res, err := l.Append(batch, msTime(now), 7)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readAll reads every batch from offset to the end.
func readAll(t testing.TB, l *Log, from int64) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for off := from; off < l.EndOffset(); {
		b, err := l.Read(off, 1<<20, true, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing before the end %d", off, l.EndOffset())
		}
		bs := decodeBatches(t, b)
		out = append(out, bs...)
		last := bs[len(bs)-1]
		off = last.FirstOffset + int64(last.LastOffsetDelta) + 1
	}
	return out
}

// faultFS wraps an FS and injects failures into the files it opens.
type faultFS struct {
	FS
	mu         sync.Mutex // guards the fields below
	failSync   bool       // Sync returns an error
	shortWrite bool       // the next WriteAt to a .log writes half and fails
}

var errInjected = errors.New("injected fault")

func (f *faultFS) set(fn func(*faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, isLog: filepath.Ext(name) == extLog}, nil
}

type faultFile struct {
	File
	fs    *faultFS
	isLog bool
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	fail := f.fs.failSync
	f.fs.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.File.Sync()
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	short := f.isLog && f.fs.shortWrite
	if short {
		f.fs.shortWrite = false
	}
	f.fs.mu.Unlock()
	if short {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errInjected
	}
	return f.File.WriteAt(p, off)
}

// appendFile appends raw bytes to a file behind the log's back.
func appendFile(t testing.TB, fsys FS, name string, data []byte) {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, fi.Size()); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, fsys FS, name string) int64 {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func segmentBases(t testing.TB, l *Log) []int64 {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []int64
	for _, s := range l.segments {
		out = append(out, s.base)
	}
	return out
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }
