package recordbatch

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

var allCodecs = []Codec{None, Gzip, Snappy, LZ4, Zstd}

// testRecords returns records covering null/empty keys and values, headers
// (duplicate keys, empty and null values), out-of-order timestamps and, when
// big, values large enough to span several snappy/lz4 blocks.
func testRecords(big bool) []kafkit.Record {
	base := time.UnixMilli(1_700_000_000_000)
	recs := []kafkit.Record{
		{Key: []byte("k1"), Value: []byte("v1"), Timestamp: base},
		{Key: nil, Value: []byte("null key"), Timestamp: base.Add(5 * time.Millisecond)},
		{Key: []byte{}, Value: []byte{}, Timestamp: base.Add(-3 * time.Millisecond)},
		{Key: []byte("tombstone"), Value: nil, Timestamp: base.Add(time.Hour)},
		{Key: []byte("h"), Value: []byte("with headers"), Timestamp: base, Headers: []kafkit.Header{
			{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}, {Key: "", Value: []byte{}}, {Key: "nil", Value: nil},
		}},
	}
	if big {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 20 {
			v := make([]byte, 10_000+i*997)
			for j := range v {
				v[j] = byte('a' + rng.IntN(6)) // compressible but not trivially
			}
			recs = append(recs, kafkit.Record{Key: fmt.Appendf(nil, "big-%d", i), Value: v, Timestamp: base.Add(time.Duration(i) * time.Millisecond)})
		}
	}
	return recs
}

func buildBatch(t testing.TB, opts Options, p Producer, recs []kafkit.Record) []byte {
	t.Helper()
	b := NewBuilder(opts, 16384)
	var sz Sizer // counts what b writes, as a producer sizes batches
	if b.Len() != sz.Len() {
		t.Fatalf("empty batch: Len %d, Sizer says %d", b.Len(), sz.Len())
	}
	for _, r := range recs {
		ts := r.Timestamp.UnixMilli()
		payload := PayloadLen(r.Key, r.Value, r.Headers)
		size := sz.RecordSize(ts, payload)
		if sz.TryAdd(math.MaxInt, ts, payload) != size {
			t.Fatal("Sizer refused a record below its limit, or counted other than RecordSize")
		}
		if got := b.Append(ts, r.Key, r.Value, r.Headers); got != size {
			t.Fatalf("Append took %d bytes, RecordSize said %d", got, size)
		}
		if b.Len() != sz.Len() {
			t.Fatalf("Len %d, Sizer says %d", b.Len(), sz.Len())
		}
	}
	out, err := b.Finish(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameRecord(t testing.TB, i int, got, want kafkit.Record, offset int64) {
	t.Helper()
	if got.Offset != offset {
		t.Errorf("record %d: offset %d, want %d", i, got.Offset, offset)
	}
	if !sameBytes(got.Key, want.Key) || !sameBytes(got.Value, want.Value) {
		t.Errorf("record %d: key/value %q/%.20q, want %q/%.20q", i, got.Key, got.Value, want.Key, want.Value)
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("record %d: timestamp %v, want %v", i, got.Timestamp, want.Timestamp)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("record %d: %d headers, want %d", i, len(got.Headers), len(want.Headers))
	}
	for j := range want.Headers {
		if got.Headers[j].Key != want.Headers[j].Key || !sameBytes(got.Headers[j].Value, want.Headers[j].Value) {
			t.Errorf("record %d header %d: %+v, want %+v", i, j, got.Headers[j], want.Headers[j])
		}
	}
}

// sameBytes distinguishes nil (null) from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestRoundTrip(t *testing.T) {
	for _, codec := range allCodecs {
		for _, big := range []bool{false, true} {
			for _, opts := range []Options{{Compression: codec}, {Compression: codec, Transactional: true}} {
				t.Run(fmt.Sprintf("%s/big=%v/txn=%v", codec, big, opts.Transactional), func(t *testing.T) {
					recs := testRecords(big)
					p := Producer{ID: 77, Epoch: 3, BaseSequence: 1000}
					raw := buildBatch(t, opts, p, recs)

					// kmsg decodes the header the same way.
					var kb kmsg.RecordBatch
					if err := kb.ReadFrom(raw); err != nil {
						t.Fatal(err)
					}
					if kb.Magic != 2 || kb.NumRecords != int32(len(recs)) || kb.LastOffsetDelta != int32(len(recs)-1) ||
						int(kb.Length) != len(raw)-12 || kb.PartitionLeaderEpoch != -1 {
						t.Fatalf("header %+v", kb)
					}

					r := NewReader(raw, ReadOptions{VerifyCRC: true, Topic: "t", Partition: 4})
					var b Batch
					if !r.Next(&b) {
						t.Fatalf("no batch: %v", r.Err())
					}
					if b.ProducerID != 77 || b.ProducerEpoch != 3 || b.BaseSequence != 1000 ||
						b.Attributes.Codec() != codec || b.Attributes.Transactional() != opts.Transactional || b.Attributes.Control() {
						t.Fatalf("batch fields %+v", b)
					}
					minTS, maxTS := recs[0].Timestamp, recs[0].Timestamp
					for _, r := range recs {
						if r.Timestamp.After(maxTS) {
							maxTS = r.Timestamp
						}
						if r.Timestamp.Before(minTS) {
							minTS = r.Timestamp
						}
					}
					if b.FirstTimestamp != recs[0].Timestamp.UnixMilli() || b.MaxTimestamp != maxTS.UnixMilli() {
						t.Errorf("timestamps first %d max %d", b.FirstTimestamp, b.MaxTimestamp)
					}
					if len(b.Records) != len(recs) {
						t.Fatalf("%d records, want %d", len(b.Records), len(recs))
					}
					for i := range recs {
						sameRecord(t, i, b.Records[i], recs[i], int64(i))
						if b.Records[i].Topic != "t" || b.Records[i].Partition != 4 || b.Records[i].TimestampType != kafkit.CreateTime {
							t.Errorf("record %d: %s/%d type %d", i, b.Records[i].Topic, b.Records[i].Partition, b.Records[i].TimestampType)
						}
					}
					if b.NextOffset() != int64(len(recs)) {
						t.Errorf("NextOffset %d", b.NextOffset())
					}
					if r.Next(&b) || r.Err() != nil || r.Truncated() {
						t.Fatalf("extra batch or error: %v", r.Err())
					}
				})
			}
		}
	}
}

// The Builder writes each record's fields itself (appendBody); they must be
// byte for byte what kmsg.Record.AppendTo writes, for every shape of record:
// null and empty keys and values, headers with null values, timestamps
// before the first record's, multi-byte varints.
func TestBuilderRecordsAreKmsgRecords(t *testing.T) {
	recs := testRecords(true)
	raw := buildBatch(t, Options{}, NoProducer(), recs)
	var want []byte
	firstTS := recs[0].Timestamp.UnixMilli()
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.Timestamp.UnixMilli() - firstTS,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // a Length of 0 takes one byte: the rest is the body
		want = kr.AppendTo(want)
	}
	if got := raw[HeaderLen:]; !bytes.Equal(got, want) {
		t.Fatalf("records differ from kmsg's encoding:\n got %x\nwant %x", got[:min(len(got), 200)], want[:min(len(want), 200)])
	}
}

func TestSizerTryAdd(t *testing.T) {
	var s Sizer
	big := make([]byte, 500)
	if s.TryAdd(100, 1, PayloadLen(nil, big, nil)) == 0 {
		t.Fatal("first record refused")
	}
	if s.TryAdd(700, 1, PayloadLen(nil, big, nil)) != 0 {
		t.Fatal("record beyond the limit counted in")
	}
	before := s.Len()
	small := PayloadLen(nil, big[:10], nil)
	size := s.RecordSize(1, small)
	if s.TryAdd(before+size, 1, small) != size || s.Len() != before+size {
		t.Fatalf("exact fit: len %d, want %d", s.Len(), before+size)
	}
}

func TestReaderSeveralBatchesTruncatedTail(t *testing.T) {
	recs := testRecords(false)
	var all []byte
	for i := range 3 {
		raw := buildBatch(t, Options{Compression: allCodecs[i]}, NoProducer(), recs)
		SetBaseOffset(raw, int64(i*len(recs)))
		SetPartitionLeaderEpoch(raw, 9)
		all = append(all, raw...)
	}
	whole := len(all)
	last := whole - len(buildBatch(t, Options{Compression: allCodecs[2]}, NoProducer(), recs))
	for _, cut := range []int{whole, whole - 1, last + 61, last + 12, last + 11, last + 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			r := NewReader(all[:cut], ReadOptions{VerifyCRC: true})
			var b Batch
			n := 0
			for r.Next(&b) {
				for i, rec := range b.Records {
					sameRecord(t, i, rec, recs[i], int64(n*len(recs)+i))
					if rec.LeaderEpoch != 9 {
						t.Errorf("leader epoch %d", rec.LeaderEpoch)
					}
				}
				n++
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			wantN, wantTrunc := 2, true
			if cut == whole {
				wantN, wantTrunc = 3, false
			}
			if n != wantN || r.Truncated() != wantTrunc {
				t.Fatalf("read %d batches truncated=%v, want %d %v", n, r.Truncated(), wantN, wantTrunc)
			}
		})
	}
}

func TestReaderCRCMismatch(t *testing.T) {
	raw := buildBatch(t, Options{}, NoProducer(), testRecords(false))
	raw[bytes.Index(raw, []byte("null key"))] ^= 0xff
	var b Batch
	r := NewReader(raw, ReadOptions{VerifyCRC: true})
	if r.Next(&b) || !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", r.Err())
	}
	// Without verification the (value-only) damage goes unnoticed.
	if !NewReader(raw, ReadOptions{}).Next(&b) {
		t.Fatal("unverified read failed")
	}
}

func TestReaderRejectsOldMagic(t *testing.T) {
	raw := buildBatch(t, Options{}, NoProducer(), testRecords(false))
	raw[offMagic] = 1
	var b Batch
	r := NewReader(raw, ReadOptions{})
	if r.Next(&b) || !errors.Is(r.Err(), ErrUnsupportedMagic) {
		t.Fatalf("want ErrUnsupportedMagic, got %v", r.Err())
	}
}

func TestRestamp(t *testing.T) {
	raw := buildBatch(t, Options{Compression: Zstd}, Producer{ID: 1, Epoch: 0, BaseSequence: 5}, testRecords(false))
	Restamp(raw, Producer{ID: 42, Epoch: 7, BaseSequence: 99})
	var b Batch
	r := NewReader(raw, ReadOptions{VerifyCRC: true})
	if !r.Next(&b) {
		t.Fatal(r.Err())
	}
	if b.ProducerID != 42 || b.ProducerEpoch != 7 || b.BaseSequence != 99 {
		t.Fatalf("restamped %+v", b)
	}
}

// TestSnappyRawBlock reads a batch whose records are one raw snappy block
// (what kgo and sarama used to write), next to the xerial form we write.
func TestSnappyRawBlock(t *testing.T) {
	recs := testRecords(true)
	plain := buildBatch(t, Options{}, NoProducer(), recs)
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(plain); err != nil {
		t.Fatal(err)
	}
	kb.Records = snappy.Encode(nil, kb.Records)
	kb.Attributes = int16(Snappy)
	kb.Length = int32(HeaderLen - 12 + len(kb.Records))
	raw := kb.AppendTo(nil)
	putCRC(raw)
	var b Batch
	r := NewReader(raw, ReadOptions{VerifyCRC: true})
	if !r.Next(&b) {
		t.Fatal(r.Err())
	}
	for i := range recs {
		sameRecord(t, i, b.Records[i], recs[i], int64(i))
	}
}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		if got, err := ParseCodec(c.String()); err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseCodec("brotli"); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("brotli: %v", err)
	}
}

func TestReadRecordsSkipsControl(t *testing.T) {
	key := (&kmsg.ControlRecordKey{Version: 0, Type: kmsg.ControlRecordKeyTypeCommit}).AppendTo(nil)
	val := (&kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: 1}).AppendTo(nil)
	ctl := NewBuilder(Options{Control: true, Transactional: true}, 0)
	ctl.Append(1, key, val, nil)
	ctlRaw, err := ctl.Finish(Producer{ID: 5, Epoch: 0, BaseSequence: -1})
	if err != nil {
		t.Fatal(err)
	}
	data := append(buildBatch(t, Options{Transactional: true}, Producer{ID: 5}, testRecords(false)), ctlRaw...)
	got, err := ReadRecords(nil, data, ReadOptions{VerifyCRC: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testRecords(false)) {
		t.Fatalf("%d records, want %d", len(got), len(testRecords(false)))
	}
	var b Batch
	r := NewReader(data, ReadOptions{})
	r.Next(&b)
	if !r.Next(&b) || !b.Attributes.Control() {
		t.Fatal("control batch not read")
	}
	var k kmsg.ControlRecordKey
	if err := k.ReadFrom(b.Records[0].Key); err != nil || k.Type != kmsg.ControlRecordKeyTypeCommit {
		t.Fatalf("control key %+v %v", k, err)
	}
}

func FuzzReader(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(buildBatch(f, Options{Compression: c}, NoProducer(), testRecords(false)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, verify := range []bool{false, true} {
			r := NewReader(data, ReadOptions{VerifyCRC: verify})
			var b Batch
			for r.Next(&b) {
				if int(b.NumRecords) != len(b.Records) {
					t.Fatalf("NumRecords %d, decoded %d", b.NumRecords, len(b.Records))
				}
			}
		}
	})
}

func BenchmarkBuilderAppend(b *testing.B) {
	value := bytes.Repeat([]byte("x"), 100)
	key := []byte("key-0001")
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			bl := NewBuilder(Options{Compression: codec}, 16384)
			n := 0
			for i := 0; b.Loop(); i++ {
				if bl.Len() >= 16384 {
					if _, err := bl.Finish(NoProducer()); err != nil {
						b.Fatal(err)
					}
					bl = NewBuilder(Options{Compression: codec}, 16384)
				}
				bl.Append(int64(i), key, value, nil)
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkReader(b *testing.B) {
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			bl := NewBuilder(Options{Compression: codec}, 16384)
			value := bytes.Repeat([]byte("y"), 100)
			n := 0
			for bl.Len() < 16384 {
				bl.Append(int64(n), []byte("key"), value, nil)
				n++
			}
			raw, _ := bl.Finish(NoProducer())
			b.ReportAllocs()
			var batch Batch
			for b.Loop() {
				r := NewReader(raw, ReadOptions{VerifyCRC: true})
				for r.Next(&batch) {
				}
				if r.Err() != nil {
					b.Fatal(r.Err())
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestRecordsOutliveBatchReuse: callers copy records out of a Batch that the
// next Next reuses (the consumer does); their headers must not change when
// later batches are decoded.
func TestRecordsOutliveBatchReuse(t *testing.T) {
	var all []byte
	for i := range 2 {
		recs := []kafkit.Record{{Value: []byte("v"), Headers: []kafkit.Header{{Key: "batch", Value: []byte(fmt.Sprint(i))}}}}
		raw := buildBatch(t, Options{}, NoProducer(), recs)
		SetBaseOffset(raw, int64(i))
		all = append(all, raw...)
	}
	r := NewReader(all, ReadOptions{})
	var b Batch
	var kept []kafkit.Record
	for r.Next(&b) {
		kept = append(kept, b.Records...)
	}
	for i, rec := range kept {
		if got := string(rec.Headers[0].Value); got != fmt.Sprint(i) {
			t.Errorf("record %d: header %q after later batches were decoded, want %q", i, got, fmt.Sprint(i))
		}
	}
}

// BenchmarkRecordDecoder decodes a batch of 100-byte records with null keys
// (as the consumer benchmarks read them) a thousand at a time, as the
// consumer does: into fresh records ("fresh", the garbage collector's work
// included) or into the same ones ("reused": decoding alone).
func BenchmarkRecordDecoder(b *testing.B) {
	bl := NewBuilder(Options{}, 1<<20)
	value := bytes.Repeat([]byte("y"), 100)
	for n := 0; bl.Len() < 1<<20-200; n++ {
		bl.Append(int64(n), nil, value, nil)
	}
	raw, err := bl.Finish(NoProducer())
	if err != nil {
		b.Fatal(err)
	}
	for _, fresh := range []bool{true, false} {
		b.Run(map[bool]string{true: "fresh", false: "reused"}[fresh], func(b *testing.B) {
			b.ReportAllocs()
			var d RecordDecoder
			dst := make([]kafkit.Record, 1000)
			records := 0
			for b.Loop() {
				if d.Len() == 0 {
					if err := d.Reset(raw, ReadOptions{Topic: "t"}); err != nil {
						b.Fatal(err)
					}
				}
				if fresh {
					dst = make([]kafkit.Record, 1000)
				}
				n := min(len(dst), d.Len())
				if err := d.Decode(dst[:n]); err != nil {
					b.Fatal(err)
				}
				records += n
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
		})
	}
}

// TestDecodeVarintWidths: records whose lengths, timestamp and offset deltas
// and header counts take varints of every width (one and two bytes are read
// inline, longer ones by kbin) decode as kmsg decodes them.
func TestDecodeVarintWidths(t *testing.T) {
	sizes := []int{-1, 0, 1, 63, 64, 65, 8191, 8192, 8193, 1<<20 + 3}
	deltas := []int64{0, -1, 63, 64, -64, -65, 8191, 8192, -8193, 1 << 20, 1 << 35, -1 << 40}
	field := func(n int) []byte {
		if n < 0 {
			return nil
		}
		return bytes.Repeat([]byte{'x'}, n)
	}
	const base = 1_700_000_000_000
	b := NewBuilder(Options{}, 16<<20)
	for i := range 9000 { // offset deltas of three bytes from 8192 on
		k, v := sizes[i%len(sizes)], min(sizes[(i/len(sizes))%len(sizes)], 8193) // one 1 MiB field per ten records is enough
		if i >= 100 {
			k, v = min(k, 100), min(v, 100)
		}
		var hs []kafkit.Header
		for j := range i % 3 {
			hv := sizes[(i+j)%len(sizes)]
			if i >= 100 {
				hv = min(hv, 100)
			}
			hs = append(hs, kafkit.Header{Key: string(field(j * 70)), Value: field(hv)})
		}
		b.Append(base+deltas[i%len(deltas)], field(k), field(v), hs)
	}
	raw, err := b.Finish(NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	var h kmsg.RecordBatch
	if err := h.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	d, err := NewRecordDecoder(raw, ReadOptions{Topic: "t", Partition: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]kafkit.Record, d.Len())
	// Unevenly sized slices, as the consumer's chunks cut batches.
	for rest, n := got, 1; len(rest) > 0; n = n*3 + 1 {
		n = min(n, len(rest))
		if err := d.Decode(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	src := h.Records
	for i := range got {
		var want kmsg.Record
		l, n := kbin.Varint(src)
		if err := want.ReadFrom(src[:n+int(l)]); err != nil {
			t.Fatalf("record %d: kmsg: %v", i, err)
		}
		src = src[n+int(l):]
		rec := got[i]
		if rec.Offset != h.FirstOffset+int64(want.OffsetDelta) || rec.Timestamp.UnixMilli() != h.FirstTimestamp+want.TimestampDelta64 ||
			!bytes.Equal(rec.Key, want.Key) || (rec.Key == nil) != (want.Key == nil) ||
			!bytes.Equal(rec.Value, want.Value) || (rec.Value == nil) != (want.Value == nil) ||
			len(rec.Headers) != len(want.Headers) || rec.Topic != "t" || rec.Partition != 3 {
			t.Fatalf("record %d: decoded offset %d ts %d key %d value %d headers %d, kmsg has delta %d ts delta %d key %d value %d headers %d",
				i, rec.Offset, rec.Timestamp.UnixMilli(), len(rec.Key), len(rec.Value), len(rec.Headers),
				want.OffsetDelta, want.TimestampDelta64, len(want.Key), len(want.Value), len(want.Headers))
		}
		for j, wh := range want.Headers {
			if gh := rec.Headers[j]; gh.Key != wh.Key || !bytes.Equal(gh.Value, wh.Value) || (gh.Value == nil) != (wh.Value == nil) {
				t.Fatalf("record %d header %d: %q=%d bytes, kmsg %q=%d bytes", i, j, gh.Key, len(gh.Value), wh.Key, len(wh.Value))
			}
		}
	}
	if len(src) != 0 {
		t.Fatalf("%d bytes after the last record", len(src))
	}
}
