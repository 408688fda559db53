package broker

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit/internal/storage"
)

// Kafka's ConfigSource codes (DescribeConfigsResponse).
const (
	sourceDynamicTopic         int8 = 1
	sourceDynamicBroker        int8 = 2
	sourceDynamicDefaultBroker int8 = 3
	sourceStaticBroker         int8 = 4
	sourceDefault              int8 = 5
)

// topicProp is one topic-level config key. Its default is the value of the
// broker-level synonym, as in Kafka.
type topicProp struct {
	key       string
	typ       propType
	brokerKey string // broker-level synonym shown by DescribeConfigs
	// altKeys are lower-precedence broker synonyms (log.retention.minutes
	// and .hours for retention.ms): setting any of them makes the value
	// come from the static broker config.
	altKeys  []string
	def      func(c *Config) string // effective broker-level value
	validate func(v string) error
	doc      string
}

func longRange(min, max int64) func(string) error {
	return func(v string) error { _, err := parseInt(v, min, max); return err }
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var topicProps = []topicProp{
	{key: "cleanup.policy", typ: typeList, brokerKey: "log.cleanup.policy", def: func(c *Config) string { return c.CleanupPolicy }, validate: validateCleanupPolicy, doc: "delete or compact"},
	{key: "compression.type", typ: typeString, brokerKey: "compression.type", def: func(c *Config) string { return c.CompressionType }, validate: validateCompression, doc: "Final compression type"},
	{key: "delete.retention.ms", typ: typeLong, brokerKey: "log.cleaner.delete.retention.ms", def: func(c *Config) string { return itoa(c.CleanerDeleteRetentionMs) }, validate: longRange(0, maxLong), doc: "Tombstone retention (compacted topics)"},
	{key: "file.delete.delay.ms", typ: typeLong, brokerKey: "log.segment.delete.delay.ms", def: func(*Config) string { return "60000" }, validate: longRange(0, maxLong), doc: "Delay before deleting a file"},
	{key: "flush.messages", typ: typeLong, brokerKey: "log.flush.interval.messages", def: func(c *Config) string { return itoa(c.FlushMessages) }, validate: longRange(1, maxLong), doc: "fsync after this many messages"},
	{key: "flush.ms", typ: typeLong, brokerKey: "log.flush.interval.ms", def: func(c *Config) string { return itoa(c.flushMs()) }, validate: longRange(0, maxLong), doc: "fsync at least this often"},
	{key: "index.interval.bytes", typ: typeInt, brokerKey: "log.index.interval.bytes", def: func(c *Config) string { return itoa(c.IndexIntervalBytes) }, validate: longRange(0, math.MaxInt32), doc: "Bytes between offset index entries"},
	{key: "max.message.bytes", typ: typeInt, brokerKey: "message.max.bytes", def: func(c *Config) string { return itoa(c.MessageMaxBytes) }, validate: longRange(1, math.MaxInt32), doc: "Largest record batch"},
	{key: "message.timestamp.type", typ: typeString, brokerKey: "log.message.timestamp.type", def: func(c *Config) string { return c.MessageTimestampType }, validate: func(v string) error {
		if v != "CreateTime" && v != "LogAppendTime" {
			return fmt.Errorf("must be CreateTime or LogAppendTime, got %q", v)
		}
		return nil
	}, doc: "CreateTime or LogAppendTime"},
	{key: "message.timestamp.before.max.ms", typ: typeLong, brokerKey: "log.message.timestamp.before.max.ms", def: func(c *Config) string { return itoa(c.MessageTimestampBeforeMs) }, validate: longRange(0, maxLong), doc: "Under CreateTime, refuse a record this much older than the broker's clock"},
	{key: "message.timestamp.after.max.ms", typ: typeLong, brokerKey: "log.message.timestamp.after.max.ms", def: func(c *Config) string { return itoa(c.MessageTimestampAfterMs) }, validate: longRange(0, maxLong), doc: "Under CreateTime, refuse a record this much newer than the broker's clock"},
	{key: "max.compaction.lag.ms", typ: typeLong, brokerKey: "log.cleaner.max.compaction.lag.ms", def: func(c *Config) string { return itoa(c.CleanerMaxCompactionLag) }, validate: longRange(1, maxLong), doc: "A dirty segment older than this is cleaned whatever the dirty ratio"},
	{key: "min.cleanable.dirty.ratio", typ: typeDouble, brokerKey: "log.cleaner.min.cleanable.ratio", def: func(c *Config) string { return strconv.FormatFloat(c.CleanerMinCleanableRatio, 'g', -1, 64) }, validate: func(v string) error { _, err := parseRatio(v); return err }, doc: "Dirty share of a log that triggers cleaning"},
	{key: "min.compaction.lag.ms", typ: typeLong, brokerKey: "log.cleaner.min.compaction.lag.ms", def: func(c *Config) string { return itoa(c.CleanerMinCompactionLag) }, validate: longRange(0, maxLong), doc: "Records stay uncompacted at least this long"},
	{key: "min.insync.replicas", typ: typeInt, brokerKey: "min.insync.replicas", def: func(c *Config) string { return itoa(c.MinInsyncReplicas) }, validate: longRange(1, math.MaxInt32), doc: "Minimum ISR for acks=all"},
	{key: "preallocate", typ: typeBoolean, brokerKey: "log.preallocate", def: func(*Config) string { return "false" }, validate: func(v string) error { _, err := parseBool(v); return err }, doc: "Preallocate segment files"},
	{key: "retention.bytes", typ: typeLong, brokerKey: "log.retention.bytes", def: func(c *Config) string { return itoa(c.RetentionBytes) }, validate: func(v string) error {
		n, err := parseInt(v, -1, maxLong)
		if err == nil && n == 0 {
			return fmt.Errorf("0 is not supported (it would delete every closed segment); use -1 for unlimited or a positive size")
		}
		return err
	}, doc: "Size retention; -1 unlimited"},
	{key: "retention.ms", typ: typeLong, brokerKey: "log.retention.ms", altKeys: []string{"log.retention.minutes", "log.retention.hours"}, def: func(c *Config) string { return itoa(c.retentionMs()) }, validate: longRange(-1, maxLong), doc: "Time retention; -1 unlimited"},
	{key: "segment.bytes", typ: typeInt, brokerKey: "log.segment.bytes", def: func(c *Config) string { return itoa(c.SegmentBytes) }, validate: longRange(14, math.MaxInt32), doc: "Segment file size"},
	{key: "segment.index.bytes", typ: typeInt, brokerKey: "log.index.size.max.bytes", def: func(c *Config) string { return itoa(c.IndexSizeMaxBytes) }, validate: longRange(4, math.MaxInt32), doc: "Offset index size"},
	{key: "segment.jitter.ms", typ: typeLong, brokerKey: "log.roll.jitter.ms", def: func(*Config) string { return "0" }, validate: longRange(0, maxLong), doc: "Roll jitter"},
	{key: "segment.ms", typ: typeLong, brokerKey: "log.roll.ms", altKeys: []string{"log.roll.hours"}, def: func(c *Config) string { return itoa(c.rollMs()) }, validate: longRange(1, maxLong), doc: "Roll the active segment after this long"},
	{key: "unclean.leader.election.enable", typ: typeBoolean, brokerKey: "unclean.leader.election.enable", def: func(*Config) string { return "false" }, validate: func(v string) error { _, err := parseBool(v); return err }, doc: "Unclean leader election"},
}

var topicPropByKey = func() map[string]*topicProp {
	m := make(map[string]*topicProp, len(topicProps))
	for i := range topicProps {
		m[topicProps[i].key] = &topicProps[i]
	}
	return m
}()

// errInvalidConfig marks a topic config problem (INVALID_CONFIG on the wire).
var errInvalidConfig = errors.New("invalid config")

// validateTopicConfigs checks overrides as CreateTopics and AlterConfigs
// receive them; the error names the key as Kafka's message does.
func validateTopicConfigs(overrides map[string]string) error {
	for k, v := range overrides {
		p, ok := topicPropByKey[k]
		if !ok {
			return fmt.Errorf("%w: unknown topic config name: %s", errInvalidConfig, k)
		}
		if err := p.validate(v); err != nil {
			return fmt.Errorf("%w: invalid value %s for configuration %s: %v", errInvalidConfig, v, k, err)
		}
	}
	return nil
}

// topicValue returns the effective value of key for a topic with overrides,
// and its config source.
func (c *Config) topicValue(p *topicProp, overrides map[string]string) (string, int8) {
	if v, ok := overrides[p.key]; ok {
		return v, sourceDynamicTopic
	}
	for _, k := range append([]string{p.brokerKey}, p.altKeys...) {
		if src, ok := c.dynamic[k]; ok {
			return p.def(c), src
		}
	}
	for _, k := range append([]string{p.brokerKey}, p.altKeys...) {
		if _, ok := c.explicit[k]; ok {
			return p.def(c), sourceStaticBroker
		}
	}
	return p.def(c), sourceDefault
}

// cleanupPolicy converts a validated cleanup.policy to storage's bits.
func cleanupPolicy(v string) storage.CleanupPolicy {
	var p storage.CleanupPolicy
	for _, s := range strings.Split(v, ",") {
		switch strings.TrimSpace(s) {
		case "delete":
			p |= storage.CleanupDelete
		case "compact":
			p |= storage.CleanupCompact
		}
	}
	return p
}

// storageConfig resolves a topic's effective settings for its partition logs.
func (c *Config) storageConfig(overrides map[string]string) storage.Config {
	get := func(key string) int64 {
		v, _ := c.topicValue(topicPropByKey[key], overrides)
		n, _ := strconv.ParseInt(v, 10, 64) // validated on the way in
		return n
	}
	ts, _ := c.topicValue(topicPropByKey["message.timestamp.type"], overrides)
	policy, _ := c.topicValue(topicPropByKey["cleanup.policy"], overrides)
	ratio, _ := c.topicValue(topicPropByKey["min.cleanable.dirty.ratio"], overrides)
	dirtyRatio, _ := strconv.ParseFloat(ratio, 64) // validated on the way in
	// storage.Config reads zero as "Kafka's default"; Kafka's own zeros mean
	// "at once" (retention.ms, flush.ms) or "every batch" (index.interval.bytes),
	// so map them to the smallest non-zero value.
	atOnce := func(d time.Duration) time.Duration {
		if d == 0 {
			return time.Nanosecond
		}
		return d
	}
	return storage.Config{
		SegmentBytes:       get("segment.bytes"),
		SegmentMs:          msDuration(get("segment.ms")),
		RetentionMs:        atOnce(msDuration(get("retention.ms"))),
		RetentionBytes:     get("retention.bytes"),
		IndexIntervalBytes: int32(max(get("index.interval.bytes"), 1)),
		SegmentIndexBytes:  int32(get("segment.index.bytes")),
		FlushMessages:      get("flush.messages"),
		FlushMs:            atOnce(msDuration(get("flush.ms"))),
		MaxMessageBytes:    int32(get("max.message.bytes")),
		LogAppendTime:      ts == "LogAppendTime",
		CleanupPolicy:      cleanupPolicy(policy),
		DeleteRetentionMs:  atOnce(msDuration(get("delete.retention.ms"))),
		// storage reads 0 as 0.5; Kafka's 0 cleans at any dirt.
		MinCleanableDirtyRatio: max(dirtyRatio, math.SmallestNonzeroFloat64),
		MinCompactionLagMs:     msDuration(get("min.compaction.lag.ms")),
		MaxCompactionLagMs:     msDuration(get("max.compaction.lag.ms")),
		// msDuration saturates Kafka's Long.MAX_VALUE, which storage reads
		// as no bound.
		TimestampBeforeMaxMs: atOnce(msDuration(get("message.timestamp.before.max.ms"))),
		TimestampAfterMaxMs:  atOnce(msDuration(get("message.timestamp.after.max.ms"))),
	}
}
