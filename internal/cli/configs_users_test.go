package cli

import (
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkit/kafkit/broker"
)

// Issue 13: SCRAM users through kafka-configs' --entity-type users, and
// --command-config with Kafka's security keys for SASL_PLAINTEXT,
// SASL_SSL, SSL (mutual TLS) and OAUTHBEARER.

func TestConfigsUsersSCRAM(t *testing.T) {
	b := broker.NewTest(t, broker.WithListener(broker.ProtocolSASLPlaintext))
	addr := b.Addr()
	r := ok(t, addr, "", "configs", "alter", "--entity-type", "users", "--entity-name", "alice", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[password=alice-512]")
	if r.out != "Completed updating config for user alice.\n" {
		t.Errorf("alter printed %q", r.out)
	}
	r = ok(t, addr, "", "kafka-configs", "--describe", "--entity-type", "users", "--entity-name", "alice")
	if want := "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096\n"; r.out != want {
		t.Errorf("describe printed %q, want %q", r.out, want)
	}
	if r := run(t, addr, "", "configs", "alter", "--entity-type", "users", "--entity-name", "bob", "--add-config", "SCRAM-SHA-256=[iterations=100,password=x]"); r.code != 1 || !strings.Contains(r.err, "UNACCEPTABLE_CREDENTIAL") {
		t.Errorf("too few iterations: %d %q", r.code, r.err)
	}

	cfg := filepath.Join(t.TempDir(), "client.properties")
	login := func(password string) result {
		os.WriteFile(cfg, []byte("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"+
			`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="`+password+`";`+"\n"), 0o600)
		return run(t, b.ListenerAddr(broker.ProtocolSASLPlaintext), "", "topics", "list", "--command-config", cfg)
	}
	if r := login("alice-secret"); r.code != 0 {
		t.Errorf("login with the new credential: %d %q", r.code, r.err)
	}
	if r := login("wrong"); r.code != 1 || !strings.Contains(r.err, "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("login with a wrong password: %d %q", r.code, r.err)
	}
	ok(t, addr, "", "configs", "alter", "--entity-type", "users", "--entity-name", "alice", "--delete-config", "SCRAM-SHA-256")
	if r := login("alice-secret"); r.code != 1 {
		t.Errorf("login after --delete-config: %d %q", r.code, r.err)
	}
	if r := run(t, addr, "", "configs", "alter", "--entity-type", "users", "--entity-name", "alice", "--delete-config", "SCRAM-SHA-256"); r.code != 1 || !strings.Contains(r.err, "RESOURCE_NOT_FOUND") {
		t.Errorf("deleting a missing credential: %d %q", r.code, r.err)
	}
}

func TestCommandConfigSecurity(t *testing.T) {
	ca := broker.NewTestCA(t)
	b := broker.NewTest(t, broker.WithListener(broker.ProtocolSASLSSL), broker.WithListener(broker.ProtocolSSL),
		broker.WithTLS(ca, "required"), broker.WithPlainUser("alice", "alice-secret"))
	dir := t.TempDir()
	caFile, certFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem")
	os.WriteFile(caFile, []byte(ca.CertPEM), 0o600)
	c, k := ca.Issue(t, pkix.Name{CommonName: "ops"}, false)
	os.WriteFile(certFile, []byte(c+k), 0o600)
	for _, tt := range []struct {
		name, listener, props string
		fail                  string
	}{
		{"SASL_SSL PLAIN", broker.ProtocolSASLSSL, "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nssl.truststore.type=PEM\nssl.truststore.location=" + caFile +
			"\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\";\n", ""},
		{"SASL_SSL OAUTHBEARER", broker.ProtocolSASLSSL, "security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\nssl.truststore.type=PEM\nssl.truststore.location=" + caFile +
			"\nsasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\";\n", ""},
		{"SSL mutual TLS", broker.ProtocolSSL, "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=" + caFile +
			"\nssl.keystore.type=PEM\nssl.keystore.location=" + certFile + "\n", ""},
		{"SSL without a certificate", broker.ProtocolSSL, "security.protocol=SSL\nssl.truststore.location=" + caFile + "\nssl.truststore.type=PEM\n", "certificate"},
		{"JKS", broker.ProtocolSSL, "security.protocol=SSL\nssl.truststore.location=/x.jks\n", "use PEM"},
		{"untrusted broker", broker.ProtocolSSL, "security.protocol=SSL\n", "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "client.properties")
			os.WriteFile(cfg, []byte(tt.props), 0o600)
			r := run(t, b.ListenerAddr(tt.listener), "", "topics", "list", "--command-config", cfg)
			if tt.fail == "" && r.code != 0 || tt.fail != "" && (r.code != 1 || !strings.Contains(r.err, tt.fail)) {
				t.Errorf("exit %d, stderr %q (want failure containing %q)", r.code, r.err, tt.fail)
			}
		})
	}
}
