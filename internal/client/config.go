package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kafkit/kafkit"
)

// SASL mechanisms understood by Config.SASL.Mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// SASL holds sasl.mechanism and the JAAS user and password.
type SASL struct {
	Mechanism string // MechanismPlain, MechanismScramSHA256, MechanismScramSHA512 or MechanismOAuthBearer
	User      string
	Password  string
	// TokenSource gives OAUTHBEARER's token for each new connection.
	TokenSource kafkit.TokenSource
}

// Config configures a Client. The zero value of every field except
// SeedBrokers means Kafka's default.
type Config struct {
	SeedBrokers []string    // bootstrap.servers, host:port
	ClientID    string      // client.id, sent in every request header; default "kafkit"
	TLS         *tls.Config // non-nil enables TLS (security.protocol SSL / SASL_SSL)
	SASL        *SASL       // non-nil enables SASL (SASL_PLAINTEXT / SASL_SSL)

	DialTimeout         time.Duration // socket.connection.setup.timeout.ms; default 10s
	RequestTimeout      time.Duration // request.timeout.ms; default 30s
	MetadataMaxAge      time.Duration // metadata.max.age.ms; default 5m
	ReconnectBackoff    time.Duration // reconnect.backoff.ms; default 50ms
	ReconnectBackoffMax time.Duration // reconnect.backoff.max.ms; default 1s
	RetryBackoff        time.Duration // retry.backoff.ms; default 100ms
	RetryBackoffMax     time.Duration // retry.backoff.max.ms; default 1s
	ConnMaxIdle         time.Duration // connections.max.idle.ms; default 9m

	// SoftwareName and SoftwareVersion are sent in ApiVersions v3+
	// (client.software.name / version); defaults "kafkit" and "0.1.0".
	SoftwareName, SoftwareVersion string

	// AllowAutoTopicCreation is sent in Metadata requests: the broker then
	// creates unknown topics (if its auto.create.topics.enable allows), as
	// Java's producer always asks and its consumer does with
	// allow.auto.create.topics (default true).
	AllowAutoTopicCreation bool

	Logger *slog.Logger // default: discard
}

// withDefaults returns cfg with zero values replaced by Kafka's defaults.
func (cfg Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.RequestTimeout, 30*time.Second)
	def(&cfg.MetadataMaxAge, 5*time.Minute)
	def(&cfg.ReconnectBackoff, 50*time.Millisecond)
	def(&cfg.ReconnectBackoffMax, time.Second)
	def(&cfg.RetryBackoff, 100*time.Millisecond)
	def(&cfg.RetryBackoffMax, time.Second)
	def(&cfg.ConnMaxIdle, 9*time.Minute)
	if cfg.ClientID == "" {
		cfg.ClientID = "kafkit"
	}
	if cfg.SoftwareName == "" {
		cfg.SoftwareName = "kafkit"
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = "0.1.0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Validate reports every problem with cfg at once, naming Kafka's keys.
func (cfg Config) Validate() error {
	var errs []error
	if len(cfg.SeedBrokers) == 0 {
		errs = append(errs, errors.New("bootstrap.servers: at least one broker is required"))
	}
	for name, d := range map[string]time.Duration{
		"socket.connection.setup.timeout.ms": cfg.DialTimeout,
		"request.timeout.ms":                 cfg.RequestTimeout,
		"metadata.max.age.ms":                cfg.MetadataMaxAge,
		"reconnect.backoff.ms":               cfg.ReconnectBackoff,
		"reconnect.backoff.max.ms":           cfg.ReconnectBackoffMax,
		"retry.backoff.ms":                   cfg.RetryBackoff,
		"retry.backoff.max.ms":               cfg.RetryBackoffMax,
		"connections.max.idle.ms":            cfg.ConnMaxIdle,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %v", name, d))
		}
	}
	if s := cfg.SASL; s != nil {
		errs = append(errs, ValidateSASL(s.Mechanism, s.User, s.TokenSource))
	}
	return errors.Join(errs...)
}

// ValidateSASL checks a SASL setting as every client (producer, consumer,
// admin) does: a known mechanism with a user, or OAUTHBEARER with a token
// source.
func ValidateSASL(mechanism, user string, tokens kafkit.TokenSource) error {
	var errs []error
	switch mechanism {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
	case MechanismOAuthBearer:
		if tokens == nil {
			return errors.New("sasl.jaas.config: OAUTHBEARER needs a token source")
		}
		return nil
	default:
		errs = append(errs, fmt.Errorf("sasl.mechanism: unsupported %q (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)", mechanism))
	}
	if user == "" {
		errs = append(errs, errors.New("sasl.jaas.config: user is required"))
	}
	return errors.Join(errs...)
}

// FromSASL converts the SDK's public SASL setting (kafkit.SASL, shared by
// producer, consumer and admin configs) into the client's; nil stays nil.
func FromSASL(s *kafkit.SASL) *SASL {
	if s == nil {
		return nil
	}
	return &SASL{Mechanism: s.Mechanism, User: s.User, Password: s.Password, TokenSource: s.TokenSource}
}
