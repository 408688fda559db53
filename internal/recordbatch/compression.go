package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a batch's compression type: the low three bits of its attributes.
type Codec int8

const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// String returns the codec's name as Kafka's compression.type spells it.
func (c Codec) String() string {
	if c >= 0 && int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec maps a compression.type value (none, gzip, snappy, lz4, zstd;
// "" means none) to a Codec.
func ParseCodec(name string) (Codec, error) {
	if name == "" {
		return None, nil
	}
	for i, n := range codecNames {
		if n == name {
			return Codec(i), nil
		}
	}
	return None, fmt.Errorf("%w: %q (must be one of none, gzip, snappy, lz4, zstd)", ErrUnknownCodec, name)
}

// maxDecompressed bounds what one batch may inflate to, so a hostile or
// corrupt batch cannot exhaust memory. Kafka's own limits (message.max.bytes,
// fetch.max.bytes) sit far below it.
const maxDecompressed = 256 << 20

// Codec state is expensive to create (zstd and gzip allocate large tables),
// so encoders and decoders are pooled. The pools are caches with no
// observable state, hence package level.
var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	gzipReaders sync.Pool // *gzip.Reader; gzip.NewReader needs a valid stream, so no New
	lz4Writers  = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		// Java's KafkaLZ4BlockOutputStream writes 64KB independent blocks.
		_ = w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ConcurrencyOption(1))
		return w
	}}
	lz4Readers   = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	zstdEncoders = sync.Pool{New: func() any {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true))
		return e
	}}
	zstdDecoders = sync.Pool{New: func() any {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxDecompressed))
		return d
	}}
)

// appendWriter is an io.Writer appending to a byte slice, so streaming
// codecs write straight after the batch header.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Compress appends src (a batch's records section) compressed with c to dst.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		out := appendWriter{dst}
		w.Reset(&out)
		return streamClose(w, &out, src)
	case LZ4:
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		out := appendWriter{dst}
		w.Reset(&out)
		return streamClose(w, &out, src)
	case Snappy:
		return appendXerial(dst, src), nil
	case Zstd:
		e := zstdEncoders.Get().(*zstd.Encoder)
		defer zstdEncoders.Put(e)
		return e.EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownCodec, c)
}

func streamClose(w io.WriteCloser, out *appendWriter, src []byte) ([]byte, error) {
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.b, nil
}

// Decompress returns a batch's records section src decompressed with c (src
// itself for None).
func Decompress(c Codec, src []byte) ([]byte, error) {
	// Batches typically inflate several times; starting at 16KB (Kafka's
	// batch.size) saves most regrowth for small, well-compressed batches.
	return decompress(c, src, min(max(4*len(src), 16<<10), maxDecompressed))
}

// decompress returns src decompressed with c. sizeHint presizes the output.
func decompress(c Codec, src []byte, sizeHint int) ([]byte, error) {
	switch c {
	case None:
		return src, nil
	case Gzip:
		var r *gzip.Reader
		if pooled, ok := gzipReaders.Get().(*gzip.Reader); ok {
			r = pooled
			if err := r.Reset(bytes.NewReader(src)); err != nil {
				return nil, err
			}
		} else {
			var err error
			if r, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
				return nil, err
			}
		}
		defer gzipReaders.Put(r)
		if n := len(src); n >= 4 {
			// gzip's trailer holds the uncompressed size (mod 2^32).
			if isize := int(binary.LittleEndian.Uint32(src[n-4:])); isize <= maxDecompressed {
				sizeHint = isize
			}
		}
		return readAllLimited(r, sizeHint)
	case LZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		return readAllLimited(r, sizeHint)
	case Snappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(src)
		}
		return decodeSnappyBlock(nil, src)
	case Zstd:
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer zstdDecoders.Put(d)
		return d.DecodeAll(src, make([]byte, 0, sizeHint))
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownCodec, c)
}

func readAllLimited(r io.Reader, sizeHint int) ([]byte, error) {
	buf := make([]byte, 0, sizeHint)
	var probe [512]byte // checks for EOF at a full buffer before growing it
	for {
		var n int
		var err error
		if len(buf) < cap(buf) {
			n, err = r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		} else {
			n, err = r.Read(probe[:])
			if n > 0 {
				if len(buf) > maxDecompressed {
					return nil, errTooLarge
				}
				buf = append(slices.Grow(buf, len(buf)), probe[:n]...) // double
			}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var errTooLarge = fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)

// Java's snappy-java stream format ("xerial"): a 16-byte header (magic,
// version 1, compatible version 1), then blocks of a big-endian int32 length
// followed by one raw snappy block. The Java producer writes 32KB blocks.
var (
	xerialMagic  = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
	xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
)

const xerialBlock = 32 << 10

func appendXerial(dst, src []byte) []byte {
	dst = append(dst, xerialHeader...)
	for len(src) > 0 {
		chunk := src[:min(len(src), xerialBlock)]
		src = src[len(chunk):]
		start := len(dst)
		need := 4 + snappy.MaxEncodedLen(len(chunk))
		dst = slices.Grow(dst, need)[:start+need]
		enc := snappy.Encode(dst[start+4:], chunk)
		binary.BigEndian.PutUint32(dst[start:], uint32(len(enc)))
		dst = dst[:start+4+len(enc)]
	}
	return dst
}

func decodeXerial(src []byte) ([]byte, error) {
	if len(src) < len(xerialHeader) {
		return nil, errMalformedXerial
	}
	src = src[len(xerialHeader):]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errMalformedXerial
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, errMalformedXerial
		}
		var err error
		if out, err = decodeSnappyBlock(out, src[:n]); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

var errMalformedXerial = errors.New("malformed xerial snappy framing")

// decodeSnappyBlock appends the raw snappy block src to dst.
func decodeSnappyBlock(dst, src []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed-len(dst) {
		return nil, errTooLarge
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := snappy.Decode(dst[start:], src); err != nil {
		return nil, err
	}
	return dst, nil
}
