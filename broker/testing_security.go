package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/auth"
)

// scramUser is a SCRAM credential a test option creates at start-up.
type scramUser struct {
	user, mechanism string
	cred            auth.SCRAMCredential
}

// WithListener adds a listener named after protocol (SSL, SASL_PLAINTEXT or
// SASL_SSL) on a free 127.0.0.1 port, after the PLAINTEXT one; find its
// address with Broker.ListenerAddr(protocol). A TLS listener needs
// WithTLS; a SASL listener enables SCRAM-SHA-256, SCRAM-SHA-512 and
// OAUTHBEARER, and PLAIN with WithPlainUser, unless
// Config.SASLEnabledMechanisms was set.
func WithListener(protocol string) TestOption {
	return func(c *Config) {
		if len(c.Listeners) == 0 {
			c.Listeners = []Listener{{Name: plaintextListener, Host: "127.0.0.1", Protocol: ProtocolPlaintext}}
		}
		c.Listeners = append(c.Listeners, Listener{Name: protocol, Host: "127.0.0.1", Protocol: protocol})
		if strings.HasPrefix(protocol, "SASL_") {
			defaultTestMechanisms(c)
			// Kafka's broker needs a login module for each mechanism.
			for _, m := range []string{auth.MechanismSCRAMSHA256, auth.MechanismSCRAMSHA512, auth.MechanismOAuthBearer} {
				if _, ok := c.ListenerConfigs[protocol][strings.ToLower(m)+".sasl.jaas.config"]; !ok {
					c.setListenerKey(listenerKeyName(protocol, strings.ToLower(m)+".sasl.jaas.config"), loginModuleExample[m])
				}
			}
		}
	}
}

func defaultTestMechanisms(c *Config) {
	if slices.Equal(c.SASLEnabledMechanisms, []string{"GSSAPI"}) || len(c.SASLEnabledMechanisms) == 0 {
		c.SASLEnabledMechanisms = []string{auth.MechanismSCRAMSHA256, auth.MechanismSCRAMSHA512, auth.MechanismOAuthBearer}
	}
}

// WithPlainUser adds a PLAIN user to the SASL listeners (their
// listener.name.<l>.plain.sasl.jaas.config, as a Kafka broker is set up)
// and enables PLAIN.
func WithPlainUser(user, password string) TestOption {
	return func(c *Config) {
		defaultTestMechanisms(c)
		if !slices.Contains(c.SASLEnabledMechanisms, auth.MechanismPlain) {
			c.SASLEnabledMechanisms = append(c.SASLEnabledMechanisms, auth.MechanismPlain)
		}
		entry := fmt.Sprintf(" user_%s=%q", user, password)
		for _, l := range []string{ProtocolSASLPlaintext, ProtocolSASLSSL} {
			jaas := c.ListenerConfigs[l]["plain.sasl.jaas.config"]
			if jaas == "" {
				jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required;"
			}
			c.setListenerKey(listenerKeyName(l, "plain.sasl.jaas.config"), strings.TrimSuffix(jaas, ";")+entry+";")
		}
	}
}

// WithSCRAMUser creates a SCRAM credential (mechanism SCRAM-SHA-256 or
// SCRAM-SHA-512, 4096 iterations) at start-up, as kafka-storage.sh format
// --add-scram does.
func WithSCRAMUser(mechanism, user, password string) TestOption {
	return func(c *Config) {
		salt := make([]byte, 16)
		rand.Read(salt)
		cred, err := auth.NewSCRAMCredential(mechanism, password, salt, auth.MinSCRAMIterations)
		if err != nil {
			panic("broker.WithSCRAMUser: " + err.Error()) // a test's own mistake
		}
		c.scramUsers = append(c.scramUsers, scramUser{user: user, mechanism: mechanism, cred: cred})
	}
}

// WithTLS gives every TLS listener ca's server certificate (inline PEM, as
// ssl.keystore.certificate.chain and ssl.keystore.key) and trusts ca for
// client certificates with ssl.client.auth clientAuth (none, requested or
// required).
func WithTLS(ca *TestCA, clientAuth string) TestOption {
	return func(c *Config) {
		c.SSL.KeystoreType, c.SSL.TruststoreType = "PEM", "PEM"
		c.SSL.KeystoreCertificateChain, c.SSL.KeystoreKey = ca.serverChain, ca.serverKey
		c.SSL.TruststoreCertificates = ca.CertPEM
		c.SSL.ClientAuth = clientAuth
	}
}

// TestCA is a certificate authority generated for a test: it signs the
// broker's certificate (for 127.0.0.1 and localhost) and client
// certificates.
type TestCA struct {
	CertPEM string // the CA certificate, PEM

	cert        *x509.Certificate
	key         *ecdsa.PrivateKey
	serverChain string
	serverKey   string
}

// NewTestCA generates a CA and the broker's certificate.
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafkit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &TestCA{CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), cert: cert, key: key}
	ca.serverChain, ca.serverKey = ca.Issue(t, pkix.Name{CommonName: "localhost"}, true)
	return ca
}

// Issue signs a certificate for subject (a server certificate for
// 127.0.0.1 and localhost, or a client one) and returns it and its key as
// PEM.
func (ca *TestCA) Issue(t testing.TB, subject pkix.Name, server bool) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		// A broker's certificate is also its client certificate towards
		// other nodes (mutual TLS between nodes).
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// ClientTLS is a client TLS config that trusts the CA; with a non-empty
// subject it also presents a client certificate for it (mutual TLS).
func (ca *TestCA) ClientTLS(t testing.TB, subject pkix.Name) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}
	if subject.String() != "" {
		c, k := ca.Issue(t, subject, false)
		pair, err := tls.X509KeyPair([]byte(c), []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}
