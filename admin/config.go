package admin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
)

// Config configures a Client. The zero value of every field except
// BootstrapServers means Kafka's default.
type Config struct {
	BootstrapServers []string     // bootstrap.servers (required)
	ClientID         string       // client.id; default "kafkit-admin"
	TLS              *tls.Config  // non-nil: security.protocol SSL (or SASL_SSL with SASL)
	SASL             *kafkit.SASL // non-nil: security.protocol SASL_PLAINTEXT (or SASL_SSL with TLS)

	RequestTimeout  time.Duration // request.timeout.ms; default 30s
	RetryBackoff    time.Duration // retry.backoff.ms; default 100ms
	RetryBackoffMax time.Duration // retry.backoff.max.ms; default 1s

	Logger *slog.Logger // default: discard
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "kafkit-admin"
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem with c at once, naming Kafka's keys.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...)))
	}
	if len(c.BootstrapServers) == 0 {
		bad("bootstrap.servers", "at least one host:port is required")
	}
	for _, s := range c.BootstrapServers {
		if i := strings.LastIndexByte(s, ':'); i <= 0 || i == len(s)-1 {
			bad("bootstrap.servers", "%q is not host:port", s)
		}
	}
	for key, d := range map[string]time.Duration{
		"request.timeout.ms":   c.RequestTimeout,
		"retry.backoff.ms":     c.RetryBackoff,
		"retry.backoff.max.ms": c.RetryBackoffMax,
	} {
		if d < 0 {
			bad(key, "must not be negative, got %v", d)
		}
	}
	if s := c.SASL; s != nil {
		if !slices.Contains([]string{kafkit.SASLPlain, kafkit.SASLScramSHA256, kafkit.SASLScramSHA512}, s.Mechanism) {
			bad("sasl.mechanism", "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; got %q", s.Mechanism)
		}
		if s.User == "" {
			bad("sasl.jaas.config", "a username is required")
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func (c Config) clientConfig() client.Config {
	cfg := client.Config{
		SeedBrokers:     c.BootstrapServers,
		ClientID:        c.ClientID,
		TLS:             c.TLS,
		RequestTimeout:  c.RequestTimeout,
		RetryBackoff:    c.RetryBackoff,
		RetryBackoffMax: c.RetryBackoffMax,
		Logger:          c.Logger,
	}
	if c.SASL != nil {
		cfg.SASL = &client.SASL{Mechanism: c.SASL.Mechanism, User: c.SASL.User, Password: c.SASL.Password}
	}
	return cfg
}

// ConfigFromProperties builds a Config from Kafka admin client properties,
// such as the --command-config file of Kafka's tools: bootstrap.servers,
// client.id, request.timeout.ms, retry.backoff.ms, retry.backoff.max.ms,
// security.protocol, sasl.mechanism, sasl.jaas.config. Unknown keys and
// malformed values are errors naming the key, all reported at once; the
// result is validated.
func ConfigFromProperties(props map[string]string) (Config, error) {
	var c Config
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...)))
	}
	ms := func(key, v string) time.Duration {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			bad(key, "must be a non-negative number of milliseconds; got %q", v)
		}
		return time.Duration(n) * time.Millisecond
	}
	var sec client.SecurityProps
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range props {
			if !yield(k) {
				return
			}
		}
	}) {
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
		case "request.timeout.ms":
			c.RequestTimeout = ms(k, v)
		case "retry.backoff.ms":
			c.RetryBackoff = ms(k, v)
		case "retry.backoff.max.ms":
			c.RetryBackoffMax = ms(k, v)
		default:
			if !sec.Take(k, v) {
				bad(k, "unknown admin client property")
			}
		}
	}
	c.TLS, c.SASL = sec.Resolve(bad)
	if err := errors.Join(append(errs, c.Validate())...); err != nil {
		return Config{}, err
	}
	return c, nil
}
