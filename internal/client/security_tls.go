package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"

	"github.com/kafkit/kafkit/internal/props"
)

// sslClientKeys are the ssl.* client keys kafkit reads (PEM key material
// only, as in Kafka's ssl.keystore.type=PEM).
var sslClientKeys = map[string]bool{
	"ssl.truststore.type": true, "ssl.truststore.location": true, "ssl.truststore.certificates": true, "ssl.truststore.password": true,
	"ssl.keystore.type": true, "ssl.keystore.location": true, "ssl.keystore.certificate.chain": true, "ssl.keystore.key": true,
	"ssl.keystore.password": true, "ssl.key.password": true, "ssl.endpoint.identification.algorithm": true,
	"ssl.protocol": true, "ssl.enabled.protocols": true,
}

// tlsConfig builds the client TLS of security.protocol SSL or SASL_SSL
// from the ssl.* keys, reporting each problem with its key.
func (s SecurityProps) tlsConfig(bad func(key, format string, args ...any)) *tls.Config {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	ssl := s.ssl
	for _, store := range []string{"ssl.truststore", "ssl.keystore"} {
		typ := ssl[store+".type"]
		if typ == "" {
			typ = "JKS" // Kafka's default
		}
		used := ssl[store+".location"] != "" || ssl[store+".certificates"] != "" || ssl[store+".certificate.chain"] != ""
		if used && !strings.EqualFold(typ, "PEM") {
			bad(store+".type", "%s stores are not supported: use PEM (%s.type=PEM)", typ, store)
			return t
		}
	}
	cas, key := []byte(props.NormalizePEM(ssl["ssl.truststore.certificates"])), "ssl.truststore.certificates"
	if loc := ssl["ssl.truststore.location"]; loc != "" {
		var err error
		if cas, err = os.ReadFile(loc); err != nil {
			bad("ssl.truststore.location", "%v", err)
			return t
		}
		key = "ssl.truststore.location"
	}
	if len(cas) > 0 {
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(cas) {
			bad(key, "no PEM certificate found")
		}
	}
	chain, keyPEM, src := []byte(props.NormalizePEM(ssl["ssl.keystore.certificate.chain"])), []byte(props.NormalizePEM(ssl["ssl.keystore.key"])), "ssl.keystore.certificate.chain"
	if loc := ssl["ssl.keystore.location"]; loc != "" {
		data, err := os.ReadFile(loc)
		if err != nil {
			bad("ssl.keystore.location", "%v", err)
			return t
		}
		chain, keyPEM, src = data, data, "ssl.keystore.location"
	}
	if len(chain) > 0 {
		cert, err := tls.X509KeyPair(chain, keyPEM)
		if err != nil {
			bad(src, "%v (an encrypted key, ssl.key.password, is not supported)", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	if alg, set := ssl["ssl.endpoint.identification.algorithm"]; set && alg == "" {
		// Kafka's empty value checks the chain but not the host name.
		t.InsecureSkipVerify = true
		t.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: t.RootCAs, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return t
}
