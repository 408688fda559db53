package cli

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/producer"
)

// clientConfig: the command's keys win over --command-config, which wins
// over defaults; the SASL flags win over the file's SASL settings.
func TestClientConfigLayers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "client.properties")
	props := "client.id=from-file\nlinger.ms=7\nacks=0\nsasl.username=file-user\nsasl.password=file-pass\n"
	if err := os.WriteFile(file, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &globals{bootstrap: "127.0.0.1:1", commandConfig: file, saslUser: "flag-user", saslPassword: "flag-pass"}
	cfg, err := clientConfig(g, map[string]string{"acks": "1", "client.id": "kafkit-console-producer"}, producer.ConfigFromProperties,
		func(c *producer.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.BootstrapServers) != 1 || cfg.BootstrapServers[0] != "127.0.0.1:1" || cfg.ClientID != "kafkit-console-producer" ||
		cfg.Acks != producer.AcksLeader || cfg.Linger != 7*time.Millisecond {
		t.Errorf("config %+v", cfg)
	}
	if cfg.SASL == nil || *cfg.SASL != (kafkit.SASL{Mechanism: kafkit.SASLPlain, User: "flag-user", Password: "flag-pass"}) {
		t.Errorf("SASL %+v, want the flags'", cfg.SASL)
	}

	g.commandConfig = ""
	if _, err := clientConfig(g, map[string]string{"acks": "2"}, producer.ConfigFromProperties,
		func(c *producer.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL }); err == nil {
		t.Error("acks=2 loaded")
	}
}
