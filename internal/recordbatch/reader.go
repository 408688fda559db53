package recordbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// Attributes are a batch's attribute bits.
type Attributes int16

// Codec is the batch's compression codec.
func (a Attributes) Codec() Codec { return Codec(a & attrCodecMask) }

// TimestampType says whether record timestamps are CreateTime or the
// broker's LogAppendTime (then every record's timestamp is MaxTimestamp).
func (a Attributes) TimestampType() kafkit.TimestampType {
	if a&attrLogAppendTime != 0 {
		return kafkit.LogAppendTime
	}
	return kafkit.CreateTime
}

// Transactional reports whether the batch was written inside a transaction.
func (a Attributes) Transactional() bool { return a&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers), which consumers must not hand to applications.
func (a Attributes) Control() bool { return a&attrControl != 0 }

// Batch is one decoded record batch.
type Batch struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Attributes           Attributes
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
	// Records holds the decoded records (unless ReadOptions.SkipRecords).
	// Keys, values and header values alias the input (or, when compressed,
	// the decompressed buffer): copy them to keep them past the input's life.
	Records []kafkit.Record
	// Raw is the batch's wire bytes within the input.
	Raw []byte
}

// NextOffset is the offset after the batch's last record, where the next
// fetch starts.
func (b *Batch) NextOffset() int64 { return b.BaseOffset + int64(b.LastOffsetDelta) + 1 }

// ReadOptions tune a Reader.
type ReadOptions struct {
	VerifyCRC   bool
	SkipRecords bool   // decode only batch headers (no decompression)
	Topic       string // stamped into every decoded record
	Partition   int32  // stamped into every decoded record
}

// Reader walks the record batches in a byte slice, as a Fetch response
// partition or a log segment carries them. A batch cut short at the end of
// the input (brokers send partial batches to fill fetch.max.bytes) ends the
// walk without an error; Truncated reports it.
type Reader struct {
	src       []byte
	opts      ReadOptions
	err       error
	truncated bool
}

// NewReader returns a Reader over src. src is not copied.
func NewReader(src []byte, opts ReadOptions) *Reader {
	return &Reader{src: src, opts: opts}
}

// Err is the error that stopped Next, if any. A truncated final batch is not
// an error.
func (r *Reader) Err() error { return r.err }

// Truncated reports whether the input ended inside a batch.
func (r *Reader) Truncated() bool { return r.truncated }

// Next decodes the next batch into b, reusing b.Records' storage, and
// reports whether there was one.
func (r *Reader) Next(b *Batch) bool {
	if r.err != nil || len(r.src) == 0 {
		return false
	}
	if len(r.src) < batchLengthFieldSpan {
		r.truncated = true
		return false
	}
	length := int32(binary.BigEndian.Uint32(r.src[offLength:]))
	if length < HeaderLen-batchLengthFieldSpan {
		r.err = fmt.Errorf("%w: batch at offset %d: length %d below header size",
			ErrCorrupt, int64(binary.BigEndian.Uint64(r.src)), length)
		return false
	}
	total := batchLengthFieldSpan + int(length)
	if len(r.src) < total {
		r.truncated = true
		return false
	}
	raw := r.src[:total:total]
	if magic := int8(raw[offMagic]); magic != 2 {
		r.err = fmt.Errorf("%w: batch at offset %d has magic %d",
			ErrUnsupportedMagic, int64(binary.BigEndian.Uint64(raw)), magic)
		return false
	}
	r.src = r.src[total:]
	if err := r.decode(raw, b); err != nil {
		r.err = err
		return false
	}
	return true
}

func (r *Reader) decode(raw []byte, b *Batch) error {
	h, err := readHeader(raw, r.opts.VerifyCRC)
	if err != nil {
		return err
	}
	*b = Batch{
		BaseOffset:           h.FirstOffset,
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		Attributes:           Attributes(h.Attributes),
		LastOffsetDelta:      h.LastOffsetDelta,
		FirstTimestamp:       h.FirstTimestamp,
		MaxTimestamp:         h.MaxTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		BaseSequence:         h.FirstSequence,
		NumRecords:           h.NumRecords,
		Records:              b.Records[:0],
		Raw:                  raw,
	}
	if r.opts.SkipRecords {
		return nil
	}
	d, err := newRecordDecoder(&h, r.opts)
	if err != nil {
		return err
	}
	b.Records = growRecords(b.Records, d.Len())
	return d.Decode(b.Records)
}

// readHeader decodes a batch's header, checking its CRC when verify is set.
func readHeader(raw []byte, verify bool) (kmsg.RecordBatch, error) {
	var h kmsg.RecordBatch
	if err := h.ReadFrom(raw); err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if verify {
		if got := crc32.Checksum(raw[offAttributes:], crcTable); got != uint32(h.CRC) {
			return h, fmt.Errorf("%w: batch at offset %d: crc %08x, computed %08x", ErrCorrupt, h.FirstOffset, uint32(h.CRC), got)
		}
	}
	return h, nil
}

// RecordDecoder decodes one batch's records a slice at a time, for a reader
// that keeps only some of a large batch's records in memory at once.
type RecordDecoder struct {
	data           []byte // the records not decoded yet (decompressed)
	left           int    // how many
	next           int    // index in the batch of the next record, for errors
	firstOffset    int64
	firstTimestamp int64
	maxTimestamp   int64
	leaderEpoch    int32
	tsType         kafkit.TimestampType
	opts           ReadOptions
}

// NewRecordDecoder returns a decoder of the records of raw, one whole batch
// (as Batch.Raw), decompressing them first. opts.SkipRecords is ignored.
func NewRecordDecoder(raw []byte, opts ReadOptions) (*RecordDecoder, error) {
	h, err := readHeader(raw, opts.VerifyCRC)
	if err != nil {
		return nil, err
	}
	return newRecordDecoder(&h, opts)
}

// Reset makes d a decoder of raw as NewRecordDecoder does, in d's own
// memory: a consumer reading records as they arrive decodes a batch of a
// record or two per Fetch, and can keep the decoder with its other state.
func (d *RecordDecoder) Reset(raw []byte, opts ReadOptions) error {
	h, err := readHeader(raw, opts.VerifyCRC)
	if err != nil {
		return err
	}
	return d.init(&h, opts)
}

func newRecordDecoder(h *kmsg.RecordBatch, opts ReadOptions) (*RecordDecoder, error) {
	d := new(RecordDecoder)
	if err := d.init(h, opts); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *RecordDecoder) init(h *kmsg.RecordBatch, opts ReadOptions) error {
	codec := Attributes(h.Attributes).Codec()
	if codec > Zstd {
		return fmt.Errorf("%w: batch at offset %d: %d", ErrUnknownCodec, h.FirstOffset, codec)
	}
	data, err := Decompress(codec, h.Records)
	if err != nil {
		return fmt.Errorf("%w: batch at offset %d: %s: %v", ErrCorrupt, h.FirstOffset, codec, err)
	}
	if h.NumRecords < 0 || int(h.NumRecords) > len(data) { // every record takes at least one byte
		return fmt.Errorf("%w: batch at offset %d: %d records in %d bytes", ErrCorrupt, h.FirstOffset, h.NumRecords, len(data))
	}
	*d = RecordDecoder{
		data: data, left: int(h.NumRecords),
		firstOffset: h.FirstOffset, firstTimestamp: h.FirstTimestamp, maxTimestamp: h.MaxTimestamp,
		leaderEpoch: h.PartitionLeaderEpoch, tsType: Attributes(h.Attributes).TimestampType(), opts: opts,
	}
	return nil
}

// Len is how many records are left to decode.
func (d *RecordDecoder) Len() int { return d.left }

// Decode decodes the next len(dst) records into dst; len(dst) must not
// exceed Len. Keys, values and header values alias the batch (or its
// decompressed copy).
func (d *RecordDecoder) Decode(dst []kafkit.Record) error {
	if len(dst) > d.left {
		return fmt.Errorf("recordbatch: %d records asked of %d left", len(dst), d.left)
	}
	records := recordReader{src: d.data}
	for i := range dst {
		l := records.varint()
		if records.bad || l < 0 || int(l) > len(records.src)-records.pos {
			return fmt.Errorf("%w: batch at offset %d: record %d: bad length", ErrCorrupt, d.firstOffset, d.next+i)
		}
		// Read in place rather than through kmsg.Record: a consumer
		// spends more here than anywhere else per record.
		r := recordReader{src: records.src[records.pos : records.pos+int(l)]}
		records.pos += int(l)
		r.pos = min(1, len(r.src)) // attributes: unused in v2 records
		tsDelta := r.varlong()
		offsetDelta := r.varint()
		key := r.bytes()
		value := r.bytes()
		headers := r.varint()
		if r.bad || int(headers) > (len(r.src)-r.pos)/2 { // a header takes two bytes at least
			return fmt.Errorf("%w: batch at offset %d: record %d: truncated", ErrCorrupt, d.firstOffset, d.next+i)
		}
		ts := d.firstTimestamp + tsDelta
		if d.tsType == kafkit.LogAppendTime {
			ts = d.maxTimestamp
		}
		// Field by field, every one of them (dst may be reused
		// storage): assigning a whole Record copies it through a
		// temporary, with a bulk write barrier while the GC marks.
		rec := &dst[i]
		rec.Topic = d.opts.Topic
		rec.Partition = d.opts.Partition
		rec.Offset = d.firstOffset + int64(offsetDelta)
		rec.Key = key
		rec.Value = value
		rec.Headers = nil
		rec.Timestamp = time.UnixMilli(ts)
		rec.TimestampType = d.tsType
		rec.LeaderEpoch = d.leaderEpoch
		if headers > 0 {
			// Fresh headers per record: callers copy Records out of
			// the reused Batch, so a shared backing array would be
			// overwritten by the next batch's decode.
			rec.Headers = make([]kafkit.Header, headers)
			for j := range rec.Headers {
				k := r.bytes()
				rec.Headers[j] = kafkit.Header{Key: string(k), Value: r.bytes()}
			}
			if r.bad {
				return fmt.Errorf("%w: batch at offset %d: record %d: truncated header", ErrCorrupt, d.firstOffset, d.next+i)
			}
		}
	}
	d.data, d.left, d.next = records.src[records.pos:], d.left-len(dst), d.next+len(dst)
	return nil
}

// growRecords returns recs resized to n, reusing its backing array.
func growRecords(recs []kafkit.Record, n int) []kafkit.Record {
	if cap(recs) < n {
		recs = append(recs[:cap(recs)], make([]kafkit.Record, n-cap(recs))...)
	}
	return recs[:n]
}

// ReadRecords decodes every complete batch in src and appends its records to
// dst, skipping control batches. It is the shortcut for callers that need no
// batch-level information.
func ReadRecords(dst []kafkit.Record, src []byte, opts ReadOptions) ([]kafkit.Record, error) {
	r := NewReader(src, opts)
	var b Batch
	for r.Next(&b) {
		if !b.Attributes.Control() {
			dst = append(dst, b.Records...)
		}
		b.Records = nil // dst now holds them; do not reuse their headers
	}
	return dst, r.Err()
}

// recordReader reads a record's fields (Kafka's v2 record) from src; a
// field running past its end sets bad. Its one-byte varints, most of a
// record's (lengths, deltas, counts), are read inline: the call per field
// was a third of a consumer's decoding time.
type recordReader struct {
	src []byte
	pos int
	bad bool
}

func (r *recordReader) varint() int32 {
	u, ok := r.short()
	if !ok {
		return int32(r.long(false))
	}
	return int32(u>>1) ^ -int32(u&1)
}

func (r *recordReader) varlong() int64 {
	u, ok := r.short()
	if !ok {
		return r.long(true)
	}
	return int64(u>>1) ^ -int64(u&1)
}

// short reads a varint of one or two bytes, those of nearly every length,
// delta and count in a record, without kbin's loop; ok is false (and
// nothing is read) for a longer one or at the end of src.
func (r *recordReader) short() (uint32, bool) {
	src := r.src[r.pos:]
	switch {
	case len(src) > 0 && src[0] < 0x80:
		r.pos++
		return uint32(src[0]), true
	case len(src) > 1 && src[1] < 0x80:
		r.pos += 2
		return uint32(src[0]&0x7f) | uint32(src[1])<<7, true
	}
	return 0, false
}

// long reads a varint of more than two bytes, of at most 32 bits (wide: 64).
func (r *recordReader) long(wide bool) int64 {
	var v int64
	var n int
	if wide {
		v, n = kbin.Varlong(r.src[r.pos:])
	} else {
		var v32 int32
		v32, n = kbin.Varint(r.src[r.pos:])
		v = int64(v32)
	}
	if n <= 0 {
		r.pos, r.bad = len(r.src), true
		return 0
	}
	r.pos += n
	return v
}

// bytes reads a length-prefixed field: nil for a null one (length -1),
// aliasing src otherwise.
func (r *recordReader) bytes() []byte {
	l := r.varint()
	switch {
	case l < 0:
		return nil
	case int(l) > len(r.src)-r.pos:
		r.pos, r.bad = len(r.src), true
		return nil
	}
	v := r.src[r.pos : r.pos+int(l) : r.pos+int(l)]
	r.pos += int(l)
	return v
}
