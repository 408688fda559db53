package storage

import (
	"encoding/binary"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Issue 20: validating a compressed produced batch streams it through a
// reused buffer of fixed size (validateRecords): a fresh buffer of the
// batch's size per batch cost more than the decompression (zeroing, page
// faults, garbage collection), on the broker's serial path of every
// connection's produce requests.
func TestValidateReusesDecompressBuffer(t *testing.T) {
	plain := makeBatch(t, batchSpec{records: 8000, valueSize: 100, ts: time.Now().UnixMilli()})
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

			// The median of the runs, against a quarter of the batch:
			// the race detector makes sync.Pool drop a quarter of what
			// it is given, here the codecs' decoders too (~100KB each).
			perRun := make([]uint64, 21)
			for i := range perRun {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				if _, err := validateIncoming(batch, anyTimestamp); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				perRun[i] = after.TotalAlloc - before.TotalAlloc
			}
			slices.Sort(perRun)
			if median := perRun[len(perRun)/2]; median > uint64(inflated/4) {
				t.Fatalf("validation allocated %d bytes a batch (median); the records inflate to %d", median, inflated)
			}
		})
	}
}
