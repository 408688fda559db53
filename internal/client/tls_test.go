package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kafkit-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "secure"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))

	cl := newClient(t, c, func(cfg *Config) { cfg.TLS = &tls.Config{RootCAs: pool} })
	md, err := cl.Metadata(testCtx(t), "secure")
	if err != nil || md.Topics["secure"].Err != nil {
		t.Fatalf("metadata over TLS: %v %+v", err, md)
	}

	// An untrusted certificate fails the handshake, without hanging.
	_, err = New(testCtx(t), Config{SeedBrokers: c.ListenAddrs(), TLS: &tls.Config{}})
	if err == nil {
		t.Fatal("untrusted certificate accepted")
	}

	// Plaintext against the TLS listener: the TLS alert is not mistaken for
	// a giant response.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = New(ctx, Config{SeedBrokers: c.ListenAddrs(), RequestTimeout: 2 * time.Second})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("plaintext to a TLS listener: %v, want a prompt failure", err)
	}
	if _, err := cl.RequestBroker(testCtx(t), 0, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatal(err)
	}
}
