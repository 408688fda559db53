package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/kafkit/kafkit/internal/props"
)

// secure prepares a new connection for its listener: the TLS handshake
// (SSL, SASL_SSL) with the principal of the client certificate, and the
// SASL authenticator (SASL_PLAINTEXT, SASL_SSL).
func (c *conn) secure(l *boundListener) error {
	if l.tls != nil {
		tc := tls.Server(c.nc, l.tls)
		c.nc = tc
		timeout := 10 * time.Second
		if idle := time.Duration(c.b.cfg.ConnectionsMaxIdleMs) * time.Millisecond; idle > 0 {
			timeout = min(timeout, idle)
		}
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("TLS handshake on listener %s: %w", l.Name, err)
		}
		if err := c.certPrincipal(l, tc); err != nil {
			return err
		}
	} else if nc, ok := c.nc.(interface{ NetConn() net.Conn }); ok && l.principal != nil {
		// The controller's port speaks TLS before its Raft split.
		if tc, ok := nc.NetConn().(*tls.Conn); ok {
			if err := c.certPrincipal(l, tc); err != nil {
				return err
			}
		}
	}
	if l.sasl != nil {
		c.sasl = &saslConn{l: l.sasl}
	}
	return nil
}

// certPrincipal names an SSL connection's principal after its client
// certificate (ssl.principal.mapping.rules); SASL names its own.
func (c *conn) certPrincipal(l *boundListener, tc *tls.Conn) error {
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && l.sasl == nil {
		name, err := l.principal.name(certs[0].Subject.String())
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.Name, err)
		}
		c.principal = "User:" + name
		c.principalSet()
	}
	return nil
}

// principalSet reports an established principal to the test seam.
func (c *conn) principalSet() {
	if f := c.b.cfg.onPrincipal; f != nil {
		f(c.listener, c.principal)
	}
}

// listenerTLS builds the TLS server config of a listener from its ssl.*
// keys (PEM only) and its principal mapping rules.
func (c *Config) listenerTLS(listener, protocol string) (*tls.Config, *principalMapper, error) {
	s := c.listenerSSL(listener)
	if protocol == ProtocolSASLSSL {
		// KIP-684: a SASL_SSL listener asks for client certificates only
		// through its own listener.name.<l>.ssl.client.auth.
		s.ClientAuth, _, _ = c.listenerKey(listener, "ssl.client.auth")
	}
	key := func(k string) string { return c.sslKeyName(listener, k) }
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if err := requirePEM(key("ssl.keystore.type"), s.KeystoreType, s.KeystoreLocation != "" || s.KeystoreCertificateChain != ""); err != nil {
		return nil, nil, err
	}
	// Inline values often come on one line from a properties file.
	chain, keyPEM := []byte(props.NormalizePEM(s.KeystoreCertificateChain)), []byte(props.NormalizePEM(s.KeystoreKey))
	src := key("ssl.keystore.certificate.chain")
	if s.KeystoreLocation != "" {
		data, err := os.ReadFile(s.KeystoreLocation)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key("ssl.keystore.location"), err)
		}
		chain, keyPEM, src = data, data, key("ssl.keystore.location")
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("%s: listener %s uses TLS but has no certificate (set ssl.keystore.type=PEM with ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key)", key("ssl.keystore.location"), listener)
	}
	if isEncryptedKey(keyPEM) {
		return nil, nil, fmt.Errorf("%s: the private key is encrypted (ssl.key.password); Go cannot decrypt PKCS#8 keys: give an unencrypted PEM key", src)
	}
	cert, err := tls.X509KeyPair(chain, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	cfg.Certificates = []tls.Certificate{cert}

	trusted := s.TruststoreLocation != "" || s.TruststoreCertificates != ""
	if err := requirePEM(key("ssl.truststore.type"), s.TruststoreType, trusted); err != nil {
		return nil, nil, err
	}
	if trusted {
		cas, src := []byte(props.NormalizePEM(s.TruststoreCertificates)), key("ssl.truststore.certificates")
		if s.TruststoreLocation != "" {
			if cas, err = os.ReadFile(s.TruststoreLocation); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", key("ssl.truststore.location"), err)
			}
			src = key("ssl.truststore.location")
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(cas) {
			return nil, nil, fmt.Errorf("%s: no PEM certificate found", src)
		}
	}
	switch strings.ToLower(s.ClientAuth) {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, nil, fmt.Errorf("%s: must be none, requested or required, got %q", key("ssl.client.auth"), s.ClientAuth)
	}
	if cfg.MinVersion, cfg.MaxVersion, err = tlsVersions(s.EnabledProtocols); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key("ssl.enabled.protocols"), err)
	}
	pm, err := parsePrincipalRules(s.PrincipalMappingRules)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key("ssl.principal.mapping.rules"), err)
	}
	return cfg, pm, nil
}

// requirePEM refuses a JKS or PKCS12 store that is in use.
func requirePEM(key, typ string, used bool) error {
	if !used || strings.EqualFold(typ, "PEM") {
		return nil
	}
	return fmt.Errorf("%s: %s key stores are not supported: use PEM (%s=PEM with PEM files or inline PEM values)", key, typ, key)
}

func isEncryptedKey(data []byte) bool {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return false
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED" {
			return true
		}
	}
}

// tlsVersions reads ssl.enabled.protocols: TLS 1.2 is the floor, older
// versions listed are ignored.
func tlsVersions(v string) (lo, hi uint16, err error) {
	for _, p := range strings.Split(v, ",") {
		var ver uint16
		switch strings.TrimSpace(p) {
		case "", "TLSv1", "TLSv1.1":
			continue
		case "TLSv1.2":
			ver = tls.VersionTLS12
		case "TLSv1.3":
			ver = tls.VersionTLS13
		default:
			return 0, 0, fmt.Errorf("unknown protocol %q (want TLSv1.2, TLSv1.3)", p)
		}
		if lo == 0 || ver < lo {
			lo = ver
		}
		hi = max(hi, ver)
	}
	if lo == 0 {
		lo, hi = tls.VersionTLS12, tls.VersionTLS13
	}
	return lo, hi, nil
}

// principalMapper applies ssl.principal.mapping.rules (Kafka's
// SslPrincipalMapper) to a certificate's distinguished name.
type principalMapper struct {
	rules []principalRule
	text  string
}

type principalRule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string
	toLower     bool
	toUpper     bool
}

// principalRuleRE is Kafka's rule syntax: DEFAULT or
// RULE:pattern/replacement/[LU].
var principalRuleRE = regexp.MustCompile(`\s*((DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?))\s*([,\n]\s*|$)`)

// javaGroupRef turns Java's $1 group references into Go's ${1}.
var javaGroupRef = regexp.MustCompile(`\$(\d+)`)

func parsePrincipalRules(v string) (*principalMapper, error) {
	if strings.TrimSpace(v) == "" {
		v = "DEFAULT"
	}
	pm := &principalMapper{text: v}
	for _, m := range principalRuleRE.FindAllStringSubmatch(v, -1) {
		switch {
		case m[8] != "":
			return nil, fmt.Errorf("invalid rule: %q", m[8])
		case m[2] != "":
			pm.rules = append(pm.rules, principalRule{isDefault: true})
		case m[1] != "":
			re, err := regexp.Compile("^(?:" + m[3] + ")$")
			if err != nil {
				return nil, fmt.Errorf("invalid rule pattern %q: %w", m[3], err)
			}
			pm.rules = append(pm.rules, principalRule{pattern: re, replacement: javaGroupRef.ReplaceAllString(m[5], "$${$1}"), toLower: m[7] == "L", toUpper: m[7] == "U"})
		}
	}
	return pm, nil
}

// name maps a distinguished name (RFC 2253, as Java's X500Principal
// prints it) by the first rule that matches; no match is an error that
// fails the connection, as in Kafka.
func (pm *principalMapper) name(dn string) (string, error) {
	for _, r := range pm.rules {
		if r.isDefault {
			return dn, nil
		}
		if !r.pattern.MatchString(dn) {
			continue
		}
		out := r.pattern.ReplaceAllString(dn, r.replacement)
		switch {
		case r.toLower:
			out = strings.ToLower(out)
		case r.toUpper:
			out = strings.ToUpper(out)
		}
		return out, nil
	}
	return "", errors.New("no rules apply to " + dn + ", rules " + pm.text)
}
