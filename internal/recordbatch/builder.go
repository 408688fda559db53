package recordbatch

import (
	"encoding/binary"
	"hash/crc32"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// Byte offsets of the v2 batch header fields that are patched in place. The
// header is 61 bytes; the CRC covers everything from the attributes on.
const (
	HeaderLen            = 61
	offLength            = 8
	offLeaderEpoch       = 12
	offMagic             = 16
	offCRC               = 17
	offAttributes        = 21
	offProducerID        = 43
	offProducerEpoch     = 51
	offBaseSequence      = 53
	batchLengthFieldSpan = 12 // base offset + length: not counted in Length
)

// Attribute bits of a v2 batch.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options fix the attributes of a batch being built.
type Options struct {
	Compression Codec
	// Level is the codec's compression.<codec>.level; 0 means Kafka's
	// default (see CheckLevel).
	Level         int
	Transactional bool // records belong to a transaction (Produce inside a txn)
	Control       bool // a control batch (commit/abort markers) written by a coordinator
}

func (o Options) attributes() int16 {
	a := int16(o.Compression) & attrCodecMask
	if o.Transactional {
		a |= attrTransactional
	}
	if o.Control {
		a |= attrControl
	}
	return a
}

// Producer is the idempotence stamp of a batch: producer id, epoch and the
// sequence number of its first record.
type Producer struct {
	ID           int64
	Epoch        int16
	BaseSequence int32
}

// NoProducer is the stamp of a batch from a producer without idempotence.
func NoProducer() Producer { return Producer{ID: -1, Epoch: -1, BaseSequence: -1} }

// Builder appends records to one batch in wire format. It is not safe for
// concurrent use: one goroutine (for the producer, the accumulator under the
// partition's lock) owns it until Finish.
type Builder struct {
	opts    Options
	buf     []byte // HeaderLen reserved bytes, then the uncompressed records
	n       int32
	firstTS int64
	maxTS   int64
}

// NewBuilder returns a Builder whose buffer starts with room for sizeHint
// bytes (batch.size is a good hint).
func NewBuilder(opts Options, sizeHint int) *Builder {
	return NewBuilderBuffer(opts, make([]byte, 0, max(sizeHint, HeaderLen)))
}

// NewBuilderBuffer returns a Builder that writes into buf's storage (its
// contents are overwritten), so callers can recycle the buffers of finished
// uncompressed batches.
func NewBuilderBuffer(opts Options, buf []byte) *Builder {
	if cap(buf) < HeaderLen {
		buf = make([]byte, 0, HeaderLen)
	}
	return &Builder{opts: opts, buf: buf[:HeaderLen]}
}

// Len is the batch's size so far, uncompressed, header included.
func (b *Builder) Len() int { return len(b.buf) }

// NumRecords is the number of records appended.
func (b *Builder) NumRecords() int { return int(b.n) }

// recordBodyLen is the size of a record's body (what its length prefix
// counts) as the record after n others in a batch whose first record has
// timestamp firstTS, payload being its PayloadLen.
func recordBodyLen(n int32, firstTS, ts int64, payload int) int {
	delta := int64(0)
	if n > 0 {
		delta = ts - firstTS
	}
	return 1 + kbin.VarlongLen(delta) + kbin.VarintLen(n) + payload
}

// PayloadLen is the size of a record's key, value and headers in a batch:
// the part of the record whose size does not depend on its place in the
// batch. A producer computes it once per record for its Sizer and
// partitioner.
func PayloadLen(key, value []byte, headers []kafkit.Header) int {
	l := varBytesLen(key) + varBytesLen(value) + kbin.VarintLen(int32(len(headers)))
	for _, h := range headers {
		l += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + varBytesLen(h.Value)
	}
	return l
}

func varBytesLen(b []byte) int {
	if b == nil {
		return kbin.VarintLen(-1)
	}
	return kbin.VarintLen(int32(len(b))) + len(b)
}

// Append adds one record with timestamp ts (Unix milliseconds) and returns
// the bytes it took. Key, value and headers are copied; nil key or value
// encode as null.
func (b *Builder) Append(ts int64, key, value []byte, headers []kafkit.Header) int {
	before := len(b.buf)
	b.appendBody(recordBodyLen(b.n, b.firstTS, ts, PayloadLen(key, value, headers)), ts, key, value, headers)
	return len(b.buf) - before
}

// Sizer counts the bytes a batch's records take in wire format as they are
// added, without encoding them: a producer fills a batch up to batch.size
// on its callers' goroutines and encodes it with a Builder once no more
// records go in, off their path. A Builder given the same records in the
// same order is Len() bytes long (uncompressed, header included). The zero
// Sizer is an empty batch.
type Sizer struct {
	n       int32
	firstTS int64
	records int // bytes of the records so far
}

// Len is the batch's size so far, uncompressed, header included.
func (s *Sizer) Len() int { return HeaderLen + s.records }

// RecordSize is how many bytes a record with timestamp ts and payload bytes
// of key, value and headers (PayloadLen) would add to the batch.
func (s *Sizer) RecordSize(ts int64, payload int) int {
	body := recordBodyLen(s.n, s.firstTS, ts, payload)
	return kbin.VarintLen(int32(body)) + body
}

// TryAdd counts the record in unless that would make the batch longer than
// limit bytes; a batch's first record always goes in (Kafka sends a record
// larger than batch.size in a batch of its own). It returns the bytes the
// record took, 0 if it did not go in (a record takes at least 4).
func (s *Sizer) TryAdd(limit int, ts int64, payload int) int {
	size := s.RecordSize(ts, payload)
	if s.n > 0 && s.Len()+size > limit {
		return 0
	}
	if s.n == 0 {
		s.firstTS = ts
	}
	s.n++
	s.records += size
	return size
}

// appendBody writes one record, whose body is body bytes long: kmsg.Record's
// fields in its order, the varints being Kafka's zig-zag ones, which
// encoding/binary's are (TestBuilderRecordsAreKmsgRecords holds the bytes
// to kmsg.Record.AppendTo's). Filling a kmsg.Record per record, converting
// its headers and kbin's out-of-line varint appends made a batch's encoding
// cost 1.6 times as much CPU (BenchmarkSeal/none, issue 20).
func (b *Builder) appendBody(body int, ts int64, key, value []byte, headers []kafkit.Header) {
	if b.n == 0 {
		b.firstTS, b.maxTS = ts, ts
	}
	b.maxTS = max(b.maxTS, ts)
	buf := binary.AppendVarint(b.buf, int64(body))
	buf = append(buf, 0) // attributes: none are defined for records
	buf = binary.AppendVarint(buf, ts-b.firstTS)
	buf = binary.AppendVarint(buf, int64(b.n))
	buf = appendVarBytes(buf, key)
	buf = appendVarBytes(buf, value)
	buf = binary.AppendVarint(buf, int64(len(headers)))
	for _, h := range headers {
		buf = binary.AppendVarint(buf, int64(len(h.Key)))
		buf = append(buf, h.Key...)
		buf = appendVarBytes(buf, h.Value)
	}
	b.buf = buf
	b.n++
}

func appendVarBytes(buf, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(buf, -1)
	}
	return append(binary.AppendVarint(buf, int64(len(b))), b...)
}

// Finish compresses the records, writes the header with p's producer
// fields and the CRC, and returns the batch's wire bytes (base offset 0,
// partition leader epoch -1, as producers send them). The Builder must not
// be used afterwards; the returned slice belongs to the caller.
func (b *Builder) Finish(p Producer) ([]byte, error) {
	batch, _, err := b.FinishInto(nil, p)
	return batch, err
}

// FinishInto is Finish with a compressed batch written into dst's storage
// (its contents are overwritten; nil allocates), so callers can recycle the
// buffers of completed compressed batches. It also hands back the builder's
// own buffer, which compression leaves unused (nil for an uncompressed
// batch, which is that buffer). Like Java's producer, it compresses even
// records that do not shrink.
func (b *Builder) FinishInto(dst []byte, p Producer) (batch, spare []byte, err error) {
	out := b.buf
	if b.opts.Compression != None {
		records := b.buf[HeaderLen:]
		dst = slices.Grow(dst[:0], HeaderLen+CompressedCap(b.opts.Compression, len(records)))
		if out, err = compress(b.opts.Compression, b.opts.Level, dst[:HeaderLen], records); err != nil {
			return nil, nil, err
		}
		spare = b.buf[:0]
	}
	b.buf = nil
	hdr := kmsg.RecordBatch{
		FirstOffset:          0,
		Length:               int32(len(out) - batchLengthFieldSpan),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           b.opts.attributes(),
		LastOffsetDelta:      b.n - 1,
		FirstTimestamp:       b.firstTS,
		MaxTimestamp:         b.maxTS,
		ProducerID:           p.ID,
		ProducerEpoch:        p.Epoch,
		FirstSequence:        p.BaseSequence,
		NumRecords:           b.n,
	}
	hdr.AppendTo(out[:0]) // overwrites the reserved header bytes in place
	putCRC(out)
	return out, spare, nil
}

// Restamp rewrites the producer id, epoch and base sequence of a finished
// batch and its CRC: the producer resequences batches this way after an
// epoch bump or producer id reset, without re-encoding them.
func Restamp(batch []byte, p Producer) {
	binary.BigEndian.PutUint64(batch[offProducerID:], uint64(p.ID))
	binary.BigEndian.PutUint16(batch[offProducerEpoch:], uint16(p.Epoch))
	binary.BigEndian.PutUint32(batch[offBaseSequence:], uint32(p.BaseSequence))
	putCRC(batch)
}

// SetBaseOffset sets a batch's base offset (a field outside the CRC), as a
// broker does when it appends the batch to a log.
func SetBaseOffset(batch []byte, offset int64) {
	binary.BigEndian.PutUint64(batch, uint64(offset))
}

// SetPartitionLeaderEpoch sets a batch's partition leader epoch (outside the
// CRC), as the partition leader does on append.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}

func putCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], crcTable))
}
