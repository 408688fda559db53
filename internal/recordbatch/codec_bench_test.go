package recordbatch

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Issue 20: the codecs on a 1 MiB batch of the integration benchmarks'
// records (one 100-byte value of random capital letters, as producer perf
// tests send), ours against franz-go's compressor and decompressor.
//
//	go test -run '^$' -bench 'BenchmarkCodec' ./internal/recordbatch/
func benchRecords() []byte {
	rng := rand.New(rand.NewPCG(20, 20))
	v := make([]byte, 100)
	for i := range v {
		v[i] = 'A' + byte(rng.IntN(26))
	}
	bl := NewBuilder(Options{}, 1<<20)
	for ts := int64(1_700_000_000_000); bl.Len() < 1<<20-200; ts++ {
		bl.Append(ts/8, nil, v, nil)
	}
	return bl.buf[HeaderLen:]
}

var benchKgoCodecs = map[Codec]kgo.CompressionCodec{
	Gzip: kgo.GzipCompression(), Snappy: kgo.SnappyCompression(), LZ4: kgo.Lz4Compression(), Zstd: kgo.ZstdCompression(),
}

func BenchmarkCodecCompress(b *testing.B) {
	src := benchRecords()
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		b.Run(c.String()+"/ours", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			dst := make([]byte, 0, CompressedCap(c, len(src)))
			for range b.N {
				if _, err := Compress(c, dst[:0], src); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.String()+"/kgo", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			comp, _ := kgo.DefaultCompressor(benchKgoCodecs[c])
			buf := bytes.NewBuffer(make([]byte, 0, CompressedCap(c, len(src))))
			for range b.N {
				buf.Reset()
				comp.Compress(buf, src)
			}
		})
	}
}

func BenchmarkCodecDecompress(b *testing.B) {
	src := benchRecords()
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		compressed, err := Compress(c, nil, src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.String()+"/ours", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for range b.N {
				if _, err := Decompress(c, compressed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.String()+"/kgo", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			dec := kgo.DefaultDecompressor()
			for range b.N {
				if _, err := dec.Decompress(compressed, kgo.CompressionCodecType(c)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
