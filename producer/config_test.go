package producer

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	s := Config{BootstrapServers: []string{"localhost:9092"}}.settings()
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"acks", s.Acks, AcksAll},
		{"linger.ms", s.Linger, 5 * time.Millisecond},
		{"batch.size", s.BatchSize, 16384},
		{"buffer.memory", s.BufferMemory, int64(33554432)},
		{"max.block.ms", s.MaxBlock, 60 * time.Second},
		{"compression.type", s.codec.String(), "none"},
		{"enable.idempotence", s.idempotent, true},
		{"max.in.flight.requests.per.connection", s.MaxInFlight, 5},
		{"retries", s.Retries, math.MaxInt32},
		{"retry.backoff.ms", s.RetryBackoff, 100 * time.Millisecond},
		{"request.timeout.ms", s.RequestTimeout, 30 * time.Second},
		{"delivery.timeout.ms", s.DeliveryTimeout, 120 * time.Second},
		{"max.request.size", s.MaxRequestSize, 1048576},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: default %v, want %v", c.key, c.got, c.want)
		}
	}
	if err := (Config{BootstrapServers: []string{"localhost:9092"}}).Validate(); err != nil {
		t.Errorf("zero config invalid: %v", err)
	}
	// An unset delivery.timeout.ms grows with request.timeout.ms, as in Java.
	long := Config{BootstrapServers: []string{"a:1"}, RequestTimeout: 200 * time.Second}
	if s := long.settings(); s.DeliveryTimeout != 200*time.Second+5*time.Millisecond {
		t.Errorf("delivery.timeout.ms %v", s.DeliveryTimeout)
	}
	if err := long.Validate(); err != nil {
		t.Errorf("long request.timeout.ms: %v", err)
	}
}

func TestConfigFromProperties(t *testing.T) {
	c, err := ConfigFromProperties(map[string]string{
		"bootstrap.servers":                     "a:9092, b:9093",
		"acks":                                  "1",
		"linger.ms":                             "0",
		"batch.size":                            "32768",
		"compression.type":                      "zstd",
		"enable.idempotence":                    "false",
		"max.in.flight.requests.per.connection": "10",
		"retries":                               "0",
		"delivery.timeout.ms":                   "60000",
		"transactional.id":                      "",
		"partitioner.class":                     "round_robin",
		"client.id":                             "me",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := c.settings()
	if len(c.BootstrapServers) != 2 || c.BootstrapServers[1] != "b:9093" || s.Acks != AcksLeader || s.Linger != 0 ||
		s.BatchSize != 32768 || s.CompressionType != "zstd" || s.idempotent || s.MaxInFlight != 10 || s.Retries != 0 ||
		s.DeliveryTimeout != time.Minute || c.ClientID != "me" || c.Partitioner == nil {
		t.Fatalf("parsed %+v", s)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFromPropertiesErrors(t *testing.T) {
	_, err := ConfigFromProperties(map[string]string{
		"bootstrap.servers":  "a:9092",
		"acks":               "2",
		"linger.ms":          "soon",
		"no.such.key":        "x",
		"request.timeout.ms": "0",
		"compression.type":   "brotli",
	})
	for _, want := range []string{`acks: must be one of all, -1, 0, 1; got "2"`, "linger.ms:", "no.such.key: unknown producer property", "compression.type:", "request.timeout.ms: must be an integer >= 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("not ErrInvalidConfig: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	yes := true
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings, all reported at once
	}{
		{"no bootstrap", Config{}, []string{"bootstrap.servers"}},
		{"idempotence needs acks=all and in-flight <= 5", Config{BootstrapServers: []string{"a:1"}, EnableIdempotence: &yes, Acks: AcksLeader, MaxInFlight: 6},
			[]string{"acks: must be all", "max.in.flight.requests.per.connection: must be at most 5"}},
		{"implicit idempotence yields to acks=1", Config{BootstrapServers: []string{"a:1"}, Acks: AcksLeader}, nil},
		{"transactions need idempotence", Config{BootstrapServers: []string{"a:1"}, Acks: AcksLeader, TransactionalID: "tx"}, []string{"enable.idempotence"}},
		{"delivery timeout too short", Config{BootstrapServers: []string{"a:1"}, DeliveryTimeout: time.Second}, []string{"delivery.timeout.ms: should be equal to or larger than linger.ms + request.timeout.ms"}},
		{"negative sizes", Config{BootstrapServers: []string{"a:1"}, BatchSize: -1, BufferMemory: -1}, []string{"batch.size", "buffer.memory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
}
