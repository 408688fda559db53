package integration

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkit/kafkit/broker"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	cfg.ClientID = "kafkit-integration"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.Retry.Backoff = 10 * time.Millisecond
	return cfg
}

// TestSaramaProduceConsumeCodecs is the broker core's end-to-end check
// through a third-party client: create a topic, produce keyed records with
// headers idempotently with acks=all in every codec, read everything back in
// order, list offsets, delete the topic.
func TestSaramaProduceConsumeCodecs(t *testing.T) {
	b := broker.NewTest(t, broker.OnDisk()) // on disk: fetches are sent with sendfile
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	const perCodec = 10_000
	const partitions = 3
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "codec-" + codec.String()
			cfg := saramaConfig()
			cfg.Producer.Compression = codec
			admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
				t.Fatal(err)
			}
			err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
			if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				t.Fatalf("creating twice: want TOPIC_ALREADY_EXISTS, got %v", err)
			}

			start := time.Now().Truncate(time.Millisecond)
			prod, err := sarama.NewAsyncProducer([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for i := 0; i < perCodec; i++ {
					prod.Input() <- &sarama.ProducerMessage{
						Topic:     topic,
						Key:       sarama.StringEncoder("key-" + strconv.Itoa(i%97)),
						Value:     sarama.StringEncoder(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i%50))),
						Headers:   []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))}},
						Timestamp: start.Add(time.Duration(i) * time.Millisecond),
					}
				}
			}()
			// sent[p] lists the sequence numbers acknowledged on partition p,
			// in offset order.
			sent := make(map[int32]map[int64]int)
			for i := 0; i < perCodec; i++ {
				select {
				case m := <-prod.Successes():
					seq, _ := strconv.Atoi(string(m.Headers[0].Value))
					if sent[m.Partition] == nil {
						sent[m.Partition] = map[int64]int{}
					}
					if _, dup := sent[m.Partition][m.Offset]; dup {
						t.Fatalf("offset %d of partition %d acknowledged twice", m.Offset, m.Partition)
					}
					sent[m.Partition][m.Offset] = seq
				case err := <-prod.Errors():
					t.Fatalf("produce: %v", err)
				case <-time.After(30 * time.Second):
					t.Fatalf("timed out after %d acks", i)
				}
			}
			if err := prod.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("produced %d records in %v", perCodec, time.Since(start))

			consumer, err := sarama.NewConsumer([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer consumer.Close()
			total := 0
			for p := int32(0); p < partitions; p++ {
				want := sent[p]
				pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				lastSeq := -1
				for off := int64(0); off < int64(len(want)); off++ {
					var m *sarama.ConsumerMessage
					select {
					case m = <-pc.Messages():
					case err := <-pc.Errors():
						t.Fatalf("consume p%d: %v", p, err)
					case <-time.After(30 * time.Second):
						t.Fatalf("p%d: timed out at offset %d of %d", p, off, len(want))
					}
					if m.Offset != off {
						t.Fatalf("p%d: got offset %d, want %d (offsets must be contiguous)", p, m.Offset, off)
					}
					seq, ok := want[off]
					if !ok {
						t.Fatalf("p%d: offset %d was never acknowledged", p, off)
					}
					if got, _ := strconv.Atoi(string(m.Headers[0].Value)); got != seq || string(m.Headers[0].Key) != "seq" {
						t.Fatalf("p%d offset %d: header seq %q, want %d", p, off, m.Headers[0].Value, seq)
					}
					if seq <= lastSeq {
						t.Fatalf("p%d: seq %d after %d: per-partition order broken", p, seq, lastSeq)
					}
					lastSeq = seq
					if string(m.Key) != "key-"+strconv.Itoa(seq%97) {
						t.Fatalf("p%d offset %d: key %q", p, off, m.Key)
					}
					if !bytes.HasPrefix(m.Value, []byte(fmt.Sprintf("value-%d-", seq))) || len(m.Value) != len(fmt.Sprintf("value-%d-", seq))+seq%50 {
						t.Fatalf("p%d offset %d: value %q", p, off, m.Value)
					}
					if wantTS := start.Add(time.Duration(seq) * time.Millisecond); !m.Timestamp.Equal(wantTS) {
						t.Fatalf("p%d offset %d: timestamp %v, want %v", p, off, m.Timestamp, wantTS)
					}
					total++
				}
				pc.Close()
			}
			t.Logf("consumed after %v", time.Since(start))
			if total != perCodec {
				t.Fatalf("consumed %d records, want %d", total, perCodec)
			}

			// ListOffsets: earliest, latest, and by time.
			client, err := sarama.NewClient([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			for p := int32(0); p < partitions; p++ {
				earliest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
				if err != nil || earliest != 0 {
					t.Fatalf("p%d earliest: %d, %v", p, earliest, err)
				}
				latest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil || latest != int64(len(sent[p])) {
					t.Fatalf("p%d latest: %d, %v; want %d", p, latest, err, len(sent[p]))
				}
				// The record at offset 10 has the timestamp start+seq ms; asking
				// for exactly that time must return offset 10.
				seq := sent[p][10]
				off, err := client.GetOffset(topic, p, start.Add(time.Duration(seq)*time.Millisecond).UnixMilli())
				if err != nil || off != 10 {
					t.Fatalf("p%d by time: %d, %v; want 10", p, off, err)
				}
				off, err = client.GetOffset(topic, p, start.Add(time.Hour).UnixMilli())
				if err != nil || off != -1 {
					t.Fatalf("p%d by future time: %d, %v; want -1", p, off, err)
				}
			}

			if err := admin.DeleteTopic(topic); err != nil {
				t.Fatal(err)
			}
			topics, err := admin.ListTopics()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := topics[topic]; ok {
				t.Fatalf("topic %s still listed after delete", topic)
			}
		})
	}
}

// TestSaramaCreateTopicErrors checks Kafka's error codes and messages for bad
// CreateTopics requests, as a client sees them.
func TestSaramaCreateTopicErrors(t *testing.T) {
	b := broker.NewTest(t)
	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	err = admin.CreateTopic("rf2", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 2}, false)
	var te *sarama.TopicError
	if !errors.As(err, &te) || te.Err != sarama.ErrInvalidReplicationFactor || te.ErrMsg == nil || *te.ErrMsg != "Replication factor: 2 larger than available brokers: 1." {
		t.Fatalf("replication factor 2: got %v", err)
	}
	err = admin.CreateTopic("bad/name", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if !errors.As(err, &te) || te.Err != sarama.ErrInvalidTopic {
		t.Fatalf("bad name: got %v", err)
	}
	err = admin.CreateTopic("validate-only", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, true)
	if err != nil {
		t.Fatalf("validate-only: %v", err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics["validate-only"]; ok {
		t.Fatal("validate-only created the topic")
	}
	cfgVal := "-2"
	err = admin.CreateTopic("bad-config", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &cfgVal}}, false)
	if !errors.As(err, &te) || te.Err != sarama.ErrInvalidConfig {
		t.Fatalf("bad config: got %v", err)
	}
	// Partitions grow, never shrink.
	if err := admin.CreateTopic("grow", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreatePartitions("grow", 4, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreatePartitions("grow", 3, nil, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
		t.Fatalf("shrinking: got %v", err)
	}
	md, err := admin.DescribeTopics([]string{"grow"})
	if err != nil || len(md) != 1 || len(md[0].Partitions) != 4 {
		t.Fatalf("describe after grow: %v %+v", err, md)
	}
}
