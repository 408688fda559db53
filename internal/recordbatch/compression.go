package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/kafkit/kafkit/internal/freelist"
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

// Kafka's compression.<codec>.level keys (KIP-390): their defaults and
// ranges. Snappy has no level. A Level of 0 in Options means the default.
const (
	GzipDefaultLevel = -1 // Deflater.DEFAULT_COMPRESSION: the codec's own default
	GzipMinLevel     = 1
	GzipMaxLevel     = 9
	LZ4DefaultLevel  = 9 // Java's fast compressor; every other level is LZ4 HC
	LZ4MinLevel      = 1
	LZ4MaxLevel      = 17
	ZstdDefaultLevel = 3
	ZstdMinLevel     = -131072
	ZstdMaxLevel     = 22
)

// CheckLevel reports whether level is a valid compression.<codec>.level
// for c. 0 (the default) is always valid.
func CheckLevel(c Codec, level int) error {
	var ok bool
	switch c {
	case Gzip:
		ok = level == GzipDefaultLevel || level >= GzipMinLevel && level <= GzipMaxLevel
	case LZ4:
		ok = level >= LZ4MinLevel && level <= LZ4MaxLevel
	case Zstd:
		ok = level >= ZstdMinLevel && level <= ZstdMaxLevel
	default:
		ok = true
	}
	if !ok && level != 0 {
		return fmt.Errorf("%w: %s level %d (valid values: %s)", ErrInvalidLevel, c, level, ValidLevels(c))
	}
	return nil
}

// ValidLevels describes c's valid levels as Kafka's config docs do.
func ValidLevels(c Codec) string {
	switch c {
	case Gzip:
		return "[1,...,9] or -1"
	case LZ4:
		return "[1,...,17]"
	case Zstd:
		return "[-131072,...,22]"
	}
	return "none (" + c.String() + " has no level)"
}

// encoderKey names one pool of encoders: a codec at a level in its
// library's terms (gzip's level, pierrec's lz4.CompressionLevel, klauspost's
// zstd.EncoderLevel).
type encoderKey struct {
	codec Codec
	level int
}

// libraryLevel maps a Kafka level (0 for the default) to c's library level,
// the way Java's codecs read it: lz4 level 9 is the fast compressor and any
// other the HC one (pierrec's HC stops at its level 9), zstd levels map to
// klauspost's four speeds as zstd's own levels rank them.
func libraryLevel(c Codec, level int) (encoderKey, error) {
	if err := CheckLevel(c, level); err != nil {
		return encoderKey{}, err
	}
	switch c {
	case Gzip:
		if level == 0 {
			level = GzipDefaultLevel
		}
	case LZ4:
		switch {
		case level == 0 || level == LZ4DefaultLevel:
			level = int(lz4.Fast)
		case level < LZ4DefaultLevel:
			level = int(lz4.Level1) << (level - 1)
		default:
			level = int(lz4.Level9)
		}
	case Zstd:
		if level == 0 {
			level = ZstdDefaultLevel
		}
		level = int(zstd.EncoderLevelFromZstd(level))
	default:
		level = 0
	}
	return encoderKey{c, level}, nil
}

// Codec state is expensive to create (zstd and gzip allocate large tables),
// so encoders and decoders are kept for reuse, encoders per codec and
// level, at most GOMAXPROCS of each (as many as can run at once) in free
// lists that, unlike a sync.Pool, outlive garbage collections. The caches
// have no observable state, hence package level.
var (
	encoders     sync.Map // encoderKey → freelist.List[any] of the codec's writer
	gzipReaders  = freelist.New[*gzip.Reader](runtime.GOMAXPROCS(0))
	lz4Readers   = freelist.New[*lz4.Reader](runtime.GOMAXPROCS(0))
	zstdDecoders = freelist.New[*zstd.Decoder](runtime.GOMAXPROCS(0))
	// lz4Scratch grows to the largest frame it took, so the runtime may
	// take it back.
	lz4Scratch = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// encoderCache returns the idle encoders of k, at most GOMAXPROCS (as many
// as can compress at once; the producer compresses on that many goroutines
// at most). Not a sync.Pool, which every other garbage collection emptied:
// a producer compressing steadily kept making encoders anew (zstd's and
// gzip's allocate megabytes of tables, zeroed and faulted in: 28 MB per
// 2,400,000 records of 100 bytes with zstd).
func encoderCache(k encoderKey) freelist.List[any] {
	if c, ok := encoders.Load(k); ok {
		return c.(freelist.List[any])
	}
	c, _ := encoders.LoadOrStore(k, freelist.New[any](runtime.GOMAXPROCS(0)))
	return c.(freelist.List[any])
}

// newEncoder makes a writer for k, whose level libraryLevel checked.
func newEncoder(k encoderKey) any {
	switch k.codec {
	case Gzip:
		w, _ := gzip.NewWriterLevel(nil, k.level)
		return w
	case LZ4:
		w := lz4.NewWriter(nil)
		// As Java's Lz4BlockOutputStream: 64KB independent blocks, no
		// content checksum (the batch's CRC covers the bytes).
		_ = w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ConcurrencyOption(1), lz4.ChecksumOption(false),
			lz4.CompressionLevelOption(lz4.CompressionLevel(k.level)))
		return w
	case Zstd:
		// No content checksum, as Java's producer writes its frames
		// (zstd-jni's default): the batch's CRC covers the bytes, and the
		// xxhash64 over every record cost a tenth of the compression
		// here and as much again in each reader that verifies it.
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true),
			zstd.WithEncoderLevel(zstd.EncoderLevel(k.level)), zstd.WithEncoderCRC(false))
		return e
	}
	return nil
}

// appendWriter is an io.Writer appending to a byte slice, so streaming
// codecs write straight after the batch header.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// CompressedCap is the room to give Compress for n bytes of records so
// that it does not have to grow its destination: the codecs store data that
// does not shrink as raw blocks, at a few bytes per block.
func CompressedCap(c Codec, n int) int {
	switch c {
	case None:
		return n
	case Snappy:
		return xerialBound(n)
	}
	return n + n>>10 + 64
}

// Compress appends src (a batch's records section) compressed with c at
// its default level to dst.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	return compress(c, 0, dst, src)
}

// compress appends src compressed with c at the Kafka level (0: default).
func compress(c Codec, level int, dst, src []byte) ([]byte, error) {
	if c == None {
		return append(dst, src...), nil
	}
	if c == Snappy {
		return appendXerial(dst, src), nil
	}
	if c < 0 || c > Zstd {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCodec, c)
	}
	k, err := libraryLevel(c, level)
	if err != nil {
		return nil, err
	}
	cache := encoderCache(k)
	enc, ok := cache.Get()
	if !ok {
		enc = newEncoder(k)
	}
	defer cache.Put(enc)
	dst = slices.Grow(dst, CompressedCap(c, len(src)))
	if e, ok := enc.(*zstd.Encoder); ok {
		return e.EncodeAll(src, dst), nil
	}
	w := enc.(streamEncoder)
	out := appendWriter{dst}
	w.Reset(&out)
	return streamClose(w, &out, src)
}

// streamEncoder is what gzip's and lz4's writers have in common.
type streamEncoder interface {
	io.WriteCloser
	Reset(io.Writer)
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
// itself for None) in an allocation of its own, which records read from it
// may alias: one allocation of its size where the format tells it (gzip's
// trailer, zstd's frame header, xerial's and snappy's block headers) or of a
// guess otherwise. A reader that looks at each record once and keeps none
// streams them instead (Stream).
func Decompress(c Codec, src []byte) ([]byte, error) {
	// Batches typically inflate several times; a guess starting at 16KB
	// (Kafka's batch.size) saves most regrowth for small batches.
	sizeHint := min(max(4*len(src), 16<<10), maxDecompressed)
	switch c {
	case None:
		return src, nil
	case Gzip:
		r, ok := gzipReaders.Get() // gzip.NewReader needs a valid stream, so none is made ahead
		if ok {
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
		return readAllLimited(r, make([]byte, 0, sizeHint))
	case LZ4:
		r, ok := lz4Readers.Get()
		if !ok {
			r = lz4.NewReader(nil)
		}
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		// Kafka's lz4 frames do not record their size (Java's and
		// franz-go's writers leave it out), so the
		// frame inflates into a pooled scratch buffer and is copied out
		// once at its size: growing a guessed buffer copies more, and a
		// frame of 4MB blocks bounds its size no better than 4MB a block.
		scratch := lz4Scratch.Get().(*[]byte)
		defer lz4Scratch.Put(scratch)
		out, err := readAllLimited(r, (*scratch)[:0])
		if err != nil {
			return nil, err
		}
		*scratch = out
		return bytes.Clone(out), nil
	case Snappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(src)
		}
		return decodeSnappyBlocks([][]byte{src})
	case Zstd:
		d, ok := zstdDecoders.Get()
		if !ok {
			d = newZstdDecoder()
		}
		defer zstdDecoders.Put(d)
		var h zstd.Header
		if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize <= maxDecompressed {
			sizeHint = int(h.FrameContentSize)
		}
		return d.DecodeAll(src, make([]byte, 0, sizeHint))
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownCodec, c)
}

// Stream reads a batch's records section decompressed, a buffer at a time,
// for a reader that looks at each record once and keeps none, as a broker
// validating a produced batch (Kafka's LogValidator streams it too, through
// skipKeyValueIterator): the records need not all be in memory at once, so
// a batch costs a fixed buffer that stays in cache whatever it inflates
// to, where inflating it whole wrote every byte to memory first (1 MiB and
// more a batch, beyond the caches, and a new allocation for a batch larger
// than the buffers kept). Streams and their decoders are pooled.
type Stream struct {
	src  bytes.Reader
	r    io.Reader // gzip's, lz4's or zstd's decoder reading src; nil for snappy
	gz   *gzip.Reader
	lz   *lz4.Reader
	zd   *zstd.Decoder
	read int64 // bytes returned, bounded by maxDecompressed

	// Snappy, and LZ4 frames in Kafka's form (lz4Frame): the blocks not
	// yet decoded (xerial framing, or one raw snappy block), and what a
	// block larger than a Read's buffer decoded to that was not read yet,
	// in scratch.
	blocks  []byte
	xerial  bool
	lz4     bool
	lz4Max  int  // an LZ4 frame's largest block
	lz4Sum  bool // the frame ends with a content checksum
	pending []byte
	scratch []byte
}

var streams = freelist.New[*Stream](runtime.GOMAXPROCS(0))

// maxStreamScratch bounds the snappy scratch a pooled Stream keeps: raw
// (unframed) snappy batches decode whole, and those inflating past it are
// rare.
const maxStreamScratch = 16 << 20

// NewStream returns a Stream over src, a batch's records section compressed
// with c (not None). Close returns it to the pool.
func NewStream(c Codec, src []byte) (*Stream, error) {
	s, ok := streams.Get()
	if !ok {
		s = new(Stream)
	}
	s.read, s.pending = 0, nil
	s.src.Reset(src)
	var err error
	switch c {
	case Gzip:
		s.gz, ok = gzipReaders.Get()
		if ok {
			err = s.gz.Reset(&s.src)
		} else {
			s.gz, err = gzip.NewReader(&s.src) // needs a valid stream, so none is made ahead
		}
		s.r = s.gz
	case LZ4:
		if s.blocks, s.lz4Max, s.lz4Sum, s.lz4 = lz4Frame(src); s.lz4 {
			s.r = nil
			break
		}
		if s.lz, ok = lz4Readers.Get(); !ok {
			s.lz = lz4.NewReader(nil)
		}
		s.lz.Reset(&s.src)
		s.r = s.lz
	case Zstd:
		if s.zd, ok = zstdDecoders.Get(); !ok {
			s.zd = newZstdDecoder()
		}
		err = s.zd.Reset(&s.src)
		s.r = s.zd
	case Snappy:
		s.r, s.blocks, s.lz4 = nil, src, false
		if s.xerial = bytes.HasPrefix(src, xerialMagic); s.xerial {
			if len(src) < len(xerialHeader) {
				err = errMalformedXerial
			}
			s.blocks = src[min(len(src), len(xerialHeader)):]
		}
	default:
		err = fmt.Errorf("%w: %d", ErrUnknownCodec, c)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Read reads decompressed bytes into p. It returns io.EOF at the end of
// the records, after the codec checked the stream's end (gzip's trailer,
// zstd's and lz4's checksums if present).
func (s *Stream) Read(p []byte) (int, error) {
	var n int
	var err error
	if s.r != nil {
		n, err = s.r.Read(p)
	} else {
		n, err = s.readBlocks(p)
	}
	if s.read += int64(n); s.read > maxDecompressed {
		return n, errTooLarge
	}
	return n, err
}

// readBlocks reads the next snappy or LZ4 block's bytes into p: decoded
// straight into p if it has room for the block, else into scratch and
// read out from there.
func (s *Stream) readBlocks(p []byte) (int, error) {
	for len(s.pending) == 0 {
		var n int
		var err error
		if s.lz4 {
			n, err = s.nextLZ4(p)
		} else {
			n, err = s.nextSnappy(p)
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// nextSnappy decodes the next snappy block into p if it fits, returning
// its size, or into pending.
func (s *Stream) nextSnappy(p []byte) (int, error) {
	if len(s.blocks) == 0 {
		return 0, io.EOF
	}
	block := s.blocks
	if s.xerial {
		if len(block) < 4 || uint64(binary.BigEndian.Uint32(block)) > uint64(len(block)-4) {
			return 0, errMalformedXerial
		}
		block = block[4 : 4+binary.BigEndian.Uint32(block)]
		s.blocks = s.blocks[4+len(block):]
	} else {
		s.blocks = nil
	}
	n, err := s2.DecodedLen(block)
	if err != nil {
		return 0, err
	}
	if n > maxDecompressed {
		return 0, errTooLarge
	}
	if n <= len(p) {
		_, err := s2.Decode(p[:n], block)
		return n, err
	}
	s.scratch = room(s.scratch, n)[:n]
	if _, err := s2.Decode(s.scratch, block); err != nil {
		return 0, err
	}
	s.pending = s.scratch
	return 0, nil
}

// LZ4 frames (lz4's frame format) as Kafka's producers write them:
// version 1, independent blocks, no block checksums, no dictionary. Kafka's
// Lz4BlockInputStream reads them checking the descriptor's checksum and
// skipping the content size and the content checksum (its "TODO: verify
// this content checksum"); pierrec's Reader verifies the content checksum,
// an xxHash32 of every decompressed byte that Go clients (franz-go's and
// sarama's writers) put in each frame, which took a third of validating
// such an lz4 batch of 100-byte records. So such frames are decoded here,
// block by block with pierrec's block decoder, as Kafka reads them; any
// other frame goes to pierrec's Reader.
const (
	lz4Magic         = 0x184D2204
	lz4EndMark       = 0
	lz4Uncompressed  = 1 << 31 // a block size's flag: the block is stored
	lz4FlagVersion   = 0xC0
	lz4FlagIndep     = 0x20
	lz4FlagBlockSum  = 0x10
	lz4FlagSize      = 0x08
	lz4FlagSum       = 0x04
	lz4FlagReserved  = 0x02
	lz4FlagDictID    = 0x01
	lz4BDReserved    = 0x8F
	lz4MinBlockIndex = 4 // 64 KB
)

// lz4Frame reads the header of the LZ4 frame at the start of src and
// returns its blocks (and what follows them), the largest block size it
// allows and whether it ends with a content checksum, if it is a frame
// lz4Frame's reading handles (ok).
func lz4Frame(src []byte) (blocks []byte, blockMax int, contentSum, ok bool) {
	if len(src) < 7 || binary.LittleEndian.Uint32(src) != lz4Magic {
		return nil, 0, false, false
	}
	flg, bd := src[4], src[5]
	if flg&lz4FlagVersion != 0x40 || flg&lz4FlagIndep == 0 || flg&(lz4FlagBlockSum|lz4FlagReserved|lz4FlagDictID) != 0 ||
		bd&lz4BDReserved != 0 || bd>>4 < lz4MinBlockIndex {
		return nil, 0, false, false
	}
	descriptor := src[4:6]
	if flg&lz4FlagSize != 0 {
		if len(src) < 15 {
			return nil, 0, false, false
		}
		descriptor = src[4:14]
	}
	if byte(xxh32Small(descriptor)>>8) != src[4+len(descriptor)] {
		return nil, 0, false, false // pierrec's Reader reports it
	}
	return src[5+len(descriptor):], 1 << (8 + 2*(bd>>4)), flg&lz4FlagSum != 0, true
}

var errLZ4Frame = errors.New("malformed lz4 frame")

// nextLZ4 decodes the frame's next block into p if p can hold the
// largest block, returning its size, or into pending.
func (s *Stream) nextLZ4(p []byte) (int, error) {
	if len(s.blocks) < 4 {
		if len(s.blocks) == 0 && s.lz4Max == 0 {
			return 0, io.EOF
		}
		return 0, errLZ4Frame
	}
	size := binary.LittleEndian.Uint32(s.blocks)
	s.blocks = s.blocks[4:]
	if size == lz4EndMark {
		if s.lz4Sum {
			if len(s.blocks) < 4 {
				return 0, errLZ4Frame
			}
			s.blocks = s.blocks[4:] // not verified, as by Kafka
		}
		if len(s.blocks) == 0 {
			s.lz4Max = 0
			return 0, io.EOF
		}
		// Another frame follows, as pierrec's Reader reads on.
		var ok bool
		if s.blocks, s.lz4Max, s.lz4Sum, ok = lz4Frame(s.blocks); !ok {
			return 0, errLZ4Frame
		}
		return 0, nil
	}
	stored := size&lz4Uncompressed != 0
	size &^= lz4Uncompressed
	if uint64(size) > uint64(len(s.blocks)) || int(size) > s.lz4Max {
		return 0, errLZ4Frame
	}
	block := s.blocks[:size]
	s.blocks = s.blocks[size:]
	if stored {
		s.pending = block
		return 0, nil
	}
	dst := p
	if len(p) < s.lz4Max {
		s.scratch = room(s.scratch, s.lz4Max)[:s.lz4Max]
		dst = s.scratch
	}
	n, err := lz4.UncompressBlock(block, dst)
	if err != nil {
		return 0, err
	}
	if len(p) < s.lz4Max {
		s.pending = dst[:n]
		return 0, nil
	}
	return n, nil
}

// xxh32Small is xxHash32 with seed 0 of fewer than 16 bytes (an LZ4
// frame descriptor's checksum is its second byte).
func xxh32Small(b []byte) uint32 {
	const (
		prime1 uint32 = 2654435761
		prime2 uint32 = 2246822519
		prime3 uint32 = 3266489917
		prime4 uint32 = 668265263
		prime5 uint32 = 374761393
	)
	h := prime5 + uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * prime3
		h = bits.RotateLeft32(h, 17) * prime4
	}
	for _, c := range b {
		h += uint32(c) * prime5
		h = bits.RotateLeft32(h, 11) * prime1
	}
	h ^= h >> 15
	h *= prime2
	h ^= h >> 13
	h *= prime3
	h ^= h >> 16
	return h
}

// Close returns s and its decoder to their pools.
func (s *Stream) Close() {
	s.src.Reset(nil)
	s.r, s.blocks, s.pending = nil, nil, nil
	if s.gz != nil {
		gzipReaders.Put(s.gz)
		s.gz = nil
	}
	if s.lz != nil {
		s.lz.Reset(nil)
		lz4Readers.Put(s.lz)
		s.lz = nil
	}
	if s.zd != nil {
		// A stream left before its end holds the decoder's only block
		// decoder (concurrency 1), which DecodeAll would then wait for
		// forever: Reset gives it back.
		_ = s.zd.Reset(nil)
		zstdDecoders.Put(s.zd)
		s.zd = nil
	}
	if cap(s.scratch) > maxStreamScratch {
		s.scratch = nil
	}
	streams.Put(s)
}

// newZstdDecoder makes a decoder that decodes on the calling goroutine
// (concurrency 1: streams too, with no goroutine of its own).
func newZstdDecoder() *zstd.Decoder {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxDecompressed))
	return d
}

// room returns dst (empty) if it has room for n bytes, else a new buffer
// with that room.
func room(dst []byte, n int) []byte {
	if cap(dst) >= n {
		return dst[:0]
	}
	return make([]byte, 0, n)
}

// readAllLimited reads r to its end, appending to buf.
func readAllLimited(r io.Reader, buf []byte) ([]byte, error) {
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

func xerialBound(n int) int {
	blocks := (n + xerialBlock - 1) / xerialBlock
	return len(xerialHeader) + blocks*(4+s2.MaxEncodedLen(xerialBlock))
}

// appendXerial appends src in xerial framing. It encodes as snappy-java and
// franz-go do (s2's snappy-compatible fast encoder), not with
// klauspost/compress/snappy.Encode, which is s2's slower "better" mode.
func appendXerial(dst, src []byte) []byte {
	dst = append(slices.Grow(dst, xerialBound(len(src))), xerialHeader...)
	for len(src) > 0 {
		chunk := src[:min(len(src), xerialBlock)]
		src = src[len(chunk):]
		start := len(dst)
		need := 4 + s2.MaxEncodedLen(len(chunk))
		dst = slices.Grow(dst, need)[:start+need]
		enc := s2.EncodeSnappy(dst[start+4:], chunk) // in place: dst has the room
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
	var blocks [][]byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errMalformedXerial
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, errMalformedXerial
		}
		blocks = append(blocks, src[:n])
		src = src[n:]
	}
	return decodeSnappyBlocks(blocks)
}

var errMalformedXerial = errors.New("malformed xerial snappy framing")

// decodeSnappyBlocks decodes raw snappy blocks one after another into one
// allocation: their headers give its size.
func decodeSnappyBlocks(blocks [][]byte) ([]byte, error) {
	total := 0
	for _, b := range blocks {
		n, err := s2.DecodedLen(b)
		if err != nil {
			return nil, err
		}
		if total += n; total > maxDecompressed {
			return nil, errTooLarge
		}
	}
	out := make([]byte, total)
	at := 0
	for _, b := range blocks {
		n, _ := s2.DecodedLen(b)
		if _, err := s2.Decode(out[at:at+n], b); err != nil {
			return nil, err
		}
		at += n
	}
	return out, nil
}
