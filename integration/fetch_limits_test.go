package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// TestFetchLimitedByMaxBytes: on disk the broker answers fetches with file
// ranges (sendfile) that end on the last whole batch within
// max.partition.fetch.bytes; our consumer, kgo and sarama, each fetching in
// small steps, must read every record once and in order.
func TestFetchLimitedByMaxBytes(t *testing.T) {
	b := broker.NewTest(t, broker.OnDisk())
	const topic, n = "partial", 3000
	createTopicOn(t, []string{b.Addr()}, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchMaxBytes(1000))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i) + "-0123456789012345678901234567890123456789")})
	}
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pcl.Close()

	// A 1500-byte fetch holds whole batches only, within the limit.
	cl, err := client.New(ctx, client.Config{SeedBrokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	md, err := cl.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	freq := kmsg.NewPtrFetchRequest()
	freq.MaxBytes, freq.MaxWaitMillis = 1500, 100
	freq.Topics = []kmsg.FetchRequestTopic{{Topic: topic, TopicID: md.Topics[topic].ID, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1500, CurrentLeaderEpoch: -1}}}}
	fresp, err := cl.RequestBroker(ctx, 0, freq)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	data := fresp.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches
	rd := recordbatch.NewReader(data, recordbatch.ReadOptions{})
	var batch recordbatch.Batch
	batches := 0
	for rd.Next(&batch) {
		batches++
	}
	if rd.Truncated() || batches == 0 || len(data) > 1500 {
		t.Fatalf("a 1500-byte fetch returned %d bytes, %d whole batches, truncated tail: %v", len(data), batches, rd.Truncated())
	}

	check := func(t *testing.T, values []string) {
		t.Helper()
		if len(values) != n {
			t.Fatalf("read %d records, want %d", len(values), n)
		}
		for i, v := range values {
			if v != strconv.Itoa(i)+"-0123456789012345678901234567890123456789" {
				t.Fatalf("record %d: %q", i, v)
			}
		}
	}
	t.Run("kafkit", func(t *testing.T) {
		c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{b.Addr()}, MaxPartitionFetchBytes: 1500, FetchMaxBytes: 1500})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		tp := kafkit.TopicPartition{Topic: topic}
		c.Assign(tp)
		c.SeekToBeginning(ctx, tp)
		var values []string
		for len(values) < n {
			rs, err := c.Poll(ctx)
			if err != nil {
				t.Fatalf("after %d: %v", len(values), err)
			}
			for _, r := range rs {
				values = append(values, string(r.Value))
			}
		}
		check(t, values)
	})
	t.Run("kgo", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.FetchMaxPartitionBytes(1500), kgo.FetchMaxBytes(1500),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var values []string
		for len(values) < n {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("after %d: %v", len(values), err)
			}
			fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
		}
		check(t, values)
	})
	t.Run("sarama", func(t *testing.T) {
		cfg := saramaConfig()
		cfg.Consumer.Fetch.Default = 1500
		cfg.Consumer.Fetch.Max = 1500
		sc, err := sarama.NewConsumer([]string{b.Addr()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		pc, err := sc.ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		var values []string
		for len(values) < n {
			select {
			case m := <-pc.Messages():
				values = append(values, string(m.Value))
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatalf("after %d: %v", len(values), ctx.Err())
			}
		}
		check(t, values)
	})
}
