package producer

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Issue 20: the compression.<codec>.level keys (KIP-390), their defaults
// and Kafka's ranges, the level of the configured codec reaching the
// batches, and batches compressed when they seal.

func TestCompressionLevelProperties(t *testing.T) {
	c, err := ConfigFromProperties(map[string]string{
		"bootstrap.servers":      "a:9092",
		"compression.type":       "zstd",
		"compression.gzip.level": "9",
		"compression.lz4.level":  "1",
		"compression.zstd.level": "-5",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.CompressionGzipLevel != 9 || c.CompressionLZ4Level != 1 || c.CompressionZstdLevel != -5 {
		t.Fatalf("parsed levels gzip %d lz4 %d zstd %d", c.CompressionGzipLevel, c.CompressionLZ4Level, c.CompressionZstdLevel)
	}
	if o := c.settings().batchOpts; o.Compression != recordbatch.Zstd || o.Level != -5 {
		t.Fatalf("batch options %+v, want zstd at level -5", o)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	// Kafka's defaults: the zero Config builds with each codec's default.
	for _, codec := range []string{"gzip", "lz4", "zstd"} {
		if o := (Config{CompressionType: codec}).settings().batchOpts; o.Level != 0 {
			t.Errorf("%s: default level %d, want 0 (Kafka's default)", codec, o.Level)
		}
	}

	_, err = ConfigFromProperties(map[string]string{
		"bootstrap.servers":      "a:9092",
		"compression.gzip.level": "0",
		"compression.lz4.level":  "18",
		"compression.zstd.level": "23",
	})
	for _, want := range []string{
		`compression.gzip.level: must be in [1,...,9] or -1; got "0"`,
		`compression.lz4.level: must be in [1,...,17]; got "18"`,
		`compression.zstd.level: must be in [-131072,...,22]; got "23"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if _, err := ConfigFromProperties(map[string]string{"bootstrap.servers": "a:9092", "compression.zstd.level": "0"}); err != nil {
		t.Errorf("zstd level 0 (zstd's default): %v", err)
	}

	err = Config{BootstrapServers: []string{"a:1"}, CompressionGzipLevel: 10, CompressionLZ4Level: -1}.Validate()
	for _, want := range []string{"compression.gzip.level", "compression.lz4.level"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v does not mention %q", err, want)
		}
	}
}

// TestSealedBatchesInOrder: compressed batches seal (compress) on their
// own goroutines as they fill or linger out, yet reach the log whole, once
// and in order, also when the first Produce fails and the sealed batches
// are retried with their stamped sequences.
func TestSealedBatchesInOrder(t *testing.T) {
	for _, codec := range []string{"lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(3, "t"))
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				return errorResponse(req, kerr.NotEnoughReplicas.Code), nil, true // once
			})
			p := newProducer(t, c, Config{CompressionType: codec, BatchSize: 1024, Linger: 20 * time.Millisecond})
			const n = 3000
			a := newAcks()
			for i := range n {
				r := &kafkit.Record{Topic: "t", Partition: int32(i % 3), Value: []byte(fmt.Sprintf("%05d-%s", i, strings.Repeat("x", i%50)))}
				if err := a.send(t, p, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			a.wg.Wait()
			next := map[int32]int{0: 0, 1: 1, 2: 2}
			for _, r := range consume(t, c, "t", n) {
				i, _ := strconv.Atoi(string(r.Value[:5]))
				if i != next[r.Partition] || a.errs[string(r.Value)] != nil {
					t.Fatalf("partition %d: record %d (err %v), want %d", r.Partition, i, a.errs[string(r.Value)], next[r.Partition])
				}
				next[r.Partition] += 3
			}
		})
	}
}
