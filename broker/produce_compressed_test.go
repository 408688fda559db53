package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// compressedBatch encodes n records of value (offset deltas 0, 1, ...),
// compresses them with codec, hands the compressed bytes to mangle (if not
// nil) and frames them as a batch claiming claimed records, with a correct
// CRC: a client's batch as the broker sees it.
func compressedBatch(t *testing.T, codec recordbatch.Codec, n, claimed int, value []byte, mangle func([]byte) []byte) []byte {
	t.Helper()
	var recs []byte
	for i := range n {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Value: value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	compressed, err := recordbatch.Compress(codec, nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	if mangle != nil {
		compressed = mangle(compressed)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec), LastOffsetDelta: int32(claimed - 1),
		FirstTimestamp: now, MaxTimestamp: now + int64(n-1), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(claimed), Records: compressed}
	b.Length = int32(49 + len(compressed))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// Issue 20: the broker validates a compressed produced batch as it
// decompresses it, and answers as Kafka's LogValidator does over TCP: a
// stream that does not decompress is CORRUPT_MESSAGE (here gzip's CRC-32
// of the records, in its trailer, which Kafka's GZIPInputStream checks), a
// batch whose records are not those its header claims is INVALID_RECORD,
// and nothing of a refused batch is stored: a consumer reads back the
// valid batches alone, each after refused ones of its codec (whose
// decoders were left halfway).
func TestProduceValidatesCompressedBatches(t *testing.T) {
	b := broker.NewTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic = "compressed-produce"
	id := createTopic(ctx, t, cl, topic, 1)
	value := bytes.Repeat([]byte("0123456789"), 30)
	produce := func(records []byte) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	stored := 0
	for _, codec := range []recordbatch.Codec{recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		for _, tc := range []struct {
			name string
			b    []byte
			want *kerr.Error
		}{
			{"fewer records than claimed", compressedBatch(t, codec, 999, 1000, value, nil), kerr.InvalidRecord},
			{"more records than claimed", compressedBatch(t, codec, 1000, 999, value, nil), kerr.InvalidRecord},
			{"records cut short", compressedBatch(t, codec, 1000, 1000, value, func(c []byte) []byte {
				plain, err := recordbatch.Decompress(codec, c)
				if err != nil {
					t.Fatal(err)
				}
				c, err = recordbatch.Compress(codec, nil, plain[:len(plain)-100])
				if err != nil {
					t.Fatal(err)
				}
				return c
			}), kerr.InvalidRecord},
			{"not the codec's stream", compressedBatch(t, codec, 1000, 1000, value, func([]byte) []byte { return bytes.Repeat([]byte{0xa5}, 200) }), kerr.CorruptMessage},
			{"valid", compressedBatch(t, codec, 1000, 1000, value, nil), nil},
		} {
			code := produce(tc.b)
			if want := int16(0); tc.want != nil {
				want = tc.want.Code
				if code != want {
					t.Errorf("%s, %s: error %v, want %v", codec, tc.name, kerr.ErrorForCode(code), tc.want)
				}
			} else if code != want {
				t.Errorf("%s, %s: error %v", codec, tc.name, kerr.ErrorForCode(code))
			} else {
				stored += 1000
			}
		}
	}
	badTrailer := compressedBatch(t, recordbatch.Gzip, 1000, 1000, value, func(c []byte) []byte { c[len(c)-8] ^= 1; return c })
	if code := produce(badTrailer); code != kerr.CorruptMessage.Code {
		t.Errorf("gzip with a wrong CRC-32 of its records: error %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(code))
	}

	// Only the valid batches were stored, and they read back.
	rd, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := 0
	for got < stored {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d of %d records: %v", got, stored, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(got) || !bytes.Equal(r.Value, value) {
				t.Fatalf("record at %d: offset %d, value %q", got, r.Offset, r.Value)
			}
			got++
		})
	}
}
