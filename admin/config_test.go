package admin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestConfigFromProperties(t *testing.T) {
	c, err := ConfigFromProperties(map[string]string{
		"bootstrap.servers":  "a:9092, b:9093",
		"client.id":          "ops",
		"request.timeout.ms": "5000",
		"security.protocol":  "SASL_SSL",
		"sasl.mechanism":     "SCRAM-SHA-512",
		"sasl.jaas.config":   `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s\"ecret";`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.BootstrapServers, ",") != "a:9092,b:9093" || c.ClientID != "ops" || c.RequestTimeout != 5*time.Second {
		t.Errorf("config %+v", c)
	}
	if c.TLS == nil || c.SASL == nil || *c.SASL != (kafkit.SASL{Mechanism: "SCRAM-SHA-512", User: "alice", Password: `s"ecret`}) {
		t.Errorf("security: TLS %v SASL %+v", c.TLS, c.SASL)
	}
}

func TestConfigErrorsNameKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props map[string]string
		keys  []string
	}{
		{"empty", map[string]string{}, []string{"bootstrap.servers"}},
		{"unknown key and bad values", map[string]string{
			"bootstrap.servers": "nohost", "linger.ms": "5", "request.timeout.ms": "soon",
		}, []string{"bootstrap.servers", "linger.ms", "request.timeout.ms"}},
		{"sasl", map[string]string{
			"bootstrap.servers": "a:1", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI", "sasl.jaas.config": "x",
		}, []string{"sasl.jaas.config"}},
		{"protocol", map[string]string{"bootstrap.servers": "a:1", "security.protocol": "TLS"}, []string{"security.protocol"}},
	} {
		_, err := ConfigFromProperties(tc.props)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", tc.name, err)
			continue
		}
		for _, k := range tc.keys {
			if !strings.Contains(err.Error(), k+":") {
				t.Errorf("%s: %q does not name %s", tc.name, err, k)
			}
		}
	}
	err := Config{BootstrapServers: []string{"a:1"}, SASL: &kafkit.SASL{Mechanism: "GSSAPI"}, RetryBackoff: -1}.Validate()
	for _, k := range []string{"sasl.mechanism", "sasl.jaas.config", "retry.backoff.ms"} {
		if !strings.Contains(err.Error(), k+":") {
			t.Errorf("Validate: %q does not name %s", err, k)
		}
	}
}

func TestErrorWrapsKafkaCode(t *testing.T) {
	msg := "Topic 'x' already exists."
	err := kafkaErr("create topic", "x", kerr.TopicAlreadyExists.Code, &msg)
	if !errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("errors.Is on %v", err)
	}
	if want := "create topic x: TOPIC_ALREADY_EXISTS: Topic 'x' already exists."; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if err := kafkaErr("create topic", "x", kerr.InvalidPartitions.Code, nil); !strings.Contains(err.Error(), kerr.InvalidPartitions.Description) {
		t.Errorf("without a broker message: %q lacks Kafka's description", err)
	}
	if kafkaErr("op", "r", 0, nil) != nil {
		t.Error("code 0 is not an error")
	}
}

// bootstrap.controllers (KIP-919) replaces bootstrap.servers; both at once
// is Kafka's error.
func TestConfigBootstrapControllers(t *testing.T) {
	c, err := ConfigFromProperties(map[string]string{"bootstrap.controllers": "a:9093, b:9093"})
	if err != nil || strings.Join(c.BootstrapControllers, ",") != "a:9093,b:9093" || len(c.BootstrapServers) != 0 {
		t.Fatalf("config %+v, %v", c, err)
	}
	if got := c.clientConfig().SeedBrokers; strings.Join(got, ",") != "a:9093,b:9093" {
		t.Errorf("seeds %v", got)
	}
	_, err = ConfigFromProperties(map[string]string{"bootstrap.controllers": "a:9093", "bootstrap.servers": "a:9092"})
	if err == nil || !strings.Contains(err.Error(), "You cannot specify both bootstrap.servers and bootstrap.controllers") {
		t.Errorf("both: %v", err)
	}
	if _, err = ConfigFromProperties(map[string]string{"bootstrap.controllers": "nohost"}); err == nil || !strings.Contains(err.Error(), "bootstrap.controllers") {
		t.Errorf("bad address: %v", err)
	}
}
