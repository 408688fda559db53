package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/producer"
)

// Issue 20: every codec between our producer and consumer and franz-go's
// and sarama's, through our broker, as applications use them: our
// producer's batches (compressed when sealed, restamped with producer id
// and sequence when sent, several per partition) are read by kgo and
// sarama, and both clients' batches by our consumer. kcat is checked the
// same way in codec_kcat_test.go; the batch format alone, against kfake, in
// internal/recordbatch/interop_test.go.

const codecInteropRecords = 2000

type codecRecord struct{ key, value, header string }

// codecInteropRecord is record i: values repeat enough that every codec
// shrinks them, so the stored batches really carry the codec.
func codecInteropRecord(codec string, i int) codecRecord {
	return codecRecord{key: "k" + strconv.Itoa(i), value: fmt.Sprintf("%s %d %0120d", codec, i, i%7), header: strconv.Itoa(i)}
}

func checkCodecRecord(t *testing.T, codec string, i int, offset int64, key, value []byte, headerKey string, header []byte) {
	t.Helper()
	want := codecInteropRecord(codec, i)
	if offset != int64(i) || string(key) != want.key || string(value) != want.value || headerKey != "i" || string(header) != want.header {
		t.Fatalf("record %d: offset %d key %q value %q header %s=%q", i, offset, key, value, headerKey, header)
	}
}

var interopCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func TestCodecsThirdPartyReadOurProducer(t *testing.T) {
	b := broker.NewTest(t, broker.OnDisk())
	for _, codec := range interopCodecs {
		t.Run(codec, func(t *testing.T) {
			topic := "ours-" + codec
			createTopic(t, b.Addr(), topic, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// batch.size's default 16 KiB: about twenty batches, each
			// sequence after the first restamped into a compressed batch.
			produceOurs(t, ctx, b.Addr(), codec, codecInteropRecords, func(i int) *kafkit.Record {
				r := codecInteropRecord(codec, i)
				return &kafkit.Record{Topic: topic, Partition: 0, Key: []byte(r.key), Value: []byte(r.value),
					Headers: []kafkit.Header{{Key: "i", Value: []byte(r.header)}}}
			})
			want, _ := recordbatch.ParseCodec(codec)
			if got := storedCodecs(t, b.Addr(), topic); len(got) != 1 || got[want] < 2 {
				t.Fatalf("stored batches by codec: %v, want several, all %s", got, want)
			}

			t.Run("kgo", func(t *testing.T) {
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				for got := 0; got < codecInteropRecords; {
					fs := cl.PollFetches(ctx)
					if err := fs.Err(); err != nil {
						t.Fatalf("after %d records: %v", got, err)
					}
					for _, r := range fs.Records() {
						if len(r.Headers) != 1 {
							t.Fatalf("record %d: headers %v", got, r.Headers)
						}
						checkCodecRecord(t, codec, got, r.Offset, r.Key, r.Value, r.Headers[0].Key, r.Headers[0].Value)
						got++
					}
				}
			})
			t.Run("sarama", func(t *testing.T) {
				c, err := sarama.NewConsumer([]string{b.Addr()}, saramaConfig())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				for i := range codecInteropRecords {
					select {
					case m := <-pc.Messages():
						if len(m.Headers) != 1 {
							t.Fatalf("record %d: %d headers", i, len(m.Headers))
						}
						checkCodecRecord(t, codec, i, m.Offset, m.Key, m.Value, string(m.Headers[0].Key), m.Headers[0].Value)
					case err := <-pc.Errors():
						t.Fatal(err)
					case <-ctx.Done():
						t.Fatalf("timed out after %d records", i)
					}
				}
			})
		})
	}
}

func TestCodecsWeReadThirdPartyProducers(t *testing.T) {
	b := broker.NewTest(t, broker.OnDisk())
	kgoCodecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	saramaCodecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}
	produce := map[string]func(t *testing.T, ctx context.Context, topic, codec string){
		"kgo": func(t *testing.T, ctx context.Context, topic, codec string) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(kgoCodecs[codec]), kgo.ProducerBatchMaxBytes(16<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var recs []*kgo.Record
			for i := range codecInteropRecords {
				r := codecInteropRecord(codec, i)
				recs = append(recs, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value),
					Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(r.header)}}})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		},
		"sarama": func(t *testing.T, _ context.Context, topic, codec string) {
			cfg := saramaConfig()
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Compression = saramaCodecs[codec]
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var msgs []*sarama.ProducerMessage
			for i := range codecInteropRecords {
				r := codecInteropRecord(codec, i)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value),
					Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(r.header)}}})
			}
			if err := p.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, client := range []string{"kgo", "sarama"} {
		for _, codec := range interopCodecs {
			t.Run(client+"/"+codec, func(t *testing.T) {
				topic := client + "-" + codec
				createTopic(t, b.Addr(), topic, 1)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				produce[client](t, ctx, topic, codec)
				want, _ := recordbatch.ParseCodec(codec)
				if got := storedCodecs(t, b.Addr(), topic); len(got) != 1 || got[want] == 0 {
					t.Fatalf("stored batches by codec: %v, want only %s", got, want)
				}

				readPartitionZero(t, ctx, b.Addr(), topic, codecInteropRecords, func(i int, r *kafkit.Record) {
					if len(r.Headers) != 1 {
						t.Fatalf("record %d: headers %v", i, r.Headers)
					}
					checkCodecRecord(t, codec, i, r.Offset, r.Key, r.Value, r.Headers[0].Key, r.Headers[0].Value)
				})
			})
		}
	}
}

// readPartitionZero reads n records of topic's partition 0 from its start
// with our consumer, handing record i to check.
func readPartitionZero(t *testing.T, ctx context.Context, addr, topic string, n int, check func(i int, r *kafkit.Record)) {
	t.Helper()
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	tp := kafkit.TopicPartition{Topic: topic, Partition: 0}
	if err := c.Assign(tp); err != nil {
		t.Fatal(err)
	}
	if err := c.SeekToBeginning(ctx, tp); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", got, err)
		}
		for _, r := range recs {
			check(got, r)
			got++
		}
	}
}

// produceOurs sends record(0..n-1) with our producer compressing with
// codec, and waits until all are acknowledged.
func produceOurs(t *testing.T, ctx context.Context, addr, codec string, n int, record func(i int) *kafkit.Record) {
	t.Helper()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, CompressionType: codec, Linger: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := p.Send(ctx, record(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
