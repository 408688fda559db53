package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// encodeRecords encodes records of the given value sizes, offset deltas 0,
// 1, ... and timestamp deltas 10 times those.
func encodeRecords(sizes ...int) []byte {
	var recs []byte
	for i, n := range sizes {
		r := kmsg.Record{TimestampDelta64: int64(10 * i), OffsetDelta: int32(i), Key: []byte{'k'}, Value: bytes.Repeat([]byte{byte('a' + i%26)}, n)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	return recs
}

// streamBatch frames records compressed with codec (and then changed by
// mangle, if not nil) as a batch claiming count records, with a correct
// CRC and a maxTimestamp of 0.
func streamBatch(t testing.TB, codec recordbatch.Codec, recs []byte, count int32, mangle func([]byte) []byte) []byte {
	t.Helper()
	compressed, err := recordbatch.Compress(codec, nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	if mangle != nil {
		compressed = mangle(compressed)
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec), LastOffsetDelta: count - 1,
		FirstTimestamp: 1000, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: count, Records: compressed}
	b.Length = int32(49 + len(compressed))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], batchCRC(out))
	return out
}

// Issue 20: a compressed batch is validated as it decompresses, through a
// buffer of fixed size (as Kafka's skipKeyValueIterator streams it), so
// the walk must find the same records, and refuse the same batches with
// the same errors, as when it had them all: records larger than the
// buffer and records straddling its refills, records cut short or
// followed by more bytes (INVALID_RECORD), and a stream that does not
// decompress (CORRUPT_MESSAGE).
func TestValidateStreamsCompressedRecords(t *testing.T) {
	// Three records larger than the walk's 128 KiB buffer among small ones,
	// and enough small ones that some straddle its refills.
	var sizes []int
	for i := range 3000 {
		sizes = append(sizes, 90+i%50)
		if i%1000 == 500 {
			sizes = append(sizes, 300<<10)
		}
	}
	recs := encodeRecords(sizes...)
	n := int32(len(sizes))
	for _, codec := range []recordbatch.Codec{recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			batch := streamBatch(t, codec, recs, n, nil)
			if _, err := validateIncoming(batch, anyTimestamp); err != nil {
				t.Fatal(err)
			}
			// maxTimestamp comes from the walk: it saw the last record.
			if got, want := decodeBatches(t, batch)[0].MaxTimestamp, int64(1000+10*(n-1)); got != want {
				t.Fatalf("maxTimestamp %d, want %d", got, want)
			}

			for _, tc := range []struct {
				name  string
				batch []byte
				want  error
			}{
				{"record cut short", streamBatch(t, codec, recs[:len(recs)-40], n, nil), ErrInvalidRecord},
				{"large record cut short", streamBatch(t, codec, encodeRecords(10, 300<<10)[:200<<10], 2, nil), ErrInvalidRecord},
				{"bytes after the records", streamBatch(t, codec, append(bytes.Clone(recs), 2, 0, 0), n, nil), ErrInvalidRecord},
				{"one record fewer claimed", streamBatch(t, codec, recs, n-1, nil), ErrInvalidRecord},
				{"not the codec's stream", streamBatch(t, codec, recs, n, func(b []byte) []byte { return bytes.Repeat([]byte{0xa5}, 64) }), ErrCorruptMessage},
			} {
				if _, err := validateIncoming(tc.batch, anyTimestamp); !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
				}
			}
		})
	}

	// gzip's trailer holds the CRC-32 of the records, which Kafka's
	// GZIPInputStream checks at the stream's end, as the walk does.
	badTrailer := streamBatch(t, recordbatch.Gzip, recs, n, func(b []byte) []byte { b[len(b)-8] ^= 1; return b })
	if _, err := validateIncoming(badTrailer, anyTimestamp); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("gzip with a wrong CRC-32: %v, want ErrCorruptMessage", err)
	}
	// A xerial (Java snappy) block whose length runs past the data.
	badFraming := streamBatch(t, recordbatch.Snappy, recs, n, func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[16:], uint32(len(b)))
		return b
	})
	if _, err := validateIncoming(badFraming, anyTimestamp); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("xerial block past the end: %v, want ErrCorruptMessage", err)
	}
}

// A compacted log refuses a batch holding a record without a key
// (INVALID_RECORD, as Kafka's "Compacted topic cannot accept message
// without key"), found by the validation's one walk of the records,
// compressed or not, and writes nothing; another log takes it.
func TestCompactedRefusesKeylessRecords(t *testing.T) {
	var recs []byte
	for i := range 300 {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte{'k'}, Value: []byte("value")}
		if i == 200 {
			r.Key = nil
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	for _, codec := range []recordbatch.Codec{recordbatch.None, recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			keyless := streamBatch(t, codec, recs, 300, nil)
			keyed := streamBatch(t, codec, encodeRecords(10, 20, 30), 3, nil)
			l := mustOpen(t, NewMemFS(), "/d/t-0", compactCfg())
			defer l.Close()
			mustAppend(t, l, keyed, 0)
			if _, err := l.Append(bytes.Clone(keyless), time.Now(), 0); !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "offset delta 200") {
				t.Fatalf("keyless record in a compacted log: %v, want ErrInvalidRecord at offset delta 200", err)
			}
			if end := l.EndOffset(); end != 3 {
				t.Fatalf("end offset %d after the refused append, want 3", end)
			}
			other := mustOpen(t, NewMemFS(), "/d/t-0", Config{})
			defer other.Close()
			mustAppend(t, other, keyless, 0)
		})
	}
}
