package recordbatch

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Issue 20: compression.<codec>.level (KIP-390) reaches the codec, every
// level writes what franz-go's decompressor and our reader read back, and
// the ranges are Kafka's.

// levelBatch builds a batch of compressible records with codec at level.
func levelBatch(t *testing.T, codec Codec, level int) []byte {
	t.Helper()
	bl := NewBuilder(Options{Compression: codec, Level: level}, 1<<20)
	for i := range 2000 {
		bl.Append(1_700_000_000_000, fmt.Appendf(nil, "key-%d", i%97), fmt.Appendf(nil, "value %d of a record that repeats itself %d", i, i%13), nil)
	}
	raw, err := bl.Finish(NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestCompressionLevels(t *testing.T) {
	levels := map[Codec][]int{
		Gzip: {0, GzipDefaultLevel, GzipMinLevel, 5, GzipMaxLevel},
		LZ4:  {0, LZ4MinLevel, 4, LZ4DefaultLevel, 12, LZ4MaxLevel},
		Zstd: {0, ZstdMinLevel, -5, 1, ZstdDefaultLevel, 7, 19, ZstdMaxLevel},
	}
	dec := kgo.DefaultDecompressor()
	for codec, ls := range levels {
		sizes := map[int]int{}
		for _, level := range ls {
			t.Run(fmt.Sprintf("%s/%d", codec, level), func(t *testing.T) {
				raw := levelBatch(t, codec, level)
				var h kmsg.RecordBatch
				if err := h.ReadFrom(raw); err != nil {
					t.Fatal(err)
				}
				if Codec(h.Attributes&attrCodecMask) != codec {
					t.Fatalf("attributes %#x, want codec %s", h.Attributes, codec)
				}
				sizes[level] = len(h.Records)
				plain, err := dec.Decompress(h.Records, kgo.CompressionCodecType(codec))
				if err != nil {
					t.Fatalf("kgo decompress: %v", err)
				}
				want := levelBatch(t, None, 0)
				if !bytes.Equal(plain, want[HeaderLen:]) {
					t.Fatal("kgo decompressed other records than were compressed")
				}
				recs, err := ReadRecords(nil, raw, ReadOptions{VerifyCRC: true})
				if err != nil || len(recs) != 2000 {
					t.Fatalf("read %d records: %v", len(recs), err)
				}
			})
		}
		// The level reaches the codec: the strongest level writes less than
		// the weakest, and 0 is the default level.
		lo, hi, def := ls[1], ls[len(ls)-1], map[Codec]int{Gzip: GzipDefaultLevel, LZ4: LZ4DefaultLevel, Zstd: ZstdDefaultLevel}[codec]
		if codec == LZ4 {
			lo = LZ4DefaultLevel // Java's fast compressor; every other level is HC
		}
		if sizes[hi] >= sizes[lo] {
			t.Errorf("%s: level %d wrote %d bytes, level %d %d bytes", codec, hi, sizes[hi], lo, sizes[lo])
		}
		if sizes[0] != sizes[def] {
			t.Errorf("%s: level 0 wrote %d bytes, the default level %d %d bytes", codec, sizes[0], def, sizes[def])
		}
	}
}

func TestCheckLevel(t *testing.T) {
	for _, tc := range []struct {
		codec Codec
		level int
		ok    bool
	}{
		{Gzip, 0, true}, {Gzip, -1, true}, {Gzip, 1, true}, {Gzip, 9, true}, {Gzip, -2, false}, {Gzip, 10, false},
		{LZ4, 0, true}, {LZ4, 1, true}, {LZ4, 17, true}, {LZ4, -1, false}, {LZ4, 18, false},
		{Zstd, 0, true}, {Zstd, -131072, true}, {Zstd, 22, true}, {Zstd, -131073, false}, {Zstd, 23, false},
		{Snappy, 5, true}, {None, 5, true},
	} {
		err := CheckLevel(tc.codec, tc.level)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidLevel)) {
			t.Errorf("CheckLevel(%s, %d) = %v, want ok %v", tc.codec, tc.level, err, tc.ok)
		}
	}
	bl := NewBuilder(Options{Compression: Gzip, Level: 11}, 0)
	bl.Append(0, nil, []byte("v"), nil)
	if _, err := bl.Finish(NoProducer()); !errors.Is(err, ErrInvalidLevel) {
		t.Errorf("Finish with gzip level 11: %v", err)
	}
}

// TestSnappyFastEncoder: snappy batches are encoded with s2's fast
// snappy-compatible encoder, as snappy-java and franz-go encode, not with
// klauspost/compress/snappy.Encode (s2's "better" mode, about twice as
// slow): the blocks are byte for byte what the fast encoder writes.
func TestSnappyFastEncoder(t *testing.T) {
	raw := levelBatch(t, Snappy, 0)
	plain := levelBatch(t, None, 0)[HeaderLen:]
	var h kmsg.RecordBatch
	if err := h.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	comp, err := kgo.DefaultCompressor(kgo.SnappyCompression())
	if err != nil {
		t.Fatal(err)
	}
	// kgo writes one raw block; ours is xerial-framed in 32KB blocks. Each
	// of our blocks must equal kgo's encoding of the same 32KB.
	blocks := h.Records[len(xerialHeader):]
	for i := 0; len(plain) > 0; i++ {
		chunk := plain[:min(len(plain), xerialBlock)]
		plain = plain[len(chunk):]
		want.Reset()
		enc, _ := comp.Compress(&want, chunk)
		n := int(uint32(blocks[0])<<24 | uint32(blocks[1])<<16 | uint32(blocks[2])<<8 | uint32(blocks[3]))
		if !bytes.Equal(blocks[4:4+n], enc) {
			t.Fatalf("block %d differs from the fast encoder's (%d bytes, fast %d)", i, n, len(enc))
		}
		blocks = blocks[4+n:]
	}
}

// Our zstd frames carry no content checksum, as Java's producer writes them
// (zstd-jni's default): the batch's CRC covers them. Readers that verify a
// checksum when present (kgo's, ours) then have none to compute.
func TestZstdFramesWithoutChecksum(t *testing.T) {
	for _, level := range []int{0, ZstdMinLevel, 1, 7, ZstdMaxLevel} {
		raw := levelBatch(t, Zstd, level)
		var h zstd.Header
		if err := h.Decode(raw[HeaderLen:]); err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if h.HasCheckSum {
			t.Fatalf("level %d: the frame has a content checksum", level)
		}
	}
}

// Encoders and decoders outlive garbage collections (a sync.Pool loses
// them every other one, and a producer, broker or consumer moving
// compressed batches steadily collects several times a second):
// compressing or decompressing after two collections makes no codec state
// anew (a zstd decoder made anew allocated 29 times, a gzip reader 12).
// (lz4's writer and reader are kept too, but pierrec's lz4 takes its block
// buffers from sync.Pools of its own.)
func TestCodecsSurviveGC(t *testing.T) {
	src := bytes.Repeat([]byte("a record that repeats itself "), 1000)
	dst := make([]byte, 0, CompressedCap(Zstd, len(src))+len(src))
	for _, c := range []Codec{Gzip, Zstd} {
		compressed, err := Compress(c, nil, src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decompress(c, compressed); err != nil {
			t.Fatal(err)
		}
		for what, run := range map[string]func() error{
			"compression": func() error { _, err := Compress(c, dst[:0], src); return err },
			// the decompressed batch and the reader over its input
			"decompression": func() error { _, err := Decompress(c, compressed); return err },
		} {
			allocs := testing.AllocsPerRun(5, func() {
				runtime.GC()
				runtime.GC()
				if err := run(); err != nil {
					t.Fatal(err)
				}
			})
			limit := 3.0
			if c == Zstd && what == "decompression" {
				limit = 8 // klauspost's zstd takes 6 small buffers from sync.Pools of its own
			}
			if allocs > limit {
				t.Errorf("%s %s: %.0f allocations after two collections", c, what, allocs)
			}
		}
	}
}
