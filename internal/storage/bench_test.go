package storage

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// benchFS lists the file systems benchmarks run against.
func benchFS(b *testing.B) []struct {
	name string
	fsys FS
	dir  string
} {
	return []struct {
		name string
		fsys FS
		dir  string
	}{
		{"OSFS", OSFS{}, filepath.Join(b.TempDir(), "bench-0")},
		{"MemFS", NewMemFS(), "/bench/bench-0"},
	}
}

// BenchmarkAppend appends batches of 100 records of 100 bytes. Retention
// keeps the disk use bounded; its cost is part of the measurement (small).
func BenchmarkAppend(b *testing.B) {
	for _, durable := range []bool{false, true} {
		for _, fc := range benchFS(b) {
			name := fc.name
			cfg := Config{SegmentBytes: 64 << 20, RetentionBytes: 256 << 20}
			if durable {
				name += "/durable"
				cfg.FlushMessages = 1
			}
			b.Run(name, func(b *testing.B) {
				l, err := Open(fc.fsys, fc.dir, cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Delete()
				batch := makeBatch(b, batchSpec{records: 100, valueSize: 100, ts: time.Now().UnixMilli()})
				now := time.Now()
				b.SetBytes(int64(len(batch)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if _, err := l.Append(batch, now, 0); err != nil {
						b.Fatal(err)
					}
					if i%4096 == 4095 {
						if _, err := l.ApplyRetention(now); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkRead fetches 1 MiB from random offsets of a 10,000-batch log,
// as a Fetch does.
func BenchmarkRead(b *testing.B) {
	for _, fc := range benchFS(b) {
		b.Run(fc.name, func(b *testing.B) {
			l, err := Open(fc.fsys, fc.dir, Config{SegmentBytes: 16 << 20}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Delete()
			batch := makeBatch(b, batchSpec{records: 100, valueSize: 100})
			for range 10000 {
				if _, err := l.Append(batch, time.Now(), 0); err != nil {
					b.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			end := l.EndOffset()
			var dst []byte
			var total int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				dst, err = l.Read(rng.Int64N(end), 1<<20, true, dst[:0])
				if err != nil {
					b.Fatal(err)
				}
				total += int64(len(dst))
			}
			b.SetBytes(total / int64(b.N))
			b.ReportMetric(float64(total)/float64(len(batch))*100/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendParallel appends from several goroutines to one partition,
// as concurrent producers do: validation runs outside the partition lock.
func BenchmarkAppendParallel(b *testing.B) {
	l, err := Open(NewMemFS(), "/bench/bench-0", Config{SegmentBytes: 64 << 20, RetentionBytes: 256 << 20}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Delete()
	proto := makeBatch(b, batchSpec{records: 100, valueSize: 100, ts: time.Now().UnixMilli()})
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		batch := append([]byte(nil), proto...)
		for i := 0; pb.Next(); i++ {
			if _, err := l.Append(batch, time.Now(), 0); err != nil {
				b.Error(err)
				return
			}
			if i%2048 == 2047 {
				if _, err := l.ApplyRetention(time.Now()); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecovery measures Open after an unclean shutdown of a 64 MiB
// active segment: every batch is read and CRC-checked, the indexes rebuilt.
func BenchmarkRecovery(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "bench-0")
	l, err := Open(OSFS{}, dir, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := makeBatch(b, batchSpec{records: 100, valueSize: 100})
	for l.Size() < 64<<20 {
		if _, err := l.Append(batch, time.Now(), 0); err != nil {
			b.Fatal(err)
		}
	}
	size := l.Size()
	l.closeFiles() // no clean-shutdown marker
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		l, err := Open(OSFS{}, dir, Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if l.Size() != size {
			b.Fatalf("recovered %d of %d bytes", l.Size(), size)
		}
		l.closeFiles()
	}
}

// BenchmarkValidateCompressed measures Append's validation (validateIncoming)
// of one produced batch per codec as the producer benchmarks send them
// (issue 20): 9,500 records of the same 100 random capital letters, no key,
// about 1 MiB before compression (BenchmarkProducerVsKgo's batches), in our
// producer's frames, and lz4 also as Go clients frame it. It reports
// ns/record besides ns/op.
//
//	go test -run '^$' -bench BenchmarkValidateCompressed -benchmem ./internal/storage/
func BenchmarkValidateCompressed(b *testing.B) {
	const n = 9500
	rng := rand.New(rand.NewPCG(20, 20))
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'A' + byte(rng.IntN(26))
	}
	var recs []byte
	for i := range n {
		r := kmsg.Record{TimestampDelta64: int64(i / 50), OffsetDelta: int32(i), Value: value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	type variant struct {
		name  string
		codec recordbatch.Codec
		frame func() []byte
	}
	var variants []variant
	for _, codec := range []recordbatch.Codec{recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		variants = append(variants, variant{codec.String(), codec, func() []byte {
			compressed, err := recordbatch.Compress(codec, nil, recs)
			if err != nil {
				b.Fatal(err)
			}
			return compressed
		}})
	}
	// pierrec's writer at its defaults, as franz-go and sarama write lz4:
	// 4 MB blocks and a content checksum.
	variants = append(variants, variant{"lz4-go-clients", recordbatch.LZ4, func() []byte {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(recs); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}})
	for _, v := range variants {
		codec := v.codec
		b.Run(v.name, func(b *testing.B) {
			compressed := v.frame()
			rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec), LastOffsetDelta: n - 1,
				FirstTimestamp: 1000, MaxTimestamp: 1000 + (n-1)/50, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
				NumRecords: n, Records: compressed}
			rb.Length = int32(49 + len(compressed))
			batch := rb.AppendTo(nil)
			binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
			b.SetBytes(int64(len(recs)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := validateIncoming(batch, anyTimestamp); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
