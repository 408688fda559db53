package coordinator

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config holds the broker settings the group coordinator obeys. The zero
// value of a field means Kafka's default.
type Config struct {
	// Owns, on a cluster, says whether this broker leads a partition of
	// __consumer_offsets: the groups of the others get NOT_COORDINATOR.
	// Nil (a single node) owns every partition.
	Owns                  func(partition int32) bool
	NumPartitions         int32         // offsets.topic.num.partitions (default 50)
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms (default 3s; negative means 0)
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms (default 6s; negative means 0)
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms (default 30min)
	MaxGroupSize          int           // group.max.size (default unlimited)
	OffsetsRetention      time.Duration // offsets.retention.minutes (default 7 days)
	RetentionCheck        time.Duration // offsets.retention.check.interval.ms (default 10min)
	MaxMetadataBytes      int           // offset.metadata.max.bytes (default 4096; negative means 0)

	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms (default 5s)
	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms (default 45s)
	ConsumerMaxSize           int           // group.consumer.max.size (default unlimited)
	// ConsumerAssignors are group.consumer.assignors by name ("uniform",
	// "range"); the first is the default (default: uniform, range).
	ConsumerAssignors []string
	// Topics is the cluster's topics as KIP-848 consumer groups subscribe
	// to and are assigned them; nil means no topic exists.
	Topics TopicSource

	// KnownPartition reports whether a topic partition exists; commits to
	// others fail with UNKNOWN_TOPIC_OR_PARTITION. Nil accepts every one.
	KnownPartition func(topic string, partition int32) bool

	Logger *slog.Logger // nil discards
}

// newMemberJoinTimeout bounds how long a member that never completed a join
// may wait in a rebalance (Kafka's GroupCoordinator.NewMemberJoinTimeoutMs).
const newMemberJoinTimeout = 5 * time.Minute

func (c Config) withDefaults() Config {
	if c.NumPartitions == 0 {
		c.NumPartitions = 50
	}
	if c.InitialRebalanceDelay == 0 {
		c.InitialRebalanceDelay = 3 * time.Second
	} else if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = 6 * time.Second
	} else if c.MinSessionTimeout < 0 {
		c.MinSessionTimeout = 0
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.MaxGroupSize == 0 {
		c.MaxGroupSize = 1<<31 - 1
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.RetentionCheck == 0 {
		c.RetentionCheck = 10 * time.Minute
	}
	if c.MaxMetadataBytes == 0 {
		c.MaxMetadataBytes = 4096
	} else if c.MaxMetadataBytes < 0 {
		c.MaxMetadataBytes = 0
	}
	if c.ConsumerHeartbeatInterval == 0 {
		c.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if c.ConsumerSessionTimeout == 0 {
		c.ConsumerSessionTimeout = 45 * time.Second
	}
	if c.ConsumerMaxSize == 0 {
		c.ConsumerMaxSize = 1<<31 - 1
	}
	if len(c.ConsumerAssignors) == 0 {
		c.ConsumerAssignors = []string{assignorUniform, assignorRange}
	}
	if c.Topics == nil {
		c.Topics = noTopics{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem at once, each naming Kafka's key.
func (c Config) Validate() error {
	var errs []error
	if c.NumPartitions < 0 {
		errs = append(errs, fmt.Errorf("offsets.topic.num.partitions: must be at least 1, got %d", c.NumPartitions))
	}
	if c.MaxSessionTimeout < 0 || c.MinSessionTimeout > c.MaxSessionTimeout && c.MaxSessionTimeout != 0 {
		errs = append(errs, fmt.Errorf("group.min.session.timeout.ms: %v must not exceed group.max.session.timeout.ms %v", c.MinSessionTimeout, c.MaxSessionTimeout))
	}
	if c.MaxGroupSize < 0 {
		errs = append(errs, fmt.Errorf("group.max.size: must be at least 1, got %d", c.MaxGroupSize))
	}
	if c.OffsetsRetention < 0 {
		errs = append(errs, fmt.Errorf("offsets.retention.minutes: must be at least 1, got %v", c.OffsetsRetention))
	}
	if c.RetentionCheck < 0 {
		errs = append(errs, fmt.Errorf("offsets.retention.check.interval.ms: must be at least 1, got %v", c.RetentionCheck))
	}
	if c.ConsumerHeartbeatInterval < 0 || c.ConsumerSessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("group.consumer.heartbeat.interval.ms and group.consumer.session.timeout.ms: must be positive"))
	} else if c.ConsumerHeartbeatInterval != 0 && c.ConsumerSessionTimeout != 0 && c.ConsumerHeartbeatInterval >= c.ConsumerSessionTimeout {
		errs = append(errs, fmt.Errorf("group.consumer.heartbeat.interval.ms: %v must be lower than group.consumer.session.timeout.ms %v", c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout))
	}
	if c.ConsumerMaxSize < 0 {
		errs = append(errs, fmt.Errorf("group.consumer.max.size: must be at least 1, got %d", c.ConsumerMaxSize))
	}
	for _, a := range c.ConsumerAssignors {
		if assignorByName(a) == nil {
			errs = append(errs, fmt.Errorf("group.consumer.assignors: unknown assignor %q (kafkit has %s and %s)", a, assignorUniform, assignorRange))
		}
	}
	return errors.Join(errs...)
}

// TopicSource is the cluster's topics as consumer groups see them. Its
// methods are called on the coordinator's loop and must not block on it.
type TopicSource interface {
	// Topic returns a topic's id and partition count.
	Topic(name string) (id [16]byte, partitions int32, ok bool)
	// TopicName returns the name of the topic with id.
	TopicName(id [16]byte) (string, bool)
	// TopicNames lists the topics a regular expression may subscribe to:
	// all of them, internal ones included, as Kafka matches against its
	// whole metadata image.
	TopicNames() []string
}

type noTopics struct{}

func (noTopics) Topic(string) ([16]byte, int32, bool) { return [16]byte{}, 0, false }
func (noTopics) TopicName([16]byte) (string, bool)    { return "", false }
func (noTopics) TopicNames() []string                 { return nil }
