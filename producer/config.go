package producer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Acks is the acks setting: how many replicas must have a record before the
// broker acknowledges it. The zero value is Kafka's default, all.
type Acks int8

const (
	AcksAll    Acks = iota // acks=all (-1): every in-sync replica; the default
	AcksNone               // acks=0: no acknowledgement, no retries, no offsets
	AcksLeader             // acks=1: the leader only
)

func (a Acks) wire() int16 {
	switch a {
	case AcksNone:
		return 0
	case AcksLeader:
		return 1
	}
	return -1
}

func (a Acks) String() string {
	switch a {
	case AcksAll:
		return "all"
	case AcksNone:
		return "0"
	case AcksLeader:
		return "1"
	}
	return fmt.Sprintf("Acks(%d)", int8(a))
}

// SASL is sasl.mechanism with the user and password of sasl.jaas.config.
type SASL = kafkit.SASL

// Config configures a Producer. The zero value of every field means Kafka's
// default (noted per field). Where Kafka gives 0 a meaning of its own
// (linger.ms=0, max.block.ms=0, retries=0, retry.backoff.ms=0), set the
// field negative to get it: zero is always "default".
type Config struct {
	BootstrapServers []string    // bootstrap.servers (required)
	ClientID         string      // client.id; default "kafkit"
	TLS              *tls.Config // non-nil: security.protocol SSL (or SASL_SSL with SASL)
	SASL             *SASL       // non-nil: security.protocol SASL_PLAINTEXT (or SASL_SSL with TLS)

	Acks            Acks          // acks; default all
	Linger          time.Duration // linger.ms; default 5ms (Kafka 4.0); negative: 0
	BatchSize       int           // batch.size in bytes; default 16384
	BufferMemory    int64         // buffer.memory in bytes; default 33554432
	MaxBlock        time.Duration // max.block.ms; default 60s; negative: 0 (never block)
	MaxRequestSize  int           // max.request.size; default 1048576
	CompressionType string        // compression.type: none, gzip, snappy, lz4, zstd; default none
	// EnableIdempotence is enable.idempotence. nil (the default) enables it
	// unless acks, retries or max.in.flight.requests.per.connection conflict
	// with it, as Java does; an explicit true with a conflict is an error.
	EnableIdempotence *bool
	MaxInFlight       int           // max.in.flight.requests.per.connection; default 5
	Retries           int           // retries; default math.MaxInt32; negative: 0
	RetryBackoff      time.Duration // retry.backoff.ms; default 100ms; negative: 0
	RetryBackoffMax   time.Duration // retry.backoff.max.ms; default 1s
	RequestTimeout    time.Duration // request.timeout.ms; default 30s
	DeliveryTimeout   time.Duration // delivery.timeout.ms; default 120s
	MetadataMaxAge    time.Duration // metadata.max.age.ms; default 5m

	// Partitioner chooses partitions for records without one; nil means
	// the default partitioner (murmur2 for keys, KIP-794 sticky otherwise).
	Partitioner Partitioner
	// Interceptors see every record before partitioning and its outcome,
	// in order.
	Interceptors []Interceptor

	TransactionalID    string        // transactional.id; enables transactions
	TransactionTimeout time.Duration // transaction.timeout.ms; default 60s

	Logger *slog.Logger // default: discard
}

// Kafka's defaults.
const (
	defaultLinger          = 5 * time.Millisecond
	defaultBufferMemory    = 32 << 20
	defaultMaxBlock        = 60 * time.Second
	defaultMaxRequestSize  = 1 << 20
	defaultMaxInFlight     = 5
	defaultRetryBackoff    = 100 * time.Millisecond
	defaultRetryBackoffMax = time.Second
	defaultRequestTimeout  = 30 * time.Second
	defaultDeliveryTimeout = 120 * time.Second
	defaultTxnTimeout      = 60 * time.Second
	defaultMetadataMaxAge  = 5 * time.Minute
	maxIdempotentInFlight  = 5
)

// settings is a Config with defaults applied and negative "zero" values
// turned into zeros: what the producer runs with.
type settings struct {
	Config
	idempotent bool
	codec      recordbatch.Codec
}

func (c Config) settings() settings {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		} else if *d < 0 {
			*d = 0
		}
	}
	def(&c.Linger, defaultLinger)
	def(&c.MaxBlock, defaultMaxBlock)
	def(&c.RetryBackoff, defaultRetryBackoff)
	def(&c.RetryBackoffMax, defaultRetryBackoffMax)
	def(&c.RequestTimeout, defaultRequestTimeout)
	if c.DeliveryTimeout == 0 {
		// As Java does when delivery.timeout.ms is not set, keep it at
		// least linger.ms + request.timeout.ms.
		c.DeliveryTimeout = max(defaultDeliveryTimeout, c.Linger+c.RequestTimeout)
	}
	def(&c.TransactionTimeout, defaultTxnTimeout)
	def(&c.MetadataMaxAge, defaultMetadataMaxAge)
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.BufferMemory == 0 {
		c.BufferMemory = defaultBufferMemory
	}
	if c.MaxRequestSize == 0 {
		c.MaxRequestSize = defaultMaxRequestSize
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	switch {
	case c.Retries == 0:
		c.Retries = math.MaxInt32
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	codec, _ := recordbatch.ParseCodec(c.CompressionType)
	idem := c.Acks == AcksAll && c.MaxInFlight <= maxIdempotentInFlight && c.Retries > 0
	if c.EnableIdempotence != nil {
		idem = *c.EnableIdempotence
	}
	return settings{Config: c, idempotent: idem, codec: codec}
}

// Validate reports every problem with c at once (joined with errors.Join,
// each wrapping ErrInvalidConfig), naming Kafka's keys.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...)))
	}
	s := c.settings()
	if len(c.BootstrapServers) == 0 {
		bad("bootstrap.servers", "must list at least one host:port")
	}
	for _, b := range c.BootstrapServers {
		if !strings.Contains(b, ":") {
			bad("bootstrap.servers", "%q is not host:port", b)
		}
	}
	if c.Acks < AcksAll || c.Acks > AcksLeader {
		bad("acks", "must be one of all, -1, 0, 1; got %d", c.Acks)
	}
	if c.BatchSize < 0 {
		bad("batch.size", "must be >= 0; got %d", c.BatchSize)
	}
	if c.BufferMemory < 0 {
		bad("buffer.memory", "must be >= 0; got %d", c.BufferMemory)
	}
	if c.MaxRequestSize < 0 {
		bad("max.request.size", "must be >= 0; got %d", c.MaxRequestSize)
	}
	if c.MaxInFlight < 0 {
		bad("max.in.flight.requests.per.connection", "must be >= 1; got %d", c.MaxInFlight)
	}
	if _, err := recordbatch.ParseCodec(c.CompressionType); err != nil {
		bad("compression.type", "must be one of none, gzip, snappy, lz4, zstd; got %q", c.CompressionType)
	}
	if c.RequestTimeout < 0 {
		bad("request.timeout.ms", "must be >= 0; got %v", c.RequestTimeout)
	}
	if c.DeliveryTimeout < 0 {
		bad("delivery.timeout.ms", "must be >= 0; got %v", c.DeliveryTimeout)
	} else if s.DeliveryTimeout < s.Linger+s.RequestTimeout {
		bad("delivery.timeout.ms", "should be equal to or larger than linger.ms + request.timeout.ms (%d ms); got %d ms",
			(s.Linger + s.RequestTimeout).Milliseconds(), s.DeliveryTimeout.Milliseconds())
	}
	if c.EnableIdempotence != nil && *c.EnableIdempotence {
		if c.Acks != AcksAll {
			bad("acks", "must be all (-1) when enable.idempotence=true; got %s", c.Acks)
		}
		if s.MaxInFlight > maxIdempotentInFlight {
			bad("max.in.flight.requests.per.connection", "must be at most %d when enable.idempotence=true; got %d", maxIdempotentInFlight, s.MaxInFlight)
		}
		if s.Retries == 0 {
			bad("retries", "must be greater than 0 when enable.idempotence=true")
		}
	}
	if c.TransactionalID != "" && !s.idempotent {
		bad("enable.idempotence", "transactional.id requires enable.idempotence=true (and acks=all, max.in.flight.requests.per.connection <= 5, retries > 0)")
	}
	if c.SASL != nil && !slices.Contains([]string{client.MechanismPlain, client.MechanismScramSHA256, client.MechanismScramSHA512}, c.SASL.Mechanism) {
		bad("sasl.mechanism", "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; got %q", c.SASL.Mechanism)
	}
	return errors.Join(errs...)
}

// ConfigFromProperties builds a Config from Kafka producer properties
// (bootstrap.servers, acks, linger.ms, ...). Unknown keys and malformed
// values are errors naming the key; all problems are reported at once. The
// result is not yet validated: call Validate (New does).
func ConfigFromProperties(props map[string]string) (Config, error) {
	var c Config
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...)))
	}
	intVal := func(key, v string, min int64) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < min {
			bad(key, "must be an integer >= %d; got %q", min, v)
		}
		return n
	}
	// ms turns a *.ms property into a Duration, mapping an explicit 0 to
	// the negative "zero" of Config where zero means default.
	ms := func(key, v string) time.Duration {
		n := intVal(key, v, 0)
		if n == 0 {
			return -1
		}
		return time.Duration(n) * time.Millisecond
	}
	// msPositive is ms for keys where 0 means nothing.
	msPositive := func(key, v string) time.Duration {
		return time.Duration(intVal(key, v, 1)) * time.Millisecond
	}
	var partitioner string
	var sec client.SecurityProps
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range props {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		v := props[k]
		switch k {
		case "bootstrap.servers":
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.BootstrapServers = append(c.BootstrapServers, s)
				}
			}
		case "client.id":
			c.ClientID = v
		case "acks":
			switch strings.TrimSpace(v) {
			case "all", "-1":
				c.Acks = AcksAll
			case "0":
				c.Acks = AcksNone
			case "1":
				c.Acks = AcksLeader
			default:
				bad(k, "must be one of all, -1, 0, 1; got %q", v)
			}
		case "linger.ms":
			c.Linger = ms(k, v)
		case "batch.size":
			c.BatchSize = int(intVal(k, v, 0))
			if c.BatchSize == 0 {
				c.BatchSize = 1 // batch.size=0 disables batching: one record per batch
			}
		case "buffer.memory":
			c.BufferMemory = intVal(k, v, 1)
		case "max.block.ms":
			c.MaxBlock = ms(k, v)
		case "max.request.size":
			c.MaxRequestSize = int(intVal(k, v, 1))
		case "compression.type":
			c.CompressionType = strings.TrimSpace(v)
			if _, err := recordbatch.ParseCodec(c.CompressionType); err != nil {
				bad(k, "must be one of none, gzip, snappy, lz4, zstd; got %q", v)
			}
		case "enable.idempotence":
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				bad(k, "must be true or false; got %q", v)
			}
			c.EnableIdempotence = &b
		case "max.in.flight.requests.per.connection":
			c.MaxInFlight = int(intVal(k, v, 1))
		case "retries":
			c.Retries = int(min(intVal(k, v, 0), math.MaxInt32))
			if c.Retries == 0 {
				c.Retries = -1
			}
		case "retry.backoff.ms":
			c.RetryBackoff = ms(k, v)
		case "retry.backoff.max.ms":
			c.RetryBackoffMax = msPositive(k, v)
		case "request.timeout.ms":
			c.RequestTimeout = msPositive(k, v)
		case "delivery.timeout.ms":
			c.DeliveryTimeout = msPositive(k, v)
		case "metadata.max.age.ms":
			c.MetadataMaxAge = msPositive(k, v)
		case "partitioner.class", "partitioner":
			partitioner = strings.TrimSpace(v)
		case "transactional.id":
			c.TransactionalID = v
		case "transaction.timeout.ms":
			c.TransactionTimeout = msPositive(k, v)
		default:
			if !sec.Take(k, v) {
				bad(k, "unknown producer property")
			}
		}
	}
	if partitioner != "" {
		p, err := PartitionerByName(partitioner, c.BatchSize)
		if err != nil {
			bad("partitioner.class", "%v", err)
		}
		c.Partitioner = p
	}
	c.TLS, c.SASL = sec.Resolve(bad)
	return c, errors.Join(errs...)
}

// clientConfig is the internal/client configuration the producer's settings
// imply.
func (s settings) clientConfig() client.Config {
	cfg := client.Config{
		SeedBrokers:     s.BootstrapServers,
		ClientID:        s.ClientID,
		TLS:             s.TLS,
		RequestTimeout:  s.RequestTimeout,
		MetadataMaxAge:  s.MetadataMaxAge,
		RetryBackoff:    s.RetryBackoff,
		RetryBackoffMax: s.RetryBackoffMax,
		// Java's producer always lets Metadata create the topic it writes to
		// (the broker's auto.create.topics.enable decides).
		AllowAutoTopicCreation: true,
		Logger:                 s.Logger,
	}
	if s.SASL != nil {
		cfg.SASL = client.FromSASL(s.SASL)
	}
	return cfg
}
