package producer

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/props"
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
	// The codecs' levels (KIP-390); 0 means Kafka's default: gzip -1 (the
	// codec's default), lz4 9 (the fast compressor), zstd 3.
	CompressionGzipLevel int // compression.gzip.level: 1..9 or -1
	CompressionLZ4Level  int // compression.lz4.level: 1..17
	CompressionZstdLevel int // compression.zstd.level: -131072..22
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
	batchOpts  recordbatch.Options // how batches are built: codec, its level, transactional
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
	c.BatchSize = cmp.Or(c.BatchSize, defaultBatchSize)
	c.BufferMemory = cmp.Or(c.BufferMemory, defaultBufferMemory)
	c.MaxRequestSize = cmp.Or(c.MaxRequestSize, defaultMaxRequestSize)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, defaultMaxInFlight)
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
	level := map[recordbatch.Codec]int{recordbatch.Gzip: c.CompressionGzipLevel, recordbatch.LZ4: c.CompressionLZ4Level,
		recordbatch.Zstd: c.CompressionZstdLevel}[codec]
	opts := recordbatch.Options{Compression: codec, Level: level, Transactional: c.TransactionalID != ""}
	return settings{Config: c, idempotent: idem, codec: codec, batchOpts: opts}
}

// Validate reports every problem with c at once (joined with errors.Join,
// each wrapping ErrInvalidConfig), naming Kafka's keys.
func (c Config) Validate() error {
	p := props.Problems{Wrap: ErrInvalidConfig}
	s := c.settings()
	if len(c.BootstrapServers) == 0 {
		p.Add("bootstrap.servers", "must list at least one host:port")
	}
	for _, b := range c.BootstrapServers {
		if !strings.Contains(b, ":") {
			p.Add("bootstrap.servers", "%q is not host:port", b)
		}
	}
	if c.Acks < AcksAll || c.Acks > AcksLeader {
		p.Add("acks", "must be one of all, -1, 0, 1; got %d", c.Acks)
	}
	if c.BatchSize < 0 {
		p.Add("batch.size", "must be >= 0; got %d", c.BatchSize)
	}
	if c.BufferMemory < 0 {
		p.Add("buffer.memory", "must be >= 0; got %d", c.BufferMemory)
	}
	if c.MaxRequestSize < 0 {
		p.Add("max.request.size", "must be >= 0; got %d", c.MaxRequestSize)
	}
	if c.MaxInFlight < 0 {
		p.Add("max.in.flight.requests.per.connection", "must be >= 1; got %d", c.MaxInFlight)
	}
	if _, err := recordbatch.ParseCodec(c.CompressionType); err != nil {
		p.Add("compression.type", "must be one of none, gzip, snappy, lz4, zstd; got %q", c.CompressionType)
	}
	for _, l := range []struct {
		codec recordbatch.Codec
		level int
	}{{recordbatch.Gzip, c.CompressionGzipLevel}, {recordbatch.LZ4, c.CompressionLZ4Level}, {recordbatch.Zstd, c.CompressionZstdLevel}} {
		if err := recordbatch.CheckLevel(l.codec, l.level); err != nil {
			p.Add("compression."+l.codec.String()+".level", "%v", err)
		}
	}
	if c.RequestTimeout < 0 {
		p.Add("request.timeout.ms", "must be >= 0; got %v", c.RequestTimeout)
	}
	if c.DeliveryTimeout < 0 {
		p.Add("delivery.timeout.ms", "must be >= 0; got %v", c.DeliveryTimeout)
	} else if s.DeliveryTimeout < s.Linger+s.RequestTimeout {
		p.Add("delivery.timeout.ms", "should be equal to or larger than linger.ms + request.timeout.ms (%d ms); got %d ms",
			(s.Linger + s.RequestTimeout).Milliseconds(), s.DeliveryTimeout.Milliseconds())
	}
	if c.EnableIdempotence != nil && *c.EnableIdempotence {
		if c.Acks != AcksAll {
			p.Add("acks", "must be all (-1) when enable.idempotence=true; got %s", c.Acks)
		}
		if s.MaxInFlight > maxIdempotentInFlight {
			p.Add("max.in.flight.requests.per.connection", "must be at most %d when enable.idempotence=true; got %d", maxIdempotentInFlight, s.MaxInFlight)
		}
		if s.Retries == 0 {
			p.Add("retries", "must be greater than 0 when enable.idempotence=true")
		}
	}
	if c.TransactionalID != "" && !s.idempotent {
		p.Add("enable.idempotence", "transactional.id requires enable.idempotence=true (and acks=all, max.in.flight.requests.per.connection <= 5, retries > 0)")
	}
	if s := c.SASL; s != nil {
		if err := client.ValidateSASL(s.Mechanism, s.User, s.TokenSource); err != nil {
			return errors.Join(p.Err(), err)
		}
	}
	return p.Err()
}

// ConfigFromProperties builds a Config from Kafka producer properties
// (bootstrap.servers, acks, linger.ms, ...). Unknown keys and malformed
// values are errors naming the key; all problems are reported at once. The
// result is not yet validated: call Validate (New does).
func ConfigFromProperties(properties map[string]string) (Config, error) {
	var c Config
	p := props.Problems{Wrap: ErrInvalidConfig}
	// ms turns a *.ms property into a Duration, mapping an explicit 0 to
	// the negative "zero" of Config where zero means default.
	ms := func(key, v string) time.Duration {
		if d := p.Millis(key, v, 0); d != 0 {
			return d
		}
		return -1
	}
	var partitioner string
	var conn client.ClientProps
	for _, k := range slices.Sorted(maps.Keys(properties)) {
		v := properties[k]
		switch k {
		case "acks":
			switch strings.TrimSpace(v) {
			case "all", "-1":
				c.Acks = AcksAll
			case "0":
				c.Acks = AcksNone
			case "1":
				c.Acks = AcksLeader
			default:
				p.Add(k, "must be one of all, -1, 0, 1; got %q", v)
			}
		case "linger.ms":
			c.Linger = ms(k, v)
		case "batch.size":
			// batch.size=0 disables batching: one record per batch.
			c.BatchSize = max(int(p.Int(k, v, 0, math.MaxInt32)), 1)
		case "buffer.memory":
			c.BufferMemory = p.Int(k, v, 1, math.MaxInt64)
		case "max.block.ms":
			c.MaxBlock = ms(k, v)
		case "max.request.size":
			c.MaxRequestSize = int(p.Int(k, v, 1, math.MaxInt32))
		case "compression.type":
			c.CompressionType = strings.TrimSpace(v)
			if _, err := recordbatch.ParseCodec(c.CompressionType); err != nil {
				p.Add(k, "must be one of none, gzip, snappy, lz4, zstd; got %q", v)
			}
		case "compression.gzip.level":
			c.CompressionGzipLevel = parseLevel(&p, k, v, recordbatch.Gzip)
		case "compression.lz4.level":
			c.CompressionLZ4Level = parseLevel(&p, k, v, recordbatch.LZ4)
		case "compression.zstd.level":
			c.CompressionZstdLevel = parseLevel(&p, k, v, recordbatch.Zstd)
		case "enable.idempotence":
			b := p.Bool(k, v)
			c.EnableIdempotence = &b
		case "max.in.flight.requests.per.connection":
			c.MaxInFlight = int(p.Int(k, v, 1, math.MaxInt32))
		case "retries":
			c.Retries = int(min(p.Int(k, v, 0, math.MaxInt64), math.MaxInt32))
			if c.Retries == 0 {
				c.Retries = -1
			}
		case "retry.backoff.ms":
			c.RetryBackoff = ms(k, v)
		case "retry.backoff.max.ms":
			c.RetryBackoffMax = p.Millis(k, v, 1)
		case "request.timeout.ms":
			c.RequestTimeout = p.Millis(k, v, 1)
		case "delivery.timeout.ms":
			c.DeliveryTimeout = p.Millis(k, v, 1)
		case "metadata.max.age.ms":
			c.MetadataMaxAge = p.Millis(k, v, 1)
		case "partitioner.class", "partitioner":
			partitioner = strings.TrimSpace(v)
		case "transactional.id":
			c.TransactionalID = v
		case "transaction.timeout.ms":
			c.TransactionTimeout = p.Millis(k, v, 1)
		default:
			if !conn.Take(k, v) {
				p.Unknown(k, "producer")
			}
		}
	}
	if partitioner != "" {
		pt, err := PartitionerByName(partitioner, c.BatchSize)
		if err != nil {
			p.Add("partitioner.class", "%v", err)
		}
		c.Partitioner = pt
	}
	c.BootstrapServers, c.ClientID = conn.BootstrapServers, conn.ClientID
	c.TLS, c.SASL = conn.Resolve(p.Add)
	return c, p.Err()
}

// parseLevel reads a compression.<codec>.level property. Unlike the
// Config field, where 0 means the default, a property of 0 is out of
// range for gzip and lz4, as in Kafka; zstd's 0 is zstd's own default.
func parseLevel(p *props.Problems, key, value string, codec recordbatch.Codec) int {
	n := int(p.Int(key, value, math.MinInt32, math.MaxInt32))
	if recordbatch.CheckLevel(codec, n) != nil || n == 0 && codec != recordbatch.Zstd {
		p.Add(key, "must be in %s; got %q", recordbatch.ValidLevels(codec), value)
		return 0
	}
	return n
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
