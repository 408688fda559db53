package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Issue 20: batches our producer compresses with each codec are read by
// kcat (librdkafka), and batches kcat compresses are read by our consumer.
// franz-go and sarama are checked both ways per codec in
// codec_interop_test.go (our producer and consumer) and
// internal/recordbatch/interop_test.go (the batch format).

const kcatCodecRecords = 3000

// kcatCodecValue is record i's value: long enough, and repetitive enough,
// that every codec compresses it, so the batch really carries the codec.
func kcatCodecValue(codec string, i int) string {
	return fmt.Sprintf("%s-%d-%s", codec, i, strings.Repeat("ABCDEFGH", 8))
}

// storedCodecs returns the codecs of partition 0's stored batches.
func storedCodecs(t *testing.T, addr, topic string) map[recordbatch.Codec]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Config{SeedBrokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := cl.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.MaxWaitMillis = 50<<20, 100
	req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, TopicID: md.Topics[topic].ID,
		Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 50 << 20, CurrentLeaderEpoch: -1}}}}
	resp, err := cl.RequestBroker(ctx, 0, req)
	if err != nil {
		t.Fatal(err)
	}
	rd := recordbatch.NewReader(resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches, recordbatch.ReadOptions{SkipRecords: true})
	codecs := map[recordbatch.Codec]int{}
	var b recordbatch.Batch
	for rd.Next(&b) {
		codecs[b.Attributes.Codec()]++
	}
	if rd.Err() != nil {
		t.Fatal(rd.Err())
	}
	return codecs
}

func requireKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat (librdkafka) is not installed: apt-get install kcat")
	}
}

func TestCodecsKcatReadsOurBatches(t *testing.T) {
	requireKcat(t)
	b := broker.NewTest(t, broker.OnDisk())
	ctx := context.Background()
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "ours-" + codec
			createTopic(t, b.Addr(), topic, 1)
			produceOurs(t, ctx, b.Addr(), codec, kcatCodecRecords, func(i int) *kafkit.Record {
				return &kafkit.Record{Topic: topic, Partition: 0, Key: fmt.Appendf(nil, "k%d", i), Value: []byte(kcatCodecValue(codec, i))}
			})
			want, _ := recordbatch.ParseCodec(codec)
			if got := storedCodecs(t, b.Addr(), topic); len(got) != 1 || got[want] == 0 {
				t.Fatalf("stored batches by codec: %v, want only %s", got, want)
			}
			out := runTool(t, "", "kcat", "-b", b.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != kcatCodecRecords {
				t.Fatalf("kcat read %d records, want %d", len(lines), kcatCodecRecords)
			}
			for i, l := range lines {
				if want := fmt.Sprintf("k%d=%s", i, kcatCodecValue(codec, i)); l != want {
					t.Fatalf("kcat record %d: %q, want %q", i, l, want)
				}
			}
		})
	}
}

func TestCodecsWeReadKcatBatches(t *testing.T) {
	requireKcat(t)
	b := broker.NewTest(t, broker.OnDisk())
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, b.Addr(), topic, 1)
			var in strings.Builder
			for i := range kcatCodecRecords {
				fmt.Fprintf(&in, "k%d:%s\n", i, kcatCodecValue(codec, i))
			}
			runTool(t, in.String(), "kcat", "-b", b.Addr(), "-P", "-t", topic, "-p", "0", "-K:", "-z", codec, "-X", "linger.ms=20")
			want, _ := recordbatch.ParseCodec(codec)
			got := storedCodecs(t, b.Addr(), topic)
			// gzip, snappy and lz4 are stored compressed only because our
			// ApiVersions lists Produce from v0 (KAFKA-18659): librdkafka
			// 2.0.2 (Debian bookworm's) otherwise sends them uncompressed.
			if len(got) != 1 || got[want] == 0 {
				t.Fatalf("stored batches by codec: %v, want only %s", got, want)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			readPartitionZero(t, ctx, b.Addr(), topic, kcatCodecRecords, func(i int, r *kafkit.Record) {
				if r.Offset != int64(i) || string(r.Key) != fmt.Sprintf("k%d", i) || string(r.Value) != kcatCodecValue(codec, i) {
					t.Fatalf("record %d: offset %d key %q value %q", i, r.Offset, r.Key, r.Value)
				}
			})
		})
	}
}
