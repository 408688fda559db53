package storage

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Issue 20: validating a compressed produced batch decompresses it into a
// reused buffer: a fresh one per batch cost more than the decompression
// (zeroing, page faults, garbage collection), on the broker's serial
// path of every connection's produce requests.
func TestValidateReusesDecompressBuffer(t *testing.T) {
	plain := makeBatch(t, batchSpec{records: 2000, valueSize: 100, ts: time.Now().UnixMilli()})
	rb := decodeBatches(t, plain)[0]
	inflated := len(rb.Records)
	for _, codec := range []recordbatch.Codec{recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			compressed, err := recordbatch.Compress(codec, nil, rb.Records)
			if err != nil {
				t.Fatal(err)
			}
			cb := rb
			cb.Attributes, cb.Records = int16(codec), compressed
			cb.Length = int32(49 + len(compressed))
			batch := cb.AppendTo(nil)
			binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))

			const runs = 50
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				if _, err := validateIncoming(batch); err != nil {
					t.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			// The race detector makes sync.Pool drop a quarter of what
			// it is given, hence half a batch, not nothing.
			if perRun := int(after.TotalAlloc-before.TotalAlloc) / runs; perRun > inflated/2 {
				t.Fatalf("validation allocated %d bytes a batch; the records inflate to %d", perRun, inflated)
			}
		})
	}
}
