package admin

import (
	"cmp"
	"crypto/tls"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/props"
)

// Config configures a Client. The zero value of every field except
// BootstrapServers means Kafka's default.
type Config struct {
	BootstrapServers []string // bootstrap.servers (this or BootstrapControllers is required)
	// BootstrapControllers, instead of BootstrapServers, makes the client
	// talk to a KRaft cluster's controllers, on their CONTROLLER
	// endpoints (bootstrap.controllers, KIP-919; the tools'
	// --bootstrap-controller): DescribeCluster describes the controllers,
	// DescribeMetadataQuorum and UnregisterBroker go to the active one.
	// Other calls need brokers.
	BootstrapControllers []string
	ClientID             string       // client.id; default "kafkit-admin"
	TLS                  *tls.Config  // non-nil: security.protocol SSL (or SASL_SSL with SASL)
	SASL                 *kafkit.SASL // non-nil: security.protocol SASL_PLAINTEXT (or SASL_SSL with TLS)

	RequestTimeout  time.Duration // request.timeout.ms; default 30s
	RetryBackoff    time.Duration // retry.backoff.ms; default 100ms
	RetryBackoffMax time.Duration // retry.backoff.max.ms; default 1s

	Logger *slog.Logger // default: discard
}

func (c Config) withDefaults() Config {
	c.ClientID = cmp.Or(c.ClientID, "kafkit-admin")
	c.RetryBackoff = cmp.Or(c.RetryBackoff, 100*time.Millisecond)
	c.RetryBackoffMax = cmp.Or(c.RetryBackoffMax, time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem with c at once, naming Kafka's keys.
func (c Config) Validate() error {
	p := props.Problems{Wrap: ErrInvalidConfig}
	switch {
	case len(c.BootstrapServers) > 0 && len(c.BootstrapControllers) > 0:
		p.Add("bootstrap.controllers", "You cannot specify both bootstrap.servers and bootstrap.controllers.")
	case len(c.BootstrapServers) == 0 && len(c.BootstrapControllers) == 0:
		p.Add("bootstrap.servers", "at least one host:port is required (or bootstrap.controllers)")
	}
	for _, addrs := range []struct {
		key  string
		list []string
	}{{"bootstrap.servers", c.BootstrapServers}, {"bootstrap.controllers", c.BootstrapControllers}} {
		for _, s := range addrs.list {
			if i := strings.LastIndexByte(s, ':'); i <= 0 || i == len(s)-1 {
				p.Add(addrs.key, "%q is not host:port", s)
			}
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"request.timeout.ms", c.RequestTimeout},
		{"retry.backoff.max.ms", c.RetryBackoffMax},
		{"retry.backoff.ms", c.RetryBackoff},
	} {
		if d.v < 0 {
			p.Add(d.key, "must not be negative, got %v", d.v)
		}
	}
	if s := c.SASL; s != nil {
		if err := client.ValidateSASL(s.Mechanism, s.User, s.TokenSource); err != nil {
			return errors.Join(p.Err(), err)
		}
	}
	return p.Err()
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
	if len(c.BootstrapControllers) > 0 {
		cfg.SeedBrokers = c.BootstrapControllers
	}
	if c.SASL != nil {
		cfg.SASL = client.FromSASL(c.SASL)
	}
	return cfg
}

// ConfigFromProperties builds a Config from Kafka admin client properties,
// such as the --command-config file of Kafka's tools: bootstrap.servers or
// bootstrap.controllers, client.id, request.timeout.ms, retry.backoff.ms, retry.backoff.max.ms,
// security.protocol, sasl.mechanism, sasl.jaas.config. Unknown keys and
// malformed values are errors naming the key, all reported at once; the
// result is validated.
func ConfigFromProperties(properties map[string]string) (Config, error) {
	var c Config
	p := props.Problems{Wrap: ErrInvalidConfig}
	var conn client.ClientProps
	for _, k := range slices.Sorted(maps.Keys(properties)) {
		v := properties[k]
		switch k {
		case "request.timeout.ms":
			c.RequestTimeout = p.Millis(k, v, 0)
		case "retry.backoff.ms":
			c.RetryBackoff = p.Millis(k, v, 0)
		case "retry.backoff.max.ms":
			c.RetryBackoffMax = p.Millis(k, v, 0)
		case "bootstrap.controllers":
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					c.BootstrapControllers = append(c.BootstrapControllers, a)
				}
			}
		default:
			if !conn.Take(k, v) {
				p.Unknown(k, "admin client")
			}
		}
	}
	c.BootstrapServers, c.ClientID = conn.BootstrapServers, conn.ClientID
	c.TLS, c.SASL = conn.Resolve(p.Add)
	if err := errors.Join(p.Err(), c.Validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}
