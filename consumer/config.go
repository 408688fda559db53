package consumer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
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

// Config configures a Consumer. The zero value of every field means Kafka's
// default; the Kafka key is in each field's comment.
type Config struct {
	BootstrapServers []string // bootstrap.servers
	ClientID         string   // client.id; default "kafkit-consumer"
	GroupID          string   // group.id; "" means no group (manual Assign only, no commits)
	GroupInstanceID  string   // group.instance.id; non-empty enables static membership

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
	if c.ClientID == "" {
		c.ClientID = "kafkit-consumer"
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 500
	}
	if c.AutoOffsetReset == "" {
		c.AutoOffsetReset = OffsetResetLatest
	}
	if len(c.PartitionAssignmentStrategy) == 0 {
		c.PartitionAssignmentStrategy = []string{AssignorRange, AssignorCooperativeSticky}
	}
	if c.FetchMinBytes == 0 {
		c.FetchMinBytes = 1
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 52428800
	}
	if c.MaxPartitionFetchBytes == 0 {
		c.MaxPartitionFetchBytes = 1048576
	}
	if c.IsolationLevel == "" {
		c.IsolationLevel = ReadUncommitted
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem at once, naming Kafka's keys. Zero values
// are valid (they mean the defaults).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if len(c.BootstrapServers) == 0 {
		bad("bootstrap.servers", "at least one broker is required")
	}
	d := c.withDefaults()
	for key, v := range map[string]time.Duration{
		"session.timeout.ms": c.SessionTimeout, "heartbeat.interval.ms": c.HeartbeatInterval,
		"max.poll.interval.ms": c.MaxPollInterval, "auto.commit.interval.ms": c.AutoCommitInterval,
		"fetch.max.wait.ms": c.FetchMaxWait, "request.timeout.ms": c.RequestTimeout,
		"default.api.timeout.ms": c.DefaultAPITimeout, "retry.backoff.ms": c.RetryBackoff,
		"retry.backoff.max.ms": c.RetryBackoffMax, "reconnect.backoff.ms": c.ReconnectBackoff,
		"reconnect.backoff.max.ms": c.ReconnectBackoffMax, "metadata.max.age.ms": c.MetadataMaxAge,
	} {
		if v < 0 {
			bad(key, "must not be negative, got %v", v)
		}
	}
	if d.HeartbeatInterval >= d.SessionTimeout {
		bad("heartbeat.interval.ms", "must be lower than session.timeout.ms (%v >= %v)", d.HeartbeatInterval, d.SessionTimeout)
	}
	if c.MaxPollRecords < 0 {
		bad("max.poll.records", "must be positive, got %d", c.MaxPollRecords)
	}
	for key, v := range map[string]int32{"fetch.min.bytes": c.FetchMinBytes, "fetch.max.bytes": c.FetchMaxBytes, "max.partition.fetch.bytes": c.MaxPartitionFetchBytes} {
		if v < 0 {
			bad(key, "must not be negative, got %d", v)
		}
	}
	switch d.AutoOffsetReset {
	case OffsetResetEarliest, OffsetResetLatest, OffsetResetNone:
	default:
		bad("auto.offset.reset", "must be earliest, latest or none, got %q", c.AutoOffsetReset)
	}
	switch d.IsolationLevel {
	case ReadUncommitted, ReadCommitted:
	default:
		bad("isolation.level", "must be read_uncommitted or read_committed, got %q", c.IsolationLevel)
	}
	for _, name := range c.PartitionAssignmentStrategy {
		if _, err := assignorByName(name); err != nil {
			bad("partition.assignment.strategy", "%v", err)
		}
	}
	if c.GroupInstanceID != "" && c.GroupID == "" {
		bad("group.instance.id", "requires group.id")
	}
	if c.SASL != nil {
		// The client validates the SASL settings; the seed is a placeholder.
		if err := (client.Config{SeedBrokers: []string{"-"}, SASL: client.FromSASL(c.SASL)}).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
func ConfigFromProperties(props map[string]string) (Config, error) {
	var (
		c    Config
		errs []error
	)
	ms := func(key, v string, d *time.Duration) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a number of milliseconds: %q", key, v))
			return
		}
		*d = time.Duration(n) * time.Millisecond
	}
	i32 := func(key, v string, dst *int32) {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a 32-bit integer: %q", key, v))
			return
		}
		*dst = int32(n)
	}
	boolean := func(key, v string) bool {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a boolean: %q", key, v))
		}
		return b
	}
	var sec client.SecurityProps
	for key, v := range props {
		switch key {
		case "bootstrap.servers":
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.BootstrapServers = append(c.BootstrapServers, s)
				}
			}
		case "client.id":
			c.ClientID = v
		case "group.id":
			c.GroupID = v
		case "group.instance.id":
			c.GroupInstanceID = v
		case "session.timeout.ms":
			ms(key, v, &c.SessionTimeout)
		case "heartbeat.interval.ms":
			ms(key, v, &c.HeartbeatInterval)
		case "max.poll.interval.ms":
			ms(key, v, &c.MaxPollInterval)
		case "max.poll.records":
			var n int32
			i32(key, v, &n)
			c.MaxPollRecords = int(n)
		case "enable.auto.commit":
			c.DisableAutoCommit = !boolean(key, v)
		case "auto.commit.interval.ms":
			ms(key, v, &c.AutoCommitInterval)
		case "auto.offset.reset":
			c.AutoOffsetReset = v
		case "partition.assignment.strategy":
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.PartitionAssignmentStrategy = append(c.PartitionAssignmentStrategy, javaAssignorName(s))
				}
			}
		case "fetch.min.bytes":
			i32(key, v, &c.FetchMinBytes)
		case "fetch.max.bytes":
			i32(key, v, &c.FetchMaxBytes)
		case "fetch.max.wait.ms":
			ms(key, v, &c.FetchMaxWait)
		case "max.partition.fetch.bytes":
			i32(key, v, &c.MaxPartitionFetchBytes)
		case "isolation.level":
			c.IsolationLevel = v
		case "check.crcs":
			c.SkipCRCCheck = !boolean(key, v)
		case "allow.auto.create.topics":
			c.DisallowAutoCreateTopics = !boolean(key, v)
		case "request.timeout.ms":
			ms(key, v, &c.RequestTimeout)
		case "default.api.timeout.ms":
			ms(key, v, &c.DefaultAPITimeout)
		case "retry.backoff.ms":
			ms(key, v, &c.RetryBackoff)
		case "retry.backoff.max.ms":
			ms(key, v, &c.RetryBackoffMax)
		case "reconnect.backoff.ms":
			ms(key, v, &c.ReconnectBackoff)
		case "reconnect.backoff.max.ms":
			ms(key, v, &c.ReconnectBackoffMax)
		case "metadata.max.age.ms":
			ms(key, v, &c.MetadataMaxAge)
		case "key.deserializer", "value.deserializer":
		default:
			if !sec.Take(key, v) {
				errs = append(errs, fmt.Errorf("%s: unknown consumer property", key))
			}
		}
	}
	c.TLS, c.SASL = sec.Resolve(func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	})
	if err := errors.Join(errs...); err != nil {
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
