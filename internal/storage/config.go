package storage

import (
	"cmp"
	"math"
	"time"

	"github.com/kafkit/kafkit/internal/props"
)

// Kafka's defaults for the topic-level settings in Config.
const (
	DefaultSegmentBytes       int64 = 1 << 30            // segment.bytes
	DefaultSegmentMs                = 7 * 24 * time.Hour // segment.ms
	DefaultRetentionMs              = 7 * 24 * time.Hour // retention.ms
	DefaultIndexIntervalBytes int32 = 4096               // index.interval.bytes
	DefaultSegmentIndexBytes  int32 = 10 * 1024 * 1024   // segment.index.bytes
	DefaultMaxMessageBytes    int32 = 1024*1024 + 12     // max.message.bytes
	minSegmentBytes                 = 14                 // Kafka's minimum; smaller than any v2 batch
	minSegmentIndexBytes            = 4                  // Kafka's minimum; no room for an entry, so one batch per segment

	DefaultTimestampAfterMaxMs            = time.Hour      // message.timestamp.after.max.ms (KIP-1030, Kafka 4.0)
	DefaultDeleteRetentionMs              = 24 * time.Hour // delete.retention.ms
	DefaultMinCleanableDirtyRatio float64 = 0.5            // min.cleanable.dirty.ratio
)

// CleanupPolicy is cleanup.policy: a set of CleanupDelete and CleanupCompact.
type CleanupPolicy uint8

// cleanup.policy values; "compact,delete" is both bits.
const (
	CleanupDelete CleanupPolicy = 1 << iota
	CleanupCompact
)

// Config holds the topic-level settings of one partition log, under Kafka's
// names. The zero value of every field means Kafka's default. Where Kafka
// gives 0 a meaning of its own, the field says how to ask for it: a
// positive duration below one millisecond (time.Nanosecond) is Kafka's 0 ms.
type Config struct {
	// SegmentBytes is segment.bytes: a segment is rolled before an append
	// would make it larger; an append larger than it is ErrRecordTooLarge.
	SegmentBytes int64
	// SegmentMs is segment.ms: a segment is rolled when its first batch's
	// timestamp is more than this older than an incoming batch's.
	SegmentMs time.Duration
	// RetentionMs is retention.ms; negative means unlimited (Kafka's -1).
	// Kafka's 0 (delete every segment at the next check) is time.Nanosecond.
	RetentionMs time.Duration
	// RetentionBytes is retention.bytes; zero or negative means unlimited
	// (Kafka's -1). Kafka's retention.bytes=0 is not expressible; 1 comes
	// closest (keeps only the active segment).
	RetentionBytes int64
	// IndexIntervalBytes is index.interval.bytes: bytes appended between two
	// .index entries. Kafka's 0 (index every batch) is 1.
	IndexIntervalBytes int32
	// SegmentIndexBytes is segment.index.bytes: the largest .index or
	// .timeindex file; a full index rolls the segment.
	SegmentIndexBytes int32
	// FlushMessages is flush.messages: fsync after this many records. 1 makes
	// every Append durable before it returns. Zero means never (Kafka's
	// default: rely on the OS and on Flush).
	FlushMessages int64
	// FlushMs is flush.ms: Append fsyncs when this long has passed since the
	// last fsync. Zero means never (Kafka's default); Kafka's 0 is
	// time.Nanosecond (fsync on every append).
	FlushMs time.Duration
	// MaxMessageBytes is max.message.bytes: the largest batch Append accepts,
	// log overhead included.
	MaxMessageBytes int32
	// LogAppendTime is message.timestamp.type=LogAppendTime: Append stamps
	// each batch's maxTimestamp with the broker's clock.
	LogAppendTime bool
	// TimestampBeforeMaxMs is message.timestamp.before.max.ms: under
	// CreateTime, Append refuses a batch with a record whose timestamp is
	// more than this before the broker's clock (ErrInvalidTimestamp). Zero
	// means unlimited (Kafka's default, Long.MAX_VALUE); Kafka's 0 is
	// time.Nanosecond.
	TimestampBeforeMaxMs time.Duration
	// TimestampAfterMaxMs is message.timestamp.after.max.ms, the same bound
	// after the broker's clock. Zero means Kafka's one hour; Kafka's 0 is
	// time.Nanosecond.
	TimestampAfterMaxMs time.Duration
	// CleanupPolicy is cleanup.policy; zero means CleanupDelete. Without
	// CleanupDelete, ApplyRetention ignores retention.ms and retention.bytes;
	// with CleanupCompact, Clean compacts the log and Append refuses records
	// without a key.
	CleanupPolicy CleanupPolicy
	// DeleteRetentionMs is delete.retention.ms: how long a tombstone (or
	// a transaction marker with no batch left) stays after the Clean that
	// first kept it (KIP-534). Kafka's 0 is time.Nanosecond.
	DeleteRetentionMs time.Duration
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio, in [0, 1]: Clean
	// runs when the dirty part is at least this share of the cleanable
	// bytes. Zero means Kafka's 0.5; Kafka's 0 is math.SmallestNonzeroFloat64.
	MinCleanableDirtyRatio float64
	// MinCompactionLagMs is min.compaction.lag.ms: a segment whose largest
	// timestamp is younger than this is not cleaned. Zero is Kafka's 0.
	MinCompactionLagMs time.Duration
	// MaxCompactionLagMs is max.compaction.lag.ms: a dirty segment whose
	// first batch is older than this is cleaned whatever the dirty ratio.
	// Zero means unlimited (Kafka's default, Long.MAX_VALUE).
	MaxCompactionLagMs time.Duration
}

// Validate reports every out-of-range field at once, naming Kafka's keys.
func (c Config) Validate() error {
	var p props.Problems
	if c.SegmentBytes < 0 || (c.SegmentBytes > 0 && c.SegmentBytes < minSegmentBytes) || c.SegmentBytes > math.MaxInt32 {
		p.Add("segment.bytes", "%d is not in [%d, %d]", c.SegmentBytes, minSegmentBytes, math.MaxInt32)
	}
	if c.SegmentMs < 0 {
		p.Add("segment.ms", "%v is negative", c.SegmentMs)
	}
	if c.IndexIntervalBytes < 0 {
		p.Add("index.interval.bytes", "%d is negative", c.IndexIntervalBytes)
	}
	if c.SegmentIndexBytes < 0 || (c.SegmentIndexBytes > 0 && c.SegmentIndexBytes < minSegmentIndexBytes) {
		p.Add("segment.index.bytes", "%d is below %d", c.SegmentIndexBytes, minSegmentIndexBytes)
	}
	if c.FlushMessages < 0 {
		p.Add("flush.messages", "%d is negative", c.FlushMessages)
	}
	if c.FlushMs < 0 {
		p.Add("flush.ms", "%v is negative", c.FlushMs)
	}
	if c.MaxMessageBytes < 0 {
		p.Add("max.message.bytes", "%d is negative", c.MaxMessageBytes)
	}
	if c.TimestampBeforeMaxMs < 0 {
		p.Add("message.timestamp.before.max.ms", "%v is negative", c.TimestampBeforeMaxMs)
	}
	if c.TimestampAfterMaxMs < 0 {
		p.Add("message.timestamp.after.max.ms", "%v is negative", c.TimestampAfterMaxMs)
	}
	if c.CleanupPolicy&^(CleanupDelete|CleanupCompact) != 0 {
		p.Add("cleanup.policy", "unknown bits %#x", uint8(c.CleanupPolicy))
	}
	if c.DeleteRetentionMs < 0 {
		p.Add("delete.retention.ms", "%v is negative", c.DeleteRetentionMs)
	}
	if !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1) {
		p.Add("min.cleanable.dirty.ratio", "%v is not in [0, 1]", c.MinCleanableDirtyRatio)
	}
	if c.MinCompactionLagMs < 0 {
		p.Add("min.compaction.lag.ms", "%v is negative", c.MinCompactionLagMs)
	}
	if c.MaxCompactionLagMs < 0 {
		p.Add("max.compaction.lag.ms", "%v is negative", c.MaxCompactionLagMs)
	}
	return p.Err()
}

// withDefaults replaces zero values with Kafka's defaults.
func (c Config) withDefaults() Config {
	c.SegmentBytes = cmp.Or(c.SegmentBytes, DefaultSegmentBytes)
	c.SegmentMs = cmp.Or(c.SegmentMs, DefaultSegmentMs)
	c.RetentionMs = cmp.Or(c.RetentionMs, DefaultRetentionMs)
	c.IndexIntervalBytes = cmp.Or(c.IndexIntervalBytes, DefaultIndexIntervalBytes)
	c.SegmentIndexBytes = cmp.Or(c.SegmentIndexBytes, DefaultSegmentIndexBytes)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	c.CleanupPolicy = cmp.Or(c.CleanupPolicy, CleanupDelete)
	c.TimestampBeforeMaxMs = cmp.Or(c.TimestampBeforeMaxMs, math.MaxInt64)
	c.TimestampAfterMaxMs = cmp.Or(c.TimestampAfterMaxMs, DefaultTimestampAfterMaxMs)
	c.DeleteRetentionMs = cmp.Or(c.DeleteRetentionMs, DefaultDeleteRetentionMs)
	c.MinCleanableDirtyRatio = cmp.Or(c.MinCleanableDirtyRatio, DefaultMinCleanableDirtyRatio)
	c.MaxCompactionLagMs = cmp.Or(c.MaxCompactionLagMs, math.MaxInt64)
	return c
}
