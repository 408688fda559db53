package broker

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/storage"
)

func TestCompactionTopicConfigs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		invalid   bool
		want      func(storage.Config) bool
	}{
		{"defaults", nil, false, func(c storage.Config) bool {
			return c.CleanupPolicy == storage.CleanupDelete && c.DeleteRetentionMs == 24*time.Hour &&
				c.MinCleanableDirtyRatio == 0.5 && c.MinCompactionLagMs == 0 && c.MaxCompactionLagMs == math.MaxInt64
		}},
		{"compact", map[string]string{"cleanup.policy": "compact"}, false, func(c storage.Config) bool {
			return c.CleanupPolicy == storage.CleanupCompact
		}},
		{"compact,delete", map[string]string{"cleanup.policy": "compact, delete"}, false, func(c storage.Config) bool {
			return c.CleanupPolicy == storage.CleanupCompact|storage.CleanupDelete
		}},
		{"overrides", map[string]string{"delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0", "min.compaction.lag.ms": "5", "max.compaction.lag.ms": "7"}, false, func(c storage.Config) bool {
			return c.DeleteRetentionMs == time.Nanosecond && c.MinCleanableDirtyRatio > 0 && c.MinCleanableDirtyRatio < 1e-300 &&
				c.MinCompactionLagMs == 5*time.Millisecond && c.MaxCompactionLagMs == 7*time.Millisecond
		}},
		{"bad policy", map[string]string{"cleanup.policy": "compacted"}, true, nil},
		{"bad ratio", map[string]string{"min.cleanable.dirty.ratio": "1.5"}, true, nil},
		{"bad max lag", map[string]string{"max.compaction.lag.ms": "0"}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateTopicConfigs(tc.overrides)
			if (err != nil) != tc.invalid {
				t.Fatalf("validateTopicConfigs: %v, want invalid=%v", err, tc.invalid)
			}
			if tc.invalid {
				return
			}
			cfg := DefaultConfig()
			sc := cfg.storageConfig(tc.overrides)
			if err := sc.Validate(); err != nil {
				t.Fatal(err)
			}
			if !tc.want(sc) {
				t.Fatalf("storage config %+v", sc)
			}
		})
	}
}

func TestCleanerBrokerKeys(t *testing.T) {
	cfg := DefaultConfig()
	if !cfg.CleanerEnable || cfg.CleanerBackoffMs != 15000 || cfg.CleanerMinCleanableRatio != 0.5 {
		t.Fatalf("defaults: enable %v backoff %d ratio %v", cfg.CleanerEnable, cfg.CleanerBackoffMs, cfg.CleanerMinCleanableRatio)
	}
	if err := cfg.Set(map[string]string{"log.cleaner.min.cleanable.ratio": "0.25", "log.cleaner.delete.retention.ms": "1000", "log.cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	sc := cfg.storageConfig(nil)
	if sc.MinCleanableDirtyRatio != 0.25 || sc.DeleteRetentionMs != time.Second || sc.CleanupPolicy != storage.CleanupCompact {
		t.Fatalf("broker synonyms not applied: %+v", sc)
	}
	if err := cfg.Set(map[string]string{"log.cleaner.min.cleanable.ratio": "2"}); err == nil {
		t.Fatal("ratio 2 accepted")
	}
}

// TestCleanerBackoffDynamic: log.cleaner.backoff.ms is one of Kafka's
// dynamic broker configs (LogCleaner.ReconfigurableConfigs), which sarama's
// TestFuncAdminIncrementalAlterConfigs changes; the new value applies at
// once, without waiting out the backoff the cleaner was started with, as
// Kafka restarts its cleaner threads on reconfiguration.
func TestCleanerBackoffDynamic(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.CleanerBackoffMs = int64(time.Hour / time.Millisecond) }))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("dyn-compacted"),
		kgo.ProducerBatchMaxBytes(1024), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "dyn-compacted", NumPartitions: 1, ReplicationFactor: 1, Configs: []kmsg.CreateTopicsRequestTopicConfig{
		{Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}, {Name: "segment.bytes", Value: kmsg.StringPtr("4096")},
		{Name: "min.cleanable.dirty.ratio", Value: kmsg.StringPtr("0.01")},
	}}}
	if resp := kgoRequest(t, cl, ct, func(*kmsg.CreateTopicsResponse) bool { return false }); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	// 300 updates of 3 keys, then unique keys to push them out of the
	// active segment, which is never cleaned.
	var recs []*kgo.Record
	for i := range 300 {
		recs = append(recs, &kgo.Record{Key: []byte{byte('a' + i%3)}, Value: []byte(strings.Repeat("v", 20))})
	}
	for i := range 60 {
		recs = append(recs, &kgo.Record{Key: []byte("filler-" + strconv.Itoa(i)), Value: []byte(strings.Repeat("x", 100))})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := b.topics.get("dyn-compacted").partitions[0]
	if ratio, due := p.log.Cleanable(time.Now()); !due {
		t.Fatalf("the log is not due for cleaning (dirty ratio %v)", ratio)
	}

	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: b.brokerName(),
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.cleaner.backoff.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("20")}}}}
	resp := kgoRequest(t, cl, req, func(*kmsg.IncrementalAlterConfigsResponse) bool { return false })
	if rr := resp.Resources[0]; rr.ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs log.cleaner.backoff.ms: %v", kerr.ErrorForCode(rr.ErrorCode))
	}
	if got := b.conf().CleanerBackoffMs; got != 20 {
		t.Fatalf("effective log.cleaner.backoff.ms %d, want 20", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, due := p.log.Cleanable(time.Now()); !due {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cleaner did not clean the log within 10 s of log.cleaner.backoff.ms dropping from an hour to 20 ms")
		}
	}
}
