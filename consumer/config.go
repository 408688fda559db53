package consumer

import (
	"cmp"
	"crypto/tls"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/props"
)

// Values of auto.offset.reset.
const (
	OffsetResetEarliest = "earliest"
	OffsetResetLatest   = "latest"
	OffsetResetNone     = "none"
)

// Values of isolation.level.
const (
	ReadUncommitted = "read_uncommitted"
	ReadCommitted   = "read_committed"
)

// Names of the assignors in partition.assignment.strategy.
const (
	AssignorRange             = "range"
	AssignorRoundRobin        = "roundrobin"
	AssignorCooperativeSticky = "cooperative-sticky"
)

// Values of group.protocol.
const (
	GroupProtocolClassic  = "classic"  // JoinGroup/SyncGroup; the group leader assigns
	GroupProtocolConsumer = "consumer" // KIP-848: the broker assigns, rebalances are incremental (Kafka 4.0+)
)

// Config configures a Consumer. The zero value of every field means Kafka's
// default; the Kafka key is in each field's comment.
type Config struct {
	BootstrapServers []string // bootstrap.servers
	ClientID         string   // client.id; default "kafkit-consumer"
	GroupID          string   // group.id; "" means no group (manual Assign only, no commits)
	GroupInstanceID  string   // group.instance.id; non-empty enables static membership

	// GroupProtocol is group.protocol: classic (default) or consumer
	// (KIP-848). With consumer the broker decides the heartbeat interval,
	// the session timeout and the assignment, so session.timeout.ms,
	// heartbeat.interval.ms and partition.assignment.strategy must not be
	// set, as in Java's consumer.
	GroupProtocol string
	// GroupRemoteAssignor is group.remote.assignor: the server-side
	// assignor (uniform, range) a consumer-protocol member asks for; ""
	// leaves the choice to the broker.
	GroupRemoteAssignor string

	SessionTimeout     time.Duration // session.timeout.ms; default 45s
	HeartbeatInterval  time.Duration // heartbeat.interval.ms; default 3s
	MaxPollInterval    time.Duration // max.poll.interval.ms; default 5m
	MaxPollRecords     int           // max.poll.records; default 500
	DisableAutoCommit  bool          // enable.auto.commit=false (default true)
	AutoCommitInterval time.Duration // auto.commit.interval.ms; default 5s
	AutoOffsetReset    string        // auto.offset.reset: earliest, latest (default), none

	// PartitionAssignmentStrategy lists assignors by preference:
	// range, roundrobin, cooperative-sticky. Default: range,
	// cooperative-sticky (Java's default). All members must share one.
	PartitionAssignmentStrategy []string

	FetchMinBytes          int32         // fetch.min.bytes; default 1
	FetchMaxBytes          int32         // fetch.max.bytes; default 52428800
	FetchMaxWait           time.Duration // fetch.max.wait.ms; default 500ms
	MaxPartitionFetchBytes int32         // max.partition.fetch.bytes; default 1048576
	IsolationLevel         string        // isolation.level: read_uncommitted (default), read_committed
	// DisallowAutoCreateTopics is allow.auto.create.topics=false: Metadata
	// for subscribed topics no longer asks the broker to create them.
	DisallowAutoCreateTopics bool
	SkipCRCCheck             bool // check.crcs=false (default true)

	RequestTimeout      time.Duration // request.timeout.ms; default 30s
	DefaultAPITimeout   time.Duration // default.api.timeout.ms; default 60s (bounds Close's commit and leave)
	RetryBackoff        time.Duration // retry.backoff.ms; default 100ms
	RetryBackoffMax     time.Duration // retry.backoff.max.ms; default 1s
	ReconnectBackoff    time.Duration // reconnect.backoff.ms; default 50ms
	ReconnectBackoffMax time.Duration // reconnect.backoff.max.ms; default 1s
	MetadataMaxAge      time.Duration // metadata.max.age.ms; default 5m

	TLS  *tls.Config  // security.protocol SSL / SASL_SSL
	SASL *kafkit.SASL // sasl.mechanism, sasl.username, sasl.password

	// Callbacks run on the goroutine calling Poll (see the package doc).
	OnAssigned func(partitions []kafkit.TopicPartition) // newly assigned
	OnRevoked  func(partitions []kafkit.TopicPartition) // taken away in an orderly rebalance, after their offsets were committed
	OnLost     func(partitions []kafkit.TopicPartition) // taken away because the membership was lost; committing is no longer possible

	Interceptors []Interceptor
	Logger       *slog.Logger // default: discard
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SessionTimeout, 45*time.Second)
	def(&c.HeartbeatInterval, 3*time.Second)
	def(&c.MaxPollInterval, 5*time.Minute)
	def(&c.AutoCommitInterval, 5*time.Second)
	def(&c.FetchMaxWait, 500*time.Millisecond)
	def(&c.RequestTimeout, 30*time.Second)
	def(&c.DefaultAPITimeout, 60*time.Second)
	def(&c.RetryBackoff, 100*time.Millisecond)
	def(&c.RetryBackoffMax, time.Second)
	def(&c.ReconnectBackoff, 50*time.Millisecond)
	def(&c.ReconnectBackoffMax, time.Second)
	def(&c.MetadataMaxAge, 5*time.Minute)
	c.ClientID = cmp.Or(c.ClientID, "kafkit-consumer")
	c.GroupProtocol = cmp.Or(strings.ToLower(c.GroupProtocol), GroupProtocolClassic)
	c.MaxPollRecords = cmp.Or(c.MaxPollRecords, 500)
	c.AutoOffsetReset = cmp.Or(c.AutoOffsetReset, OffsetResetLatest)
	if len(c.PartitionAssignmentStrategy) == 0 {
		c.PartitionAssignmentStrategy = []string{AssignorRange, AssignorCooperativeSticky}
	}
	c.FetchMinBytes = cmp.Or(c.FetchMinBytes, 1)
	c.FetchMaxBytes = cmp.Or(c.FetchMaxBytes, 52428800)
	c.MaxPartitionFetchBytes = cmp.Or(c.MaxPartitionFetchBytes, 1048576)
	c.IsolationLevel = cmp.Or(c.IsolationLevel, ReadUncommitted)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem at once, naming Kafka's keys. Zero values
// are valid (they mean the defaults).
func (c Config) Validate() error {
	var p props.Problems
	if len(c.BootstrapServers) == 0 {
		p.Add("bootstrap.servers", "at least one broker is required")
	}
	d := c.withDefaults()
	durations := c.durations()
	for _, key := range slices.Sorted(maps.Keys(durations)) {
		if v := *durations[key]; v < 0 {
			p.Add(key, "must not be negative, got %v", v)
		}
	}
	if d.HeartbeatInterval >= d.SessionTimeout {
		p.Add("heartbeat.interval.ms", "must be lower than session.timeout.ms (%v >= %v)", d.HeartbeatInterval, d.SessionTimeout)
	}
	if c.MaxPollRecords < 0 {
		p.Add("max.poll.records", "must be positive, got %d", c.MaxPollRecords)
	}
	for key, v := range map[string]int32{"fetch.min.bytes": c.FetchMinBytes, "fetch.max.bytes": c.FetchMaxBytes, "max.partition.fetch.bytes": c.MaxPartitionFetchBytes} {
		if v < 0 {
			p.Add(key, "must not be negative, got %d", v)
		}
	}
	switch d.AutoOffsetReset {
	case OffsetResetEarliest, OffsetResetLatest, OffsetResetNone:
	default:
		p.Add("auto.offset.reset", "must be earliest, latest or none, got %q", c.AutoOffsetReset)
	}
	switch d.IsolationLevel {
	case ReadUncommitted, ReadCommitted:
	default:
		p.Add("isolation.level", "must be read_uncommitted or read_committed, got %q", c.IsolationLevel)
	}
	for _, name := range c.PartitionAssignmentStrategy {
		if _, err := assignorByName(name); err != nil {
			p.Add("partition.assignment.strategy", "%v", err)
		}
	}
	if c.GroupInstanceID != "" && c.GroupID == "" {
		p.Add("group.instance.id", "requires group.id")
	}
	switch {
	case d.GroupProtocol == GroupProtocolClassic:
	case d.GroupProtocol != GroupProtocolConsumer:
		p.Add("group.protocol", "must be classic or consumer, got %q", c.GroupProtocol)
	default:
		for key, set := range map[string]bool{"session.timeout.ms": c.SessionTimeout != 0, "heartbeat.interval.ms": c.HeartbeatInterval != 0, "partition.assignment.strategy": len(c.PartitionAssignmentStrategy) > 0} {
			if set {
				p.Add(key, "is not supported when group.protocol is consumer (the broker decides it)")
			}
		}
	}
	if s := c.SASL; s != nil {
		if err := client.ValidateSASL(s.Mechanism, s.User, s.TokenSource); err != nil {
			return errors.Join(p.Err(), err)
		}
	}
	return p.Err()
}

// durations maps the *.ms keys to c's fields, for the loader and Validate.
func (c *Config) durations() map[string]*time.Duration {
	return map[string]*time.Duration{
		"session.timeout.ms": &c.SessionTimeout, "heartbeat.interval.ms": &c.HeartbeatInterval,
		"max.poll.interval.ms": &c.MaxPollInterval, "auto.commit.interval.ms": &c.AutoCommitInterval,
		"fetch.max.wait.ms": &c.FetchMaxWait, "request.timeout.ms": &c.RequestTimeout,
		"default.api.timeout.ms": &c.DefaultAPITimeout, "retry.backoff.ms": &c.RetryBackoff,
		"retry.backoff.max.ms": &c.RetryBackoffMax, "reconnect.backoff.ms": &c.ReconnectBackoff,
		"reconnect.backoff.max.ms": &c.ReconnectBackoffMax, "metadata.max.age.ms": &c.MetadataMaxAge,
	}
}

func (c Config) clientConfig() client.Config {
	return client.Config{
		SeedBrokers: c.BootstrapServers, ClientID: c.ClientID, TLS: c.TLS, SASL: client.FromSASL(c.SASL),
		RequestTimeout: c.RequestTimeout, MetadataMaxAge: c.MetadataMaxAge,
		ReconnectBackoff: c.ReconnectBackoff, ReconnectBackoffMax: c.ReconnectBackoffMax,
		RetryBackoff: c.RetryBackoff, RetryBackoffMax: c.RetryBackoffMax, Logger: c.Logger,
		AllowAutoTopicCreation: !c.DisallowAutoCreateTopics,
	}
}

// ConfigFromProperties builds a Config from Kafka consumer properties
// (durations in milliseconds). Unknown keys are an error, except the
// key.deserializer / value.deserializer classes Java configs carry, which
// kafkit replaces with Go types.
func ConfigFromProperties(properties map[string]string) (Config, error) {
	var c Config
	var p props.Problems
	i32 := func(key, v string) int32 { return int32(p.Int(key, v, 0, math.MaxInt32)) }
	var conn client.ClientProps
	for _, key := range slices.Sorted(maps.Keys(properties)) {
		v := properties[key]
		if d, ok := c.durations()[key]; ok {
			*d = p.Millis(key, v, 0)
			continue
		}
		switch key {
		case "group.id":
			c.GroupID = v
		case "group.instance.id":
			c.GroupInstanceID = v
		case "group.protocol":
			c.GroupProtocol = v
		case "group.remote.assignor":
			c.GroupRemoteAssignor = v
		case "max.poll.records":
			c.MaxPollRecords = int(i32(key, v))
		case "enable.auto.commit":
			c.DisableAutoCommit = !p.Bool(key, v)
		case "auto.offset.reset":
			c.AutoOffsetReset = v
		case "partition.assignment.strategy":
			for _, s := range props.List(v) {
				c.PartitionAssignmentStrategy = append(c.PartitionAssignmentStrategy, javaAssignorName(s))
			}
		case "fetch.min.bytes":
			c.FetchMinBytes = i32(key, v)
		case "fetch.max.bytes":
			c.FetchMaxBytes = i32(key, v)
		case "max.partition.fetch.bytes":
			c.MaxPartitionFetchBytes = i32(key, v)
		case "isolation.level":
			c.IsolationLevel = v
		case "check.crcs":
			c.SkipCRCCheck = !p.Bool(key, v)
		case "allow.auto.create.topics":
			c.DisallowAutoCreateTopics = !p.Bool(key, v)
		case "key.deserializer", "value.deserializer":
		default:
			if !conn.Take(key, v) {
				p.Unknown(key, "consumer")
			}
		}
	}
	c.BootstrapServers, c.ClientID = conn.BootstrapServers, conn.ClientID
	c.TLS, c.SASL = conn.Resolve(p.Add)
	if err := p.Err(); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// javaAssignorName accepts Java's class names for the stock assignors.
func javaAssignorName(s string) string {
	switch s {
	case "org.apache.kafka.clients.consumer.RangeAssignor":
		return AssignorRange
	case "org.apache.kafka.clients.consumer.RoundRobinAssignor":
		return AssignorRoundRobin
	case "org.apache.kafka.clients.consumer.CooperativeStickyAssignor":
		return AssignorCooperativeSticky
	}
	return s
}
