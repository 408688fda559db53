package broker

import (
	"strings"
	"testing"
	"time"
)

func TestReadProperties(t *testing.T) {
	in := "# comment\n! also a comment\nbroker.id=3\nlog.dirs = /data/kafka \nlisteners:PLAINTEXT://0.0.0.0:9092\nlong.value=a,\\\n  b\n\n"
	props, err := ReadProperties(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"broker.id": "3", "log.dirs": "/data/kafka", "listeners": "PLAINTEXT://0.0.0.0:9092", "long.value": "a,b"}
	if len(props) != len(want) {
		t.Fatalf("got %v", props)
	}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("%s = %q, want %q", k, props[k], v)
		}
	}
	if _, err := ReadProperties(strings.NewReader("novalue\n")); err == nil {
		t.Error("a line without = or : must be an error")
	}
}

func TestConfigFromProperties(t *testing.T) {
	cfg, unknown, err := ConfigFromProperties(map[string]string{
		"listeners":                 "PLAINTEXT://127.0.0.1:19092",
		"log.dirs":                  "/tmp/x",
		"log.retention.minutes":     "30",
		"log.retention.hours":       "1",
		"num.partitions":            "6",
		"made.up.key":               "1",
		"num.network.threads":       "3",
		"auto.create.topics.enable": "false",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "made.up.key" {
		t.Errorf("unknown = %v, want [made.up.key]", unknown)
	}
	if cfg.Listen != "127.0.0.1:19092" || cfg.DataDir != "/tmp/x" || cfg.NumPartitions != 6 || cfg.AutoCreateTopics {
		t.Errorf("cfg = %+v", cfg)
	}
	if got := cfg.retention(); got != 30*time.Minute {
		t.Errorf("retention = %v, want 30m (minutes beat hours)", got)
	}
	ms := int64(1500)
	cfg.RetentionMs = &ms
	if got := cfg.retention(); got != 1500*time.Millisecond {
		t.Errorf("retention = %v, want 1.5s (ms beats minutes)", got)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	_, _, err := ConfigFromProperties(map[string]string{
		"num.partitions":             "zero",
		"log.segment.bytes":          "5",
		"auto.create.topics.enable":  "maybe",
		"log.message.timestamp.type": "Sometime",
		"listeners":                  "PLAINTEXT://a",
	})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"num.partitions", "log.segment.bytes", "auto.create.topics.enable", "log.message.timestamp.type", "listeners"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Listen = "nope"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "listeners:") || !strings.Contains(err.Error(), "log.dirs:") {
		t.Errorf("Validate = %v, want listeners and log.dirs named", err)
	}
	// A Config built in Go is held to the same ranges as a parsed one.
	cfg = DefaultConfig()
	cfg.InMemory = true
	cfg.SegmentBytes, cfg.MaxRequestPartitionLimit, cfg.FetchSessionCacheSlots = 5, 0, -1
	err = cfg.Validate()
	for _, key := range []string{"log.segment.bytes", "max.request.partition.size.limit", "max.incremental.fetch.session.cache.slots"} {
		if err == nil || !strings.Contains(err.Error(), key+": value") {
			t.Errorf("Validate = %v, want %s out of range", err, key)
		}
	}
}

func TestTopicConfigDefaultsFollowBroker(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Set(map[string]string{"log.retention.hours": "2"}); err != nil {
		t.Fatal(err)
	}
	v, src := cfg.topicValue(topicPropByKey["retention.ms"], nil)
	if v != "7200000" || src != sourceStaticBroker {
		t.Errorf("retention.ms = %s (source %d), want 7200000 from the static broker config", v, src)
	}
	v, src = cfg.topicValue(topicPropByKey["retention.ms"], map[string]string{"retention.ms": "1000"})
	if v != "1000" || src != sourceDynamicTopic {
		t.Errorf("override: %s (%d)", v, src)
	}
	v, src = cfg.topicValue(topicPropByKey["segment.bytes"], nil)
	if v != "1073741824" || src != sourceDefault {
		t.Errorf("segment.bytes = %s (%d)", v, src)
	}
	sc := cfg.storageConfig(map[string]string{"message.timestamp.type": "LogAppendTime", "segment.bytes": "1024"})
	if !sc.LogAppendTime || sc.SegmentBytes != 1024 || sc.RetentionMs != 2*time.Hour {
		t.Errorf("storage config = %+v", sc)
	}
}
