package broker

import (
	"math"
	"testing"
	"time"

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
