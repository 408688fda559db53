package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/testutil"
	"github.com/kafkit/kafkit/producer"
)

// uniqueName keeps topics and groups apart on the shared clusters.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// createTopicOn creates a topic on any target through the SDK's client core.
func createTopicOn(t *testing.T, seeds []string, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Config{SeedBrokers: seeds})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %s: error code %d", topic, code)
	}
}

// TestSDKProduceConsume is the SDK's round trip on every target: our
// producer (idempotent, acks=all, every codec) and our consumer group must
// agree with the cluster on every record, in order per partition.
func TestSDKProduceConsume(t *testing.T) {
	testutil.ForEachTarget(t, func(t *testing.T, tg testutil.Target) {
		const partitions = 6
		const perCodec = 2000
		topic := uniqueName("sdk")
		createTopicOn(t, tg.Bootstrap, topic, partitions)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()

		var mu sync.Mutex
		bySeq := map[int]*kafkit.Record{}
		total := 0
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			p, err := producer.New(producer.Config{BootstrapServers: tg.Bootstrap, CompressionType: codec, Linger: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < perCodec; i++ {
				seq := total + i
				r := &kafkit.Record{
					Topic: topic, Partition: kafkit.AnyPartition,
					Key:     []byte("key-" + strconv.Itoa(seq%31)),
					Value:   []byte(codec + "-" + strconv.Itoa(seq)),
					Headers: []kafkit.Header{{Key: "seq", Value: []byte(strconv.Itoa(seq))}},
				}
				if err := p.Send(ctx, r, func(r *kafkit.Record, err error) {
					if err != nil {
						t.Errorf("send %d: %v", seq, err)
						return
					}
					mu.Lock()
					bySeq[seq] = r
					mu.Unlock()
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			total += perCodec
		}
		if len(bySeq) != total {
			t.Fatalf("%d acks for %d records", len(bySeq), total)
		}

		c, err := consumer.New(ctx, consumer.Config{BootstrapServers: tg.Bootstrap, GroupID: uniqueName("sdk-group"), AutoOffsetReset: consumer.OffsetResetEarliest})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if err := c.Subscribe(topic); err != nil {
			t.Fatal(err)
		}
		next := map[int32]int64{}
		for got := 0; got < total; {
			recs, err := c.Poll(ctx)
			if err != nil {
				t.Fatalf("poll after %d records: %v", got, err)
			}
			for _, r := range recs {
				seq, _ := strconv.Atoi(string(r.Headers[0].Value))
				want := bySeq[seq]
				if want == nil || want.Partition != r.Partition || want.Offset != r.Offset {
					t.Fatalf("record seq %d at %d/%d was acknowledged at %+v", seq, r.Partition, r.Offset, want)
				}
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
				}
				if string(r.Key) != "key-"+strconv.Itoa(seq%31) {
					t.Fatalf("seq %d: key %q", seq, r.Key)
				}
				next[r.Partition]++
				got++
			}
		}
		if err := c.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
