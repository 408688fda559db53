package client

import (
	"crypto/tls"
	"strings"

	"github.com/kafkit/kafkit"
)

// SecurityProps gathers the security keys of a Java-style client
// properties file, which the producer, consumer and admin loaders share:
// security.protocol, sasl.mechanism, sasl.jaas.config, and the shorthand
// sasl.username / sasl.password.
type SecurityProps struct {
	protocol, mechanism, jaas, user, password string
	ssl                                       map[string]string // ssl.* keys
}

// Take records key when it is a security key and reports whether it was.
func (s *SecurityProps) Take(key, value string) bool {
	switch key {
	case "security.protocol":
		s.protocol = strings.ToUpper(strings.TrimSpace(value))
	case "sasl.mechanism":
		s.mechanism = strings.TrimSpace(value)
	case "sasl.jaas.config":
		s.jaas = value
	case "sasl.username":
		s.user = value
	case "sasl.password":
		s.password = value
	default:
		if !sslClientKeys[key] {
			return false
		}
		if s.ssl == nil {
			s.ssl = map[string]string{}
		}
		s.ssl[key] = strings.TrimSpace(value)
	}
	return true
}

// Resolve turns the keys into TLS and SASL settings (nil when unused),
// reporting each problem through bad with the key it concerns. SASL
// settings without security.protocol imply SASL_PLAINTEXT; without
// sasl.mechanism, PLAIN (Kafka's GSSAPI default is not supported).
func (s SecurityProps) Resolve(bad func(key, format string, args ...any)) (*tls.Config, *kafkit.SASL) {
	protocol := s.protocol
	if protocol == "" && (s.jaas != "" || s.user != "" || s.mechanism != "") {
		protocol = "SASL_PLAINTEXT"
	}
	var t *tls.Config
	switch protocol {
	case "", "PLAINTEXT", "SASL_PLAINTEXT":
	case "SSL", "SASL_SSL":
		t = s.tlsConfig(bad)
	default:
		bad("security.protocol", "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL; got %q", s.protocol)
		return nil, nil
	}
	if !strings.HasPrefix(protocol, "SASL_") {
		return t, nil
	}
	mechanism := s.mechanism
	if mechanism == "" {
		mechanism = kafkit.SASLPlain
	}
	if mechanism == kafkit.SASLOAuthBearer {
		src, err := UnsecuredTokenSource(s.jaas)
		if err != nil {
			bad("sasl.jaas.config", "%v", err)
		}
		return t, &kafkit.SASL{Mechanism: mechanism, TokenSource: src}
	}
	user, pass := s.user, s.password
	if s.jaas != "" {
		var err error
		if user, pass, err = ParseJAAS(s.jaas); err != nil {
			bad("sasl.jaas.config", "%v", err)
		}
	} else if user == "" {
		bad("sasl.jaas.config", `%s needs a username: set sasl.jaas.config (or sasl.username)`, protocol)
	}
	return t, &kafkit.SASL{Mechanism: mechanism, User: user, Password: pass}
}
