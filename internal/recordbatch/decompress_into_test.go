package recordbatch

import (
	"bytes"
	"testing"
)

// Issue 20: DecompressInto inflates into the caller's buffer when it has
// room, so that a broker validating batch after batch reuses one buffer,
// and into a new one when it has not; either way the records are those
// compressed.
func TestDecompressInto(t *testing.T) {
	src := levelBatch(t, None, 0)[HeaderLen:]
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			compressed, err := Compress(c, nil, src)
			if err != nil {
				t.Fatal(err)
			}
			roomy := make([]byte, 3, len(src)+100)
			out, err := DecompressInto(c, roomy, compressed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, src) {
				t.Fatal("decompressed other records than were compressed")
			}
			if &out[:1][0] != &roomy[:1][0] {
				t.Fatal("a buffer with room was not reused")
			}
			small := make([]byte, 0, 10)
			if out, err = DecompressInto(c, small, compressed); err != nil || !bytes.Equal(out, src) {
				t.Fatalf("into a small buffer: %v, records equal: %v", err, bytes.Equal(out, src))
			}
			fresh, err := Decompress(c, compressed)
			if err != nil || !bytes.Equal(fresh, src) {
				t.Fatalf("Decompress: %v, records equal: %v", err, bytes.Equal(fresh, src))
			}
		})
	}
}
