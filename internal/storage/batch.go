package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"

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
}

// validateIncoming checks every batch of an Append's input (framing, magic,
// CRC, record count, the records' structure and offsets) and sets each
// batch's maxTimestamp from its records (validateRecords). It needs no
// configuration, so it runs before the log's lock is taken.
func validateIncoming(records []byte) (in incoming, err error) {
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
		if err := validateRecords(b[:h.size], &h); err != nil {
			return in, fmt.Errorf("batch at byte %d: %w", pos, err)
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
// and deltas (no allocation for an uncompressed batch): the batch must
// hold exactly recordCount records (INVALID_RECORD), with
// offset deltas 0, 1, ... (Kafka does not check them in uncompressed
// batches and rewrites compressed ones; kafkit never rewrites a produced
// batch, so it refuses them with INVALID_RECORD), and maxTimestamp is set to
// the largest record timestamp, as Kafka sets it, with a new CRC if the
// client's was wrong.
func validateRecords(batch []byte, h *batchHeader) error {
	data := batch[batchHeaderLen:]
	if codec := recordbatch.Codec(h.attributes & 0x07); codec != recordbatch.None {
		scratch := getValidateScratch()
		defer putValidateScratch(scratch)
		var err error
		if data, err = recordbatch.DecompressInto(codec, *scratch, data); err != nil {
			return fmt.Errorf("%w: %s records: %v", ErrCorruptMessage, codec, err)
		}
		*scratch = data
	}
	maxTs := int64(-1) // Kafka's NO_TIMESTAMP
	for i := range h.recordCount {
		rec, rest, ok := nextVarBytes(data)
		if !ok {
			return fmt.Errorf("%w: record %d of %d: bad length", ErrInvalidRecord, i, h.recordCount)
		}
		data = rest
		tsDelta, offsetDelta, ok := recordDeltas(rec)
		switch {
		case !ok:
			return fmt.Errorf("%w: record %d: invalid record header", ErrInvalidRecord, i)
		case offsetDelta != int64(i):
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, offsetDelta)
		}
		maxTs = max(maxTs, h.firstTimestamp+tsDelta)
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: incorrect declared batch size, records still remaining after %d", ErrInvalidRecord, h.recordCount)
	}
	if maxTs != h.maxTimestamp {
		binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(maxTs))
		binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
		h.maxTimestamp = maxTs
	}
	return nil
}

// validateScratch holds the buffers compressed batches decompress into for
// validateRecords, which keeps nothing of them: a fresh buffer per batch
// cost more than the decompression itself (zeroing and faulting in its
// pages, then collecting it). At most GOMAXPROCS are kept (as many as can
// decompress at once); a sync.Pool lost them every other garbage
// collection, and a broker taking compressed batches steadily collects
// several times a second (27 MB of buffers made anew per 2,400,000 records
// of 100 bytes with zstd).
var validateScratch = freelist.New[*[]byte](runtime.GOMAXPROCS(0))

// maxValidateScratch bounds the buffers kept for reuse: batches inflating
// past it (beyond Kafka's default message.max.bytes many times) are rare.
const maxValidateScratch = 16 << 20

func getValidateScratch() *[]byte {
	if b, ok := validateScratch.Get(); ok {
		return b
	}
	return new([]byte)
}

func putValidateScratch(b *[]byte) {
	if cap(*b) <= maxValidateScratch {
		validateScratch.Put(b)
	}
}

// nextVarBytes splits a varint-length-prefixed field off b.
func nextVarBytes(b []byte) (field, rest []byte, ok bool) {
	n, w := varint(b)
	if w <= 0 || n < 0 || n > int64(len(b)-w) {
		return nil, nil, false
	}
	return b[w : w+int(n)], b[w+int(n):], true
}

// varint is binary.Varint (zigzag, as Kafka's records use) with a fast path
// for the one-byte values most lengths and deltas are.
func varint(b []byte) (int64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return int64(b[0]>>1) ^ -int64(b[0]&1), 1
	}
	return binary.Varint(b)
}

// recordDeltas reads the start of a record body (after its length):
// attributes int8, timestampDelta varlong and offsetDelta varint. The key,
// value and headers are left unread: the length frames the record, and
// reading them would double the walk's cost for what the CRC already
// guards.
func recordDeltas(rec []byte) (tsDelta, offsetDelta int64, ok bool) {
	if len(rec) < 1 {
		return 0, 0, false
	}
	tsDelta, w := varint(rec[1:])
	if w <= 0 {
		return 0, 0, false
	}
	offsetDelta, w2 := varint(rec[1+w:])
	return tsDelta, offsetDelta, w2 > 0
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
