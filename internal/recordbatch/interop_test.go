package recordbatch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// These tests check that we read what franz-go and sarama write and that
// they read what we write, through kfake, an independent broker.

const interopRecords = 50

func interopRecord(codec Codec, i int) kafkit.Record {
	return kafkit.Record{
		Key:       fmt.Appendf(nil, "key-%d", i),
		Value:     fmt.Appendf(nil, "value-%s-%d-%0100d", codec, i, i),
		Headers:   []kafkit.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}},
		Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
	}
}

func newInteropCluster(t *testing.T) []string {
	t.Helper()
	topics := make([]string, len(allCodecs))
	for i, c := range allCodecs {
		topics[i] = c.String()
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newKgo(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	return resp.Topics[0].TopicID
}

// fetchRaw returns the stored batches of partition 0 of topic, as a Fetch
// response carries them.
func fetchRaw(t *testing.T, cl *kgo.Client, topic string) []byte {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 50 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, topicID(t, cl, topic)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 50 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch error code %d", p.ErrorCode)
	}
	return p.RecordBatches
}

func checkRead(t *testing.T, codec Codec, raw []byte) {
	t.Helper()
	got, err := ReadRecords(nil, raw, ReadOptions{VerifyCRC: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != interopRecords {
		t.Fatalf("read %d records, want %d", len(got), interopRecords)
	}
	for i, r := range got {
		sameRecord(t, i, r, interopRecord(codec, i), int64(i))
	}
	var b Batch
	if r := NewReader(raw, ReadOptions{}); !r.Next(&b) || b.Attributes.Codec() != codec {
		t.Errorf("first batch codec %s, want %s", b.Attributes.Codec(), codec)
	}
}

func TestInteropKgoWritesWeRead(t *testing.T) {
	addrs := newInteropCluster(t)
	kgoCodecs := map[Codec]kgo.CompressionCodec{
		None: kgo.NoCompression(), Gzip: kgo.GzipCompression(), Snappy: kgo.SnappyCompression(),
		LZ4: kgo.Lz4Compression(), Zstd: kgo.ZstdCompression(),
	}
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			cl := newKgo(t, addrs, kgo.ProducerBatchCompression(kgoCodecs[codec]), kgo.ProducerLinger(50*time.Millisecond))
			var recs []*kgo.Record
			for i := range interopRecords {
				r := interopRecord(codec, i)
				recs = append(recs, &kgo.Record{Topic: codec.String(), Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
					Headers: []kgo.RecordHeader{{Key: r.Headers[0].Key, Value: r.Headers[0].Value}}})
			}
			if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			checkRead(t, codec, fetchRaw(t, cl, codec.String()))
		})
	}
}

func TestInteropWeWriteKgoReads(t *testing.T) {
	addrs := newInteropCluster(t)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			cl := newKgo(t, addrs, kgo.ConsumeTopics(codec.String()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			// Two batches, so the second's base sequence matters too.
			for half := range 2 {
				bl := NewBuilder(Options{Compression: codec}, 16384)
				for i := half * interopRecords / 2; i < (half+1)*interopRecords/2; i++ {
					r := interopRecord(codec, i)
					bl.Append(r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
				}
				raw, err := bl.Finish(NoProducer())
				if err != nil {
					t.Fatal(err)
				}
				produceRaw(t, cl, codec.String(), raw)
			}
			var got []*kgo.Record
			ctx := testCtx(t)
			for len(got) < interopRecords {
				fs := cl.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatal(err)
				}
				got = append(got, fs.Records()...)
			}
			for i, r := range got {
				want := interopRecord(codec, i)
				if r.Offset != int64(i) || string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) ||
					!r.Timestamp.Equal(want.Timestamp) || len(r.Headers) != 1 || string(r.Headers[0].Value) != string(want.Headers[0].Value) {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
		})
	}
}

func produceRaw(t *testing.T, cl *kgo.Client, topic string, batch []byte) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = topic, topicID(t, cl, topic)
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch
	pt.Partitions = append(pt.Partitions, pp)
	req.Topics = append(req.Topics, pt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce error code %d", code)
	}
}

var saramaCodecs = map[Codec]sarama.CompressionCodec{
	None: sarama.CompressionNone, Gzip: sarama.CompressionGZIP, Snappy: sarama.CompressionSnappy,
	LZ4: sarama.CompressionLZ4, Zstd: sarama.CompressionZSTD,
}

func saramaConfig(codec Codec) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = saramaCodecs[codec]
	cfg.Producer.Flush.Messages = interopRecords // one batch
	cfg.Producer.Flush.Frequency = time.Second
	cfg.Metadata.Retry.Backoff = 10 * time.Millisecond
	return cfg
}

func TestInteropSaramaWritesWeRead(t *testing.T) {
	addrs := newInteropCluster(t)
	kcl := newKgo(t, addrs)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			p, err := sarama.NewSyncProducer(addrs, saramaConfig(codec))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var msgs []*sarama.ProducerMessage
			for i := range interopRecords {
				r := interopRecord(codec, i)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: codec.String(), Partition: 0, Key: sarama.ByteEncoder(r.Key),
					Value: sarama.ByteEncoder(r.Value), Timestamp: r.Timestamp,
					Headers: []sarama.RecordHeader{{Key: []byte(r.Headers[0].Key), Value: r.Headers[0].Value}}})
			}
			if err := p.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			checkRead(t, codec, fetchRaw(t, kcl, codec.String()))
		})
	}
}

func TestInteropWeWriteSaramaReads(t *testing.T) {
	addrs := newInteropCluster(t)
	kcl := newKgo(t, addrs)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			bl := NewBuilder(Options{Compression: codec}, 16384)
			for i := range interopRecords {
				r := interopRecord(codec, i)
				bl.Append(r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
			}
			raw, err := bl.Finish(NoProducer())
			if err != nil {
				t.Fatal(err)
			}
			produceRaw(t, kcl, codec.String(), raw)

			c, err := sarama.NewConsumer(addrs, saramaConfig(codec))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pc, err := c.ConsumePartition(codec.String(), 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			timeout := time.After(20 * time.Second)
			for i := range interopRecords {
				select {
				case m := <-pc.Messages():
					want := interopRecord(codec, i)
					if m.Offset != int64(i) || string(m.Key) != string(want.Key) || string(m.Value) != string(want.Value) ||
						!m.Timestamp.Equal(want.Timestamp) || len(m.Headers) != 1 || string(m.Headers[0].Value) != string(want.Headers[0].Value) {
						t.Fatalf("record %d: %+v", i, m)
					}
				case err := <-pc.Errors():
					t.Fatal(err)
				case <-timeout:
					t.Fatalf("timed out after %d records", i)
				}
			}
		})
	}
}
