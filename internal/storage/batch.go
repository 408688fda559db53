package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"runtime"
	"time"

	"github.com/kafkit/kafkit/internal/freelist"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Byte layout of a v2 record batch header (KIP-98), as the wire and the .log
// files carry it. The header is read at fixed offsets instead of through
// kmsg.RecordBatch so that the append and read paths never allocate; the
// tests build batches with kmsg and so check these offsets independently.
const (
	offBaseOffset      = 0  // int64, rewritten by Append
	offBatchLength     = 8  // int32: bytes after this field
	offLeaderEpoch     = 12 // int32, rewritten by Append
	offMagic           = 16 // int8
	offCRC             = 17 // uint32, CRC-32C of bytes [offAttributes, end)
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offFirstTimestamp  = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offRecordCount     = 57 // int32
	batchHeaderLen     = 61

	// logOverhead is the part of a batch not counted by its length field.
	logOverhead = offLeaderEpoch

	attrTimestampType = 0x08 // attributes bit 3: LogAppendTime
	attrTransactional = 0x10
	attrControl       = 0x20
	// attrDeleteHorizon (bit 6, KIP-534): firstTimestamp holds the batch's
	// delete horizon, set by the cleaner.
	attrDeleteHorizon = 0x40

	magicV2 = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the decoded fixed part of one batch.
type batchHeader struct {
	baseOffset      int64
	size            int32 // whole batch, log overhead included
	leaderEpoch     int32
	magic           int8
	crc             uint32
	attributes      int16
	lastOffsetDelta int32
	firstTimestamp  int64
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	recordCount     int32
}

func (h *batchHeader) lastOffset() int64 { return h.baseOffset + int64(h.lastOffsetDelta) }
func (h *batchHeader) nextOffset() int64 { return h.lastOffset() + 1 }

// lastSequence is the sequence of the batch's last record; sequences wrap
// from MaxInt32 to 0.
func (h *batchHeader) lastSequence() int32 {
	return seqAdd(h.baseSequence, h.lastOffsetDelta)
}

func seqAdd(seq, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

// parseHeader decodes the 61-byte header at the start of b; b must hold at
// least batchHeaderLen bytes.
func parseHeader(b []byte) batchHeader {
	be := binary.BigEndian
	return batchHeader{
		baseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		size:            int32(be.Uint32(b[offBatchLength:])) + logOverhead,
		leaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		magic:           int8(b[offMagic]),
		crc:             be.Uint32(b[offCRC:]),
		attributes:      int16(be.Uint16(b[offAttributes:])),
		lastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		firstTimestamp:  int64(be.Uint64(b[offFirstTimestamp:])),
		maxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		producerID:      int64(be.Uint64(b[offProducerID:])),
		producerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		baseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		recordCount:     int32(be.Uint32(b[offRecordCount:])),
	}
}

// checkFrame checks what can be checked from a header alone: the length
// field and the magic. It returns the header and a description of the
// problem, "" when there is none; unsupportedMagic tells that the problem is
// the magic. avail is the number of bytes available from the batch start.
func checkFrame(b []byte, avail int64) (h batchHeader, problem string, unsupportedMagic bool) {
	if avail < batchHeaderLen || len(b) < batchHeaderLen {
		if len(b) > offMagic && int8(b[offMagic]) < magicV2 && int8(b[offMagic]) >= 0 {
			return h, fmt.Sprintf("magic %d", b[offMagic]), true
		}
		return h, fmt.Sprintf("%d bytes are too few for a batch header", avail), false
	}
	h = parseHeader(b)
	switch {
	case h.magic != magicV2:
		return h, fmt.Sprintf("magic %d", h.magic), h.magic >= 0 && h.magic < magicV2
	case h.size < batchHeaderLen || int64(h.size) > avail:
		return h, fmt.Sprintf("batch length %d does not fit the %d bytes available", h.size-logOverhead, avail), false
	case h.lastOffsetDelta < 0:
		return h, fmt.Sprintf("lastOffsetDelta %d is negative", h.lastOffsetDelta), false
	case h.recordCount < 0 || int64(h.recordCount) > int64(h.lastOffsetDelta)+1:
		return h, fmt.Sprintf("record count %d does not fit lastOffsetDelta %d", h.recordCount, h.lastOffsetDelta), false
	}
	return h, "", false
}

// batchCRC computes the CRC-32C a batch's header must carry.
func batchCRC(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// incoming summarizes a validated Append input.
type incoming struct {
	batches  int
	records  int64
	maxBatch int32 // size of the largest batch
	// keyless locates the first record without a key outside control
	// batches, which a compacted log refuses: its batch's byte position
	// and its offset delta, or -1, -1.
	keylessBatch, keylessDelta int64
}

// timestampBounds is the range [lo, lo+span] a CreateTime record's
// timestamp must fall in (message.timestamp.before.max.ms and
// after.max.ms around the broker's clock), computed once per Append so
// that the walk makes one comparison per record.
type timestampBounds struct {
	lo   int64
	span uint64
}

// anyTimestamp accepts every timestamp: under LogAppendTime Kafka checks
// none.
var anyTimestamp = timestampBounds{lo: math.MinInt64, span: math.MaxUint64}

// timestampBoundsAt returns the bounds at now (ms) for Config's
// TimestampBeforeMaxMs and TimestampAfterMaxMs, with defaults applied:
// [now - before, now + after], as Kafka's LogValidator names them. The
// largest Duration stands for Kafka's Long.MAX_VALUE ms, which a Duration
// cannot hold; where Java's arithmetic would wrap, the bounds saturate.
func timestampBoundsAt(now int64, before, after time.Duration) timestampBounds {
	ms := func(d time.Duration) int64 {
		if d == math.MaxInt64 {
			return math.MaxInt64
		}
		return d.Milliseconds()
	}
	lo, hi := now-ms(before), now+ms(after)
	if lo > now {
		lo = math.MinInt64
	}
	if hi < now {
		hi = math.MaxInt64
	}
	return timestampBounds{lo: lo, span: uint64(hi - lo)}
}

func (t timestampBounds) hi() int64 { return t.lo + int64(t.span) }

// validateIncoming checks every batch of an Append's input (framing, magic,
// CRC, record count, the records' structure and offsets, the records'
// timestamps against tb), sets each batch's maxTimestamp from its records
// (validateRecords) and finds the first record without a key, for a
// compacted log to refuse. It runs before the log's lock is taken.
func validateIncoming(records []byte, tb timestampBounds) (in incoming, err error) {
	in.keylessBatch, in.keylessDelta = -1, -1
	if len(records) == 0 {
		return in, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	for pos := 0; pos < len(records); {
		b := records[pos:]
		h, problem, badMagic := checkFrame(b, int64(len(b)))
		switch {
		case badMagic:
			return in, fmt.Errorf("%w: batch at byte %d: %s", ErrUnsupportedMagic, pos, problem)
		case problem != "":
			return in, fmt.Errorf("%w: batch at byte %d: %s", ErrCorruptMessage, pos, problem)
		case batchCRC(b[:h.size]) != h.crc:
			return in, fmt.Errorf("%w: batch at byte %d: CRC mismatch", ErrCorruptMessage, pos)
		case h.recordCount != h.lastOffsetDelta+1:
			// Produced batches are never compacted, so every offset of the
			// range has its record (Kafka's "inconsistent batch offset range").
			return in, fmt.Errorf("%w: record count %d but lastOffsetDelta %d", ErrInvalidRecord, h.recordCount, h.lastOffsetDelta)
		}
		keyless := int64(-1)
		var badTs []RecordError
		if err := validateRecords(b[:h.size], &h, &keyless, tb, &badTs); err != nil {
			return in, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		if badTs != nil {
			return in, &InvalidTimestampError{Records: badTs}
		}
		if keyless >= 0 && in.keylessDelta < 0 {
			in.keylessBatch, in.keylessDelta = int64(pos), keyless
		}
		in.batches++
		in.records += int64(h.recordCount)
		in.maxBatch = max(in.maxBatch, h.size)
		pos += int(h.size)
	}
	return in, nil
}

// validateRecords walks the records of a produced batch that passed its frame
// and CRC checks, as Kafka's LogValidator does, reading only their lengths
// and deltas (no allocation): the batch must hold exactly recordCount
// records (INVALID_RECORD), with offset deltas 0, 1, ... (Kafka does not
// check them in uncompressed batches and rewrites compressed ones; kafkit
// never rewrites a produced batch, so it refuses them with INVALID_RECORD),
// and maxTimestamp is set to the largest record timestamp, as Kafka sets
// it, with a new CRC if the client's was wrong. Each record whose
// timestamp is outside tb (Kafka's NO_TIMESTAMP, -1, aside) is added to
// badTs (up to maxNamedRecords) with Kafka's message, as
// LogValidator.validateTimestamp names it, and the walk goes on to find
// the others. A compressed batch is
// decompressed as it is walked (recordbatch.Stream), as Kafka's
// skipKeyValueIterator does, through a buffer of fixed size; a stream
// that does not decompress is CORRUPT_MESSAGE.
func validateRecords(batch []byte, h *batchHeader, firstKeyless *int64, tb timestampBounds, badTs *[]RecordError) error {
	w := recordWalk{buf: batch[batchHeaderLen:], eof: true}
	w.end = len(w.buf)
	codec := recordbatch.Codec(h.attributes & 0x07)
	if codec != recordbatch.None {
		s, err := recordbatch.NewStream(codec, w.buf)
		if err != nil {
			return fmt.Errorf("%w: %s records: %v", ErrCorruptMessage, codec, err)
		}
		defer s.Close()
		buf := getWalkBuffer()
		defer walkBuffers.Put(buf)
		w = recordWalk{buf: buf[:], r: s}
	}
	maxTs := int64(-1) // Kafka's NO_TIMESTAMP
	for i := range h.recordCount {
		w.fill(maxRecordHead)
		rec := w.buf[w.pos:w.end]
		n, lw, tsDelta, offsetDelta, keyless, ok := recordHead(rec)
		if lw <= 0 {
			return w.fail(codec, fmt.Errorf("%w: record %d of %d: bad length", ErrInvalidRecord, i, h.recordCount))
		}
		switch {
		case !ok && int64(len(rec)-lw) < n && w.eof:
			return w.fail(codec, fmt.Errorf("%w: record %d of %d: bad length", ErrInvalidRecord, i, h.recordCount))
		case !ok:
			return w.fail(codec, fmt.Errorf("%w: record %d: invalid record header", ErrInvalidRecord, i))
		case offsetDelta != int64(i):
			return w.fail(codec, fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, offsetDelta))
		case !w.skip(int64(lw) + n):
			return w.fail(codec, fmt.Errorf("%w: record %d of %d: bad length", ErrInvalidRecord, i, h.recordCount))
		}
		ts := h.firstTimestamp + tsDelta
		if uint64(ts-tb.lo) > tb.span && ts != -1 && len(*badTs) < maxNamedRecords {
			*badTs = append(*badTs, RecordError{BatchIndex: i, Message: fmt.Sprintf(
				"Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]",
				ts, h.baseOffset+offsetDelta, tb.lo, tb.hi())})
		}
		maxTs = max(maxTs, ts)
		if keyless && *firstKeyless < 0 && h.attributes&attrControl == 0 {
			*firstKeyless = int64(i)
		}
	}
	// As Kafka's iterator, read on to the stream's end, where the codec
	// checks it (gzip's trailer and its CRC of the records).
	if w.fill(1) {
		return w.fail(codec, fmt.Errorf("%w: incorrect declared batch size, records still remaining after %d", ErrInvalidRecord, h.recordCount))
	}
	if w.err != nil {
		return w.fail(codec, nil)
	}
	if maxTs != h.maxTimestamp {
		binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(maxTs))
		binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
		h.maxTimestamp = maxTs
	}
	return nil
}

// maxNamedRecords bounds the records an InvalidTimestampError names (Kafka
// names them all): a compressed batch of max.message.bytes can inflate to
// millions of records, and a message of ~130 bytes for each would let one
// request take gigabytes. Past it the batch is refused all the same.
const maxNamedRecords = 10000

// maxRecordHead is the most a record's length, attributes, timestamp
// delta, offset delta and key length take (varints of up to 5, 1, 10, 5
// and 5 bytes): what the walk reads of each record.
const maxRecordHead = 5 + 1 + 10 + 5 + 5

// recordWalk is a window buf[pos:end] onto a batch's records: the whole
// records section of an uncompressed batch, or a buffer refilled from a
// decompressing stream r.
type recordWalk struct {
	buf      []byte
	pos, end int
	r        io.Reader
	eof      bool  // r has no more bytes (or there is no r)
	err      error // r's failure
}

// fill makes at least n bytes available from pos unless the stream ends
// or fails first, and reports whether it did.
func (w *recordWalk) fill(n int) bool {
	return w.end-w.pos >= n || w.refill(n)
}

func (w *recordWalk) refill(n int) bool {
	if w.eof {
		return false
	}
	w.end = copy(w.buf, w.buf[w.pos:w.end])
	w.pos = 0
	for w.end < n && w.read() {
	}
	return w.end >= n
}

// skip advances past n bytes, reading through the stream as needed, and
// reports whether there were that many.
func (w *recordWalk) skip(n int64) bool {
	if n <= int64(w.end-w.pos) {
		w.pos += int(n)
		return true
	}
	return w.skipRead(n)
}

func (w *recordWalk) skipRead(n int64) bool {
	for {
		avail := int64(w.end - w.pos)
		if n <= avail {
			w.pos += int(n)
			return true
		}
		n -= avail
		w.pos, w.end = 0, 0
		if !w.read() {
			return false
		}
	}
}

// read appends what the stream gives to buf[:end], and reports whether it
// may give more.
func (w *recordWalk) read() bool {
	if w.eof {
		return false
	}
	for range 100 { // io.Reader allows (0, nil); not without end
		n, err := w.r.Read(w.buf[w.end:])
		w.end += n
		switch {
		case err == io.EOF:
			w.eof = true
			return n > 0
		case err != nil:
			w.eof, w.err = true, err
			return false
		case n > 0:
			return true
		}
	}
	w.eof, w.err = true, io.ErrNoProgress
	return false
}

// fail returns the stream's failure, which the walk's own error
// (INVALID_RECORD, or nil) may only be a consequence of, as CORRUPT_MESSAGE.
func (w *recordWalk) fail(codec recordbatch.Codec, err error) error {
	if w.err != nil {
		return fmt.Errorf("%w: %s records: %v", ErrCorruptMessage, codec, w.err)
	}
	return err
}

// walkBuffers holds the buffers compressed batches stream through for
// validateRecords, at most GOMAXPROCS (as many as can decompress at
// once). 128 KiB holds a 64 KiB lz4 block (Java's) whole after a partial
// record, so lz4 decodes straight into it.
type walkBuffer = *[128 << 10]byte

var walkBuffers = freelist.New[walkBuffer](runtime.GOMAXPROCS(0))

func getWalkBuffer() walkBuffer {
	if b, ok := walkBuffers.Get(); ok {
		return b
	}
	return new([128 << 10]byte)
}

// varint2 reads the varint (zigzag, as Kafka's records use) at b[i:] if it
// takes one or two bytes, as most lengths and deltas do (up to 8191), and
// returns it and the index after it; ok is false otherwise (a longer
// varint, or b ends first). It makes no call, so that it inlines:
// binary.Varint's call and loop per field were a sixth of validating a
// gzip batch of 100-byte records. (Three bytes, as a loop, measured no
// faster.)
func varint2(b []byte, i int) (v int64, next int, ok bool) {
	if uint(i) >= uint(len(b)) {
		return 0, i, false
	}
	u := uint64(b[i])
	if u >= 0x80 {
		if uint(i+1) >= uint(len(b)) || b[i+1] >= 0x80 {
			return 0, i, false
		}
		u = u&0x7f | uint64(b[i+1])<<7
		i++
	}
	return int64(u>>1) ^ -int64(u&1), i + 1, true
}

// varintAt is varint2 for varints of any length (binary.Varint's), with
// next -1 if b ends first or the varint is longer than 10 bytes.
func varintAt(b []byte, i int) (int64, int) {
	if v, next, ok := varint2(b, i); ok {
		return v, next
	}
	if i < 0 || i >= len(b) {
		return 0, -1
	}
	v, w := binary.Varint(b[i:])
	if w <= 0 {
		return 0, -1
	}
	return v, i + w
}

// recordHead reads a record's length and the start of its body (cut to
// rec): attributes int8, timestampDelta varlong, offsetDelta varint and
// the key's length (varint, -1 for none: keyless). lw is the length's
// width, 0 if it does not read. The key, value and headers are left
// unread, as Kafka's skipKeyValueIterator leaves them: the length frames
// the record, and reading them would double the walk's cost for what the
// CRC already guards.
func recordHead(rec []byte) (length int64, lw int, tsDelta, offsetDelta int64, keyless, ok bool) {
	var keyLen int64
	var at int
	length, lw, ok = varint2(rec, 0)
	if ok && length >= 0 {
		// The common case: each field one or two bytes, within the record.
		body := rec[:min(len(rec), lw+int(min(length, maxRecordHead)))]
		var ok1, ok2, ok3 bool
		tsDelta, at, ok1 = varint2(body, lw+1) // after the attributes
		offsetDelta, at, ok2 = varint2(body, at)
		keyLen, _, ok3 = varint2(body, at)
		if ok1 && ok2 && ok3 {
			return length, lw, tsDelta, offsetDelta, keyLen < 0, true
		}
	}
	if length, lw = varintAt(rec, 0); lw <= 0 || length < 0 {
		return 0, 0, 0, 0, false, false
	}
	body := rec[:min(len(rec), lw+int(min(length, maxRecordHead)))]
	tsDelta, at = varintAt(body, lw+1)
	offsetDelta, at = varintAt(body, at)
	keyLen, at = varintAt(body, at)
	return length, lw, tsDelta, offsetDelta, keyLen < 0, at > 0
}

// assignOffsets rewrites the header fields the broker owns, in place. Only a
// LogAppendTime stamp touches CRC-covered bytes and so needs a new CRC.
func assignOffsets(batch []byte, base int64, leaderEpoch int32, appendTime int64) {
	be := binary.BigEndian
	be.PutUint64(batch[offBaseOffset:], uint64(base))
	be.PutUint32(batch[offLeaderEpoch:], uint32(leaderEpoch))
	if appendTime >= 0 {
		attrs := be.Uint16(batch[offAttributes:]) | attrTimestampType
		be.PutUint16(batch[offAttributes:], attrs)
		be.PutUint64(batch[offMaxTimestamp:], uint64(appendTime))
		be.PutUint32(batch[offCRC:], batchCRC(batch))
	}
}
