package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/broker"
)

// Issue 13 (authentication): third-party clients authenticate against the
// broker's SASL_PLAINTEXT, SASL_SSL and SSL listeners, and bad credentials
// fail with Kafka's errors.

// secureBroker serves PLAINTEXT, SASL_PLAINTEXT, SASL_SSL and SSL (mutual
// TLS required) with PLAIN user alice and SCRAM-SHA-256/512 user bob.
func secureBroker(t *testing.T) (*broker.Broker, *broker.TestCA) {
	ca := broker.NewTestCA(t)
	b := broker.NewTest(t,
		broker.WithListener(broker.ProtocolSASLPlaintext), broker.WithListener(broker.ProtocolSASLSSL), broker.WithListener(broker.ProtocolSSL),
		broker.WithTLS(ca, "required"),
		broker.WithPlainUser("alice", "alice-secret"),
		broker.WithSCRAMUser("SCRAM-SHA-256", "bob", "bob-secret-256"),
		broker.WithSCRAMUser("SCRAM-SHA-512", "bob", "bob-secret-512"),
		broker.WithConfig(func(c *broker.Config) { c.FailedAuthenticationDelayMs = 10 }),
	)
	return b, ca
}

// saslListeners maps each SASL protocol to the client TLS it needs.
func saslListeners(t *testing.T, ca *broker.TestCA) map[string]*tls.Config {
	return map[string]*tls.Config{broker.ProtocolSASLPlaintext: nil, broker.ProtocolSASLSSL: ca.ClientTLS(t, pkix.Name{})}
}

type saslCase struct {
	mechanism, user, password string
}

var saslCases = []saslCase{
	{"PLAIN", "alice", "alice-secret"},
	{"SCRAM-SHA-256", "bob", "bob-secret-256"},
	{"SCRAM-SHA-512", "bob", "bob-secret-512"},
}

func kgoMechanism(c saslCase) sasl.Mechanism {
	switch c.mechanism {
	case "PLAIN":
		return plain.Auth{User: c.user, Pass: c.password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.user, Pass: c.password}.AsSha256Mechanism()
	}
	return scram.Auth{User: c.user, Pass: c.password}.AsSha512Mechanism()
}

// kgoProduce authenticates with kgo (Ping, which reports a failed
// connection at once where producing retries it) and produces one record.
func kgoProduce(addr string, tlsCfg *tls.Config, m sasl.Mechanism, topic string) error {
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RecordRetries(1), kgo.RetryTimeout(5 * time.Second)}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return err
	}
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

func TestKgoAuthenticates(t *testing.T) {
	b, ca := secureBroker(t)
	for proto, tlsCfg := range saslListeners(t, ca) {
		for _, c := range saslCases {
			if err := kgoProduce(b.ListenerAddr(proto), tlsCfg, kgoMechanism(c), "kgo-auth"); err != nil {
				t.Errorf("kgo %s over %s: %v", c.mechanism, proto, err)
			}
			bad := c
			bad.password = "wrong"
			if err := kgoProduce(b.ListenerAddr(proto), tlsCfg, kgoMechanism(bad), "kgo-auth"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("kgo %s over %s with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", c.mechanism, proto, err)
			}
			bad.user = "nobody"
			if err := kgoProduce(b.ListenerAddr(proto), tlsCfg, kgoMechanism(bad), "kgo-auth"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("kgo %s over %s as an unknown user: %v, want SASL_AUTHENTICATION_FAILED", c.mechanism, proto, err)
			}
		}
	}
	if err := kgoProduce(b.ListenerAddr(broker.ProtocolSASLPlaintext), nil, unknownMechanism{}, "kgo-auth"); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Errorf("kgo with GSSAPI: %v, want UNSUPPORTED_SASL_MECHANISM", err)
	}
	// A client without SASL on a SASL port is not served.
	if err := kgoProduce(b.ListenerAddr(broker.ProtocolSASLPlaintext), nil, nil, "kgo-auth"); err == nil {
		t.Error("a plaintext client was served on the SASL_PLAINTEXT port")
	}
	// Mutual TLS on the SSL listener.
	if err := kgoProduce(b.ListenerAddr(broker.ProtocolSSL), ca.ClientTLS(t, pkix.Name{CommonName: "svc"}), nil, "kgo-auth"); err != nil {
		t.Errorf("kgo with a client certificate over SSL: %v", err)
	}
	if err := kgoProduce(b.ListenerAddr(broker.ProtocolSSL), ca.ClientTLS(t, pkix.Name{}), nil, "kgo-auth"); err == nil {
		t.Error("kgo without a client certificate was served with ssl.client.auth=required")
	}
}

// unknownMechanism is a mechanism the broker does not enable.
type unknownMechanism struct{}

func (unknownMechanism) Name() string { return "GSSAPI" }
func (unknownMechanism) Authenticate(context.Context, string) (sasl.Session, []byte, error) {
	return nil, nil, errors.New("not reached")
}

// saramaSCRAM adapts franz-go's SCRAM client to sarama's SCRAMClient.
type saramaSCRAM struct {
	sha512 bool
	sess   sasl.Session
	first  []byte
	done   bool
}

func (s *saramaSCRAM) Begin(user, password, _ string) error {
	a := scram.Auth{User: user, Pass: password}
	m := a.AsSha256Mechanism()
	if s.sha512 {
		m = a.AsSha512Mechanism()
	}
	var err error
	s.sess, s.first, err = m.Authenticate(context.Background(), "")
	return err
}

func (s *saramaSCRAM) Step(challenge string) (string, error) {
	if s.first != nil {
		first := s.first
		s.first = nil
		return string(first), nil
	}
	done, resp, err := s.sess.Challenge([]byte(challenge))
	s.done = done
	return string(resp), err
}

func (s *saramaSCRAM) Done() bool { return s.done }

func saramaAuthConfig(c saslCase, handshake int16, tlsCfg *tls.Config) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Metadata.Retry.Max = 1
	cfg.Producer.Retry.Max = 1
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout = 5*time.Second, 5*time.Second
	if tlsCfg != nil {
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tlsCfg
	}
	if c.mechanism == "" {
		return cfg
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Version = handshake
	// sarama's v0 flow sends the handshake first, without ApiVersions.
	cfg.ApiVersionsRequest = handshake != sarama.SASLHandshakeV0
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(c.mechanism)
	cfg.Net.SASL.User, cfg.Net.SASL.Password = c.user, c.password
	if strings.HasPrefix(c.mechanism, "SCRAM") {
		sha512 := c.mechanism == "SCRAM-SHA-512"
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{sha512: sha512} }
	}
	return cfg
}

func saramaProduce(addr string, cfg *sarama.Config) error {
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "sarama-auth", Value: sarama.StringEncoder("v")})
	return err
}

func TestSaramaAuthenticates(t *testing.T) {
	b, ca := secureBroker(t)
	for proto, tlsCfg := range saslListeners(t, ca) {
		for _, c := range saslCases {
			// Handshake v1 (SaslAuthenticate) and v0 (raw tokens).
			for _, hs := range []int16{sarama.SASLHandshakeV1, sarama.SASLHandshakeV0} {
				if err := saramaProduce(b.ListenerAddr(proto), saramaAuthConfig(c, hs, tlsCfg)); err != nil {
					t.Errorf("sarama %s (handshake v%d) over %s: %v", c.mechanism, hs, proto, err)
				}
			}
			bad := c
			bad.password = "wrong"
			err := saramaProduce(b.ListenerAddr(proto), saramaAuthConfig(bad, sarama.SASLHandshakeV1, tlsCfg))
			if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) && !strings.Contains(fmt.Sprint(err), "SASL") {
				t.Errorf("sarama %s over %s with a wrong password: %v", c.mechanism, proto, err)
			}
		}
	}
	err := saramaProduce(b.ListenerAddr(broker.ProtocolSASLPlaintext), saramaAuthConfig(saslCase{"OAUTHBEARER-X", "a", "b"}, sarama.SASLHandshakeV1, nil))
	if !errors.Is(err, sarama.ErrUnsupportedSASLMechanism) && !strings.Contains(fmt.Sprint(err), "SASL") {
		t.Errorf("sarama with an unknown mechanism: %v", err)
	}
	if err := saramaProduce(b.ListenerAddr(broker.ProtocolSSL), saramaAuthConfig(saslCase{}, 0, ca.ClientTLS(t, pkix.Name{CommonName: "svc"}))); err != nil {
		t.Errorf("sarama with mutual TLS over SSL: %v", err)
	}
}

func TestKcatAuthenticates(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat (librdkafka) is not installed: apt-get install kcat")
	}
	b, ca := secureBroker(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, []byte(ca.CertPEM), 0o600)
	certPEM, keyPEM := ca.Issue(t, pkix.Name{CommonName: "kcat"}, false)
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, []byte(certPEM), 0o600)
	os.WriteFile(keyFile, []byte(keyPEM), 0o600)
	kcat := func(addr string, props ...string) error {
		args := []string{"-b", addr, "-P", "-t", "kcat-auth", "-X", "message.timeout.ms=10000"}
		for _, p := range props {
			args = append(args, "-X", p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "kcat", args...)
		cmd.Stdin = strings.NewReader("v\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, proto := range []string{broker.ProtocolSASLPlaintext, broker.ProtocolSASLSSL} {
		for _, c := range saslCases {
			props := []string{"security.protocol=" + proto, "sasl.mechanisms=" + c.mechanism, "sasl.username=" + c.user, "sasl.password=" + c.password}
			if proto == broker.ProtocolSASLSSL {
				props = append(props, "ssl.ca.location="+caFile)
			}
			if err := kcat(b.ListenerAddr(proto), props...); err != nil {
				t.Errorf("kcat %s over %s: %v", c.mechanism, proto, err)
			}
			props[3] = "sasl.password=wrong"
			if err := kcat(b.ListenerAddr(proto), props...); err == nil || !strings.Contains(err.Error(), "Authentication failed") {
				t.Errorf("kcat %s over %s with a wrong password: %v", c.mechanism, proto, err)
			}
		}
	}
	if err := kcat(b.ListenerAddr(broker.ProtocolSSL), "security.protocol=SSL", "ssl.ca.location="+caFile, "ssl.certificate.location="+certFile, "ssl.key.location="+keyFile); err != nil {
		t.Errorf("kcat with mutual TLS over SSL: %v", err)
	}
}
