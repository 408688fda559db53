package consumer

import (
	"cmp"
	"crypto/tls"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/props"
)

// Values of share.acknowledgement.mode.
const (
	// AcknowledgeImplicit accepts every record a Poll returned when the
	// next Poll, CommitSync, CommitAsync or Close comes (Java's default).
	AcknowledgeImplicit = "implicit"
	// AcknowledgeExplicit leaves each record to Acknowledge; Poll refuses
	// to run while records of the previous Poll are unacknowledged.
	AcknowledgeExplicit = "explicit"
)

// ShareConfig configures a ShareConsumer (KIP-932's KafkaShareConsumer).
// The zero value of every field means Kafka's default; the Kafka key is in
// each field's comment. Where a share group starts on a partition is the
// group's share.auto.offset.reset config, set on the broker (admin), not
// here.
type ShareConfig struct {
	BootstrapServers []string // bootstrap.servers
	ClientID         string   // client.id; default "kafkit-share-consumer"
	GroupID          string   // group.id; required

	AcknowledgementMode string        // share.acknowledgement.mode: implicit (default) or explicit
	MaxPollRecords      int           // max.poll.records; default 500
	FetchMinBytes       int32         // fetch.min.bytes; default 1
	FetchMaxBytes       int32         // fetch.max.bytes; default 52428800
	FetchMaxWait        time.Duration // fetch.max.wait.ms; default 500ms

	RequestTimeout      time.Duration // request.timeout.ms; default 30s
	DefaultAPITimeout   time.Duration // default.api.timeout.ms; default 60s (bounds Close)
	RetryBackoff        time.Duration // retry.backoff.ms; default 100ms
	RetryBackoffMax     time.Duration // retry.backoff.max.ms; default 1s
	ReconnectBackoff    time.Duration // reconnect.backoff.ms; default 50ms
	ReconnectBackoffMax time.Duration // reconnect.backoff.max.ms; default 1s
	MetadataMaxAge      time.Duration // metadata.max.age.ms; default 5m

	TLS  *tls.Config  // security.protocol SSL / SASL_SSL
	SASL *kafkit.SASL // sasl.mechanism, sasl.username, sasl.password

	// OnAcknowledgementCommit is Java's AcknowledgementCommitCallback: the
	// broker's answer for each partition's acknowledged offsets (err nil
	// when they took effect). It runs on the goroutine calling Poll,
	// CommitSync or Close, never concurrently with them.
	OnAcknowledgementCommit func(tp kafkit.TopicPartition, offsets []int64, err error)

	Logger *slog.Logger // default: discard
}

func (c ShareConfig) withDefaults() ShareConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.FetchMaxWait, 500*time.Millisecond)
	def(&c.RequestTimeout, 30*time.Second)
	def(&c.DefaultAPITimeout, 60*time.Second)
	def(&c.RetryBackoff, 100*time.Millisecond)
	def(&c.RetryBackoffMax, time.Second)
	def(&c.ReconnectBackoff, 50*time.Millisecond)
	def(&c.ReconnectBackoffMax, time.Second)
	def(&c.MetadataMaxAge, 5*time.Minute)
	c.ClientID = cmp.Or(c.ClientID, "kafkit-share-consumer")
	c.AcknowledgementMode = cmp.Or(c.AcknowledgementMode, AcknowledgeImplicit)
	c.MaxPollRecords = cmp.Or(c.MaxPollRecords, 500)
	c.FetchMinBytes = cmp.Or(c.FetchMinBytes, 1)
	c.FetchMaxBytes = cmp.Or(c.FetchMaxBytes, 52428800)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c *ShareConfig) durations() map[string]*time.Duration {
	return map[string]*time.Duration{
		"fetch.max.wait.ms": &c.FetchMaxWait, "request.timeout.ms": &c.RequestTimeout,
		"default.api.timeout.ms": &c.DefaultAPITimeout, "retry.backoff.ms": &c.RetryBackoff,
		"retry.backoff.max.ms": &c.RetryBackoffMax, "reconnect.backoff.ms": &c.ReconnectBackoff,
		"reconnect.backoff.max.ms": &c.ReconnectBackoffMax, "metadata.max.age.ms": &c.MetadataMaxAge,
	}
}

// Validate reports every problem at once, naming Kafka's keys.
func (c ShareConfig) Validate() error {
	var p props.Problems
	if len(c.BootstrapServers) == 0 {
		p.Add("bootstrap.servers", "at least one broker is required")
	}
	if c.GroupID == "" {
		p.Add("group.id", "a share consumer needs a group")
	}
	durations := c.durations()
	for _, key := range slices.Sorted(maps.Keys(durations)) {
		if v := *durations[key]; v < 0 {
			p.Add(key, "must not be negative, got %v", v)
		}
	}
	switch c.withDefaults().AcknowledgementMode {
	case AcknowledgeImplicit, AcknowledgeExplicit:
	default:
		p.Add("share.acknowledgement.mode", "must be implicit or explicit, got %q", c.AcknowledgementMode)
	}
	if c.MaxPollRecords < 0 {
		p.Add("max.poll.records", "must be at least 1, got %d", c.MaxPollRecords)
	}
	if c.FetchMinBytes < 0 || c.FetchMaxBytes < 0 {
		p.Add("fetch.min.bytes", "fetch.min.bytes and fetch.max.bytes must not be negative")
	}
	if c.SASL != nil {
		if err := (client.Config{SeedBrokers: []string{"-"}, SASL: client.FromSASL(c.SASL)}).Validate(); err != nil {
			return errors.Join(p.Err(), err)
		}
	}
	return p.Err()
}

func (c ShareConfig) clientConfig() client.Config {
	return client.Config{
		SeedBrokers: c.BootstrapServers, ClientID: c.ClientID, TLS: c.TLS, SASL: client.FromSASL(c.SASL),
		RequestTimeout: c.RequestTimeout, MetadataMaxAge: c.MetadataMaxAge,
		ReconnectBackoff: c.ReconnectBackoff, ReconnectBackoffMax: c.ReconnectBackoffMax,
		RetryBackoff: c.RetryBackoff, RetryBackoffMax: c.RetryBackoffMax, Logger: c.Logger,
	}
}

// ShareConfigFromProperties builds a ShareConfig from Kafka share consumer
// properties (durations in milliseconds). Unknown keys are an error, except
// the deserializer classes Java configs carry.
func ShareConfigFromProperties(properties map[string]string) (ShareConfig, error) {
	var c ShareConfig
	var p props.Problems
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
		case "share.acknowledgement.mode":
			c.AcknowledgementMode = v
		case "max.poll.records":
			c.MaxPollRecords = int(p.Int(key, v, 1, math.MaxInt32))
		case "fetch.min.bytes":
			c.FetchMinBytes = int32(p.Int(key, v, 0, math.MaxInt32))
		case "fetch.max.bytes":
			c.FetchMaxBytes = int32(p.Int(key, v, 0, math.MaxInt32))
		case "key.deserializer", "value.deserializer":
		default:
			if !conn.Take(key, v) {
				p.Add(key, "unknown share consumer config")
			}
		}
	}
	c.BootstrapServers, c.ClientID = conn.BootstrapServers, conn.ClientID
	c.TLS, c.SASL = conn.SecurityProps.Resolve(p.Add)
	if err := p.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}
