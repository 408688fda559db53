package broker

import (
	"crypto/rand"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kafkit/kafkit/internal/auth"
)

// SSLConfig holds the ssl.* keys of one listener (Kafka's names on each
// field). Key material must be PEM: JKS and PKCS12 stores are refused at
// start-up.
type SSLConfig struct {
	KeystoreType             string // ssl.keystore.type (PEM)
	KeystoreLocation         string // ssl.keystore.location: PEM file with the certificate chain and the key
	KeystoreCertificateChain string // ssl.keystore.certificate.chain: inline PEM
	KeystoreKey              string // ssl.keystore.key: inline PEM private key
	KeyPassword              string // ssl.key.password (encrypted keys are refused: Go cannot decrypt PKCS#8)
	TruststoreType           string // ssl.truststore.type (PEM)
	TruststoreLocation       string // ssl.truststore.location: PEM CA certificates
	TruststoreCertificates   string // ssl.truststore.certificates: inline PEM CA certificates
	ClientAuth               string // ssl.client.auth: none, requested or required
	EnabledProtocols         string // ssl.enabled.protocols (TLSv1.2, TLSv1.3)
	PrincipalMappingRules    string // ssl.principal.mapping.rules
}

// securityProps are the broker keys of listeners, TLS and SASL.
var securityProps = func() []brokerProp {
	ps := []brokerProp{
		{key: "listener.security.protocol.map", typ: typeString, def: "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", doc: "Security protocol of each listener name.", set: func(c *Config, v string) error {
			m, err := parseProtocolMap(v)
			if err == nil {
				c.ListenerProtocols = m
			}
			return err
		}},
		{key: "controller.listener.names", typ: typeString, null: true, doc: "Listeners of the KRaft controller: parsed, bound by the quorum, not served to clients.", set: func(c *Config, v string) error {
			c.ControllerListenerNames = parseNameList(v)
			return nil
		}},
		{key: "inter.broker.listener.name", typ: typeString, null: true, doc: "Listener brokers use to talk to each other.", set: func(c *Config, v string) error {
			c.InterBrokerListenerName = strings.ToUpper(strings.TrimSpace(v))
			return nil
		}},
		{key: "security.inter.broker.protocol", typ: typeString, null: true, doc: "Security protocol of the listener brokers use to talk to each other, when inter.broker.listener.name is not set (the listener of that name).", set: func(c *Config, v string) error {
			c.InterBrokerProtocol = strings.ToUpper(strings.TrimSpace(v))
			return nil
		}},
		{key: "sasl.mechanism.inter.broker.protocol", typ: typeString, def: "GSSAPI", doc: "SASL mechanism of this broker's connections to the inter-broker listener of others (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), credentials from listener.name.<l>.<mechanism>.sasl.jaas.config username/password.", set: func(c *Config, v string) error {
			c.SASLMechanismInterBroker = strings.TrimSpace(v)
			return nil
		}},
		{key: "sasl.mechanism.controller.protocol", typ: typeString, def: "GSSAPI", doc: "SASL mechanism of this node's connections to the controllers' listener (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), credentials from listener.name.<controller>.<mechanism>.sasl.jaas.config username/password.", set: func(c *Config, v string) error {
			c.SASLMechanismController = strings.TrimSpace(v)
			return nil
		}},
		{key: "sasl.enabled.mechanisms", typ: typeList, def: "GSSAPI", doc: "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (GSSAPI is not supported).", set: func(c *Config, v string) error {
			c.SASLEnabledMechanisms = parseMechanisms(v)
			return nil
		}},
		intProp("connections.max.reauth.ms", 0, 0, maxLong, "Longest SASL session before the client must re-authenticate (KIP-368); 0 never.", func(c *Config) *int64 { return &c.ConnectionsMaxReauthMs }),
		intProp("connection.failed.authentication.delay.ms", 100, 0, math.MaxInt32, "Delay before the answer to a failed authentication and the close of its connection.", func(c *Config) *int64 { return &c.FailedAuthenticationDelayMs }),
	}
	for _, s := range sslKeys {
		ps = append(ps, brokerProp{key: s.key, typ: s.typ, def: s.def, null: s.def == "", doc: s.doc, set: func(c *Config, v string) error {
			return s.set(&c.SSL, v)
		}})
	}
	return ps
}()

// sslKey is one ssl.* key, settable globally and per listener.
type sslKey struct {
	key, def, doc string
	typ           propType
	field         func(*SSLConfig) *string
}

func (k sslKey) set(s *SSLConfig, v string) error {
	*k.field(s) = strings.TrimSpace(v)
	return nil
}

var sslKeys = []sslKey{
	{"ssl.keystore.type", "JKS", "Format of the key store: only PEM is supported.", typeString, func(s *SSLConfig) *string { return &s.KeystoreType }},
	{"ssl.keystore.location", "", "PEM file with the listener's certificate chain and private key.", typeString, func(s *SSLConfig) *string { return &s.KeystoreLocation }},
	{"ssl.keystore.certificate.chain", "", "Inline PEM certificate chain.", typePassword, func(s *SSLConfig) *string { return &s.KeystoreCertificateChain }},
	{"ssl.keystore.key", "", "Inline PEM private key.", typePassword, func(s *SSLConfig) *string { return &s.KeystoreKey }},
	{"ssl.keystore.password", "", "Password of a JKS/PKCS12 store (not used with PEM).", typePassword, func(s *SSLConfig) *string { return new(string) }},
	{"ssl.key.password", "", "Password of an encrypted private key (not supported: use an unencrypted PEM key).", typePassword, func(s *SSLConfig) *string { return &s.KeyPassword }},
	{"ssl.truststore.type", "JKS", "Format of the trust store: only PEM is supported.", typeString, func(s *SSLConfig) *string { return &s.TruststoreType }},
	{"ssl.truststore.location", "", "PEM file of the CA certificates client certificates are checked against.", typeString, func(s *SSLConfig) *string { return &s.TruststoreLocation }},
	{"ssl.truststore.certificates", "", "Inline PEM CA certificates.", typePassword, func(s *SSLConfig) *string { return &s.TruststoreCertificates }},
	{"ssl.truststore.password", "", "Password of a JKS/PKCS12 trust store (not used with PEM).", typePassword, func(s *SSLConfig) *string { return new(string) }},
	{"ssl.client.auth", "none", "Client certificates: none, requested or required.", typeString, func(s *SSLConfig) *string { return &s.ClientAuth }},
	{"ssl.enabled.protocols", "TLSv1.2,TLSv1.3", "TLS versions accepted (TLSv1.2 and up).", typeList, func(s *SSLConfig) *string { return &s.EnabledProtocols }},
	{"ssl.protocol", "TLSv1.3", "TLS protocol (Go negotiates the highest enabled version).", typeString, func(s *SSLConfig) *string { return new(string) }},
	{"ssl.principal.mapping.rules", "DEFAULT", "Rules mapping a client certificate's distinguished name to a principal name.", typeString, func(s *SSLConfig) *string { return &s.PrincipalMappingRules }},
	{"ssl.endpoint.identification.algorithm", "https", "Client-side host name checking (no effect on the broker).", typeString, func(s *SSLConfig) *string { return new(string) }},
	{"ssl.cipher.suites", "", "Cipher suites (Go's defaults are used).", typeList, func(s *SSLConfig) *string { return new(string) }},
}

// supportedMechanisms are the SASL mechanisms kafkit's broker serves.
var supportedMechanisms = []string{auth.MechanismPlain, auth.MechanismSCRAMSHA256, auth.MechanismSCRAMSHA512, auth.MechanismOAuthBearer}

func parseMechanisms(v string) []string {
	var out []string
	for _, m := range strings.Split(v, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// listenerKeyPrefix starts the per-listener keys: listener.name.<name>.<key>.
const listenerKeyPrefix = "listener.name."

// setListenerKey stores a listener.name.<l>.<key> value when key is one a
// listener may override: ssl.*, sasl.enabled.mechanisms and the
// per-mechanism <mechanism>.sasl.jaas.config and
// <mechanism>.connections.max.reauth.ms.
func (c *Config) setListenerKey(full, v string) (bool, error) {
	rest, ok := strings.CutPrefix(full, listenerKeyPrefix)
	if !ok {
		return false, nil
	}
	name, key, ok := strings.Cut(rest, ".")
	if !ok || name == "" {
		return true, fmt.Errorf("want listener.name.<listener>.<key>")
	}
	if !listenerKeyAllowed(key) {
		return true, fmt.Errorf("%s cannot be set per listener", key)
	}
	if c.ListenerConfigs == nil {
		c.ListenerConfigs = map[string]map[string]string{}
	}
	name = strings.ToUpper(name)
	if c.ListenerConfigs[name] == nil {
		c.ListenerConfigs[name] = map[string]string{}
	}
	c.ListenerConfigs[name][key] = v
	return true, nil
}

func listenerKeyAllowed(key string) bool {
	if key == "sasl.enabled.mechanisms" || slices.ContainsFunc(sslKeys, func(k sslKey) bool { return k.key == key }) {
		return true
	}
	mech, sub, ok := strings.Cut(key, ".")
	return ok && slices.Contains(supportedMechanisms, strings.ToUpper(mech)) &&
		(sub == "sasl.jaas.config" || sub == "connections.max.reauth.ms")
}

// listenerKey returns the listener's own value of key and the key's full
// name (for errors), else the global one.
func (c *Config) listenerKey(listener, key string) (value, name string, ok bool) {
	if v, ok := c.ListenerConfigs[listener][key]; ok {
		return v, listenerKeyName(listener, key), true
	}
	return "", key, false
}

// listenerKeyName is key's per-listener name: listener.name.<l>.<key>.
func listenerKeyName(listener, key string) string {
	return listenerKeyPrefix + strings.ToLower(listener) + "." + key
}

// listenerSSL is the ssl.* settings of a listener: the global keys with
// its listener.name.<l>.ssl.* overrides.
func (c *Config) listenerSSL(listener string) SSLConfig {
	s := c.SSL
	for _, k := range sslKeys {
		if v, _, ok := c.listenerKey(listener, k.key); ok {
			k.set(&s, v)
		}
	}
	return s
}

// sslKeyName is the name to report a problem with an ssl.* key of a
// listener under: the listener's own key when it set one.
func (c *Config) sslKeyName(listener, key string) string {
	_, name, _ := c.listenerKey(listener, key)
	return name
}

// listenerSASL builds a SASL listener's mechanisms: PLAIN's users from its
// JAAS config, SCRAM from the broker's credential store, OAUTHBEARER's
// unsecured validator options.
func (b *Broker) listenerSASL(listener string) (*saslListener, error) {
	c := &b.cfg
	mechs := c.SASLEnabledMechanisms
	key := "sasl.enabled.mechanisms"
	if v, name, ok := c.listenerKey(listener, key); ok {
		mechs, key = parseMechanisms(v), name
	}
	if len(mechs) == 0 {
		return nil, fmt.Errorf("%s: listener %s uses SASL but no mechanism is enabled", key, listener)
	}
	sl := &saslListener{
		cfg:    auth.SASLConfig{Enabled: mechs, SCRAM: b.scram, Now: time.Now, Rand: rand.Reader},
		reauth: map[string]time.Duration{},
	}
	for _, m := range mechs {
		if !slices.Contains(supportedMechanisms, m) {
			return nil, fmt.Errorf("%s: %s is not supported (kafkit serves %s)", key, m, strings.Join(supportedMechanisms, ", "))
		}
		prefix := strings.ToLower(m) + "."
		// Kafka reads a broker's JAAS options from the listener's key only.
		jaas, _, hasJAAS := c.listenerKey(listener, prefix+"sasl.jaas.config")
		jaasKey := listenerKeyName(listener, prefix+"sasl.jaas.config")
		// As Kafka's JaasContext.loadServerContext: every enabled
		// mechanism needs its login module (kafkit has no JAAS file for
		// the KafkaServer section to come from).
		if !hasJAAS {
			return nil, fmt.Errorf("%s: listener %s enables %s but has no JAAS config for it; set it to %s", jaasKey, listener, m, loginModuleExample[m])
		}
		if err := checkLoginModules(jaas); err != nil {
			return nil, fmt.Errorf("%s: %w", jaasKey, err)
		}
		switch m {
		case auth.MechanismPlain:
			sl.cfg.Plain = auth.ParsePlainJAAS(jaas)
		case auth.MechanismOAuthBearer:
			opts, err := auth.ParseOAuthBearerJAAS(jaas)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", jaasKey, err)
			}
			sl.cfg.OAuth = opts
		}
		ms := c.ConnectionsMaxReauthMs
		if v, name, ok := c.listenerKey(listener, prefix+"connections.max.reauth.ms"); ok {
			n, err := parseInt(v, 0, maxLong)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			ms = n
		}
		sl.reauth[m] = time.Duration(ms) * time.Millisecond
	}
	return sl, nil
}

// loginModuleExample is, per mechanism, a JAAS config Kafka's broker
// takes for it.
var loginModuleExample = map[string]string{
	auth.MechanismPlain:       `org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>="<password>";`,
	auth.MechanismSCRAMSHA256: "org.apache.kafka.common.security.scram.ScramLoginModule required;",
	auth.MechanismSCRAMSHA512: "org.apache.kafka.common.security.scram.ScramLoginModule required;",
	auth.MechanismOAuthBearer: "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
}

// quotedJAAS matches a quoted option value, with \" escapes.
var quotedJAAS = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// checkLoginModules checks that a sasl.jaas.config value has exactly one
// login module ("Class flag options;"), as Kafka's JaasContext requires.
func checkLoginModules(jaas string) error {
	n := 0
	for _, m := range strings.Split(quotedJAAS.ReplaceAllString(jaas, `""`), ";") {
		if strings.TrimSpace(m) != "" {
			n++
		}
	}
	switch {
	case n == 0 || !strings.HasSuffix(strings.TrimSpace(jaas), ";"):
		return fmt.Errorf("JAAS config property does not contain any login modules (want \"<LoginModule class> required <options>;\")")
	case n > 1:
		return fmt.Errorf("JAAS config property contains %d login modules, should be 1 module", n)
	}
	return nil
}

// saslListener is a SASL listener's set-up.
type saslListener struct {
	cfg    auth.SASLConfig
	reauth map[string]time.Duration // connections.max.reauth.ms by mechanism; 0 never
}
