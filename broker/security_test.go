package broker

import (
	"bufio"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/internal/auth"
)

// Tests of issue 13's authentication half: listeners, TLS, SASL, SCRAM
// credentials.

func dialAddr(t *testing.T, addr string, tlsCfg *tls.Config) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		nc = tls.Client(nc, tlsCfg)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// principals records the principal of each authenticated connection.
type principals struct {
	mu  sync.Mutex
	got []string
}

func (p *principals) option() TestOption {
	return func(c *Config) {
		c.onPrincipal = func(listener, principal string) {
			p.mu.Lock()
			p.got = append(p.got, listener+" "+principal)
			p.mu.Unlock()
		}
	}
}

func (p *principals) has(s string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		ok := slices.Contains(p.got, s)
		p.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func TestListenersAnswerWithTheirEndpoints(t *testing.T) {
	props := map[string]string{
		"listeners":                      "CLIENT://127.0.0.1:0,EXTERNAL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map": "CLIENT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"advertised.listeners":           "EXTERNAL://kafka.example.com:19093",
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "CLIENT",
	}
	b := NewTest(t, WithConfig(func(c *Config) {
		if err := c.Set(props); err != nil {
			t.Fatal(err)
		}
	}))
	if got := b.cfg.Listeners; len(got) != 3 || got[2].Name != "CONTROLLER" {
		t.Fatalf("parsed listeners %+v", got)
	}
	if b.ListenerAddr("CONTROLLER") != "" {
		t.Errorf("the controller listener is served by the broker")
	}
	clientAddr := b.ListenerAddr("CLIENT")
	if clientAddr != b.Addr() || b.ListenerAddr("EXTERNAL") == "" {
		t.Fatalf("addresses: CLIENT %q EXTERNAL %q Addr %q", clientAddr, b.ListenerAddr("EXTERNAL"), b.Addr())
	}
	host, port, _ := net.SplitHostPort(clientAddr)
	p, _ := strconv.Atoi(port)
	for _, tt := range []struct {
		listener string
		host     string
		port     int32
	}{{"CLIENT", host, int32(p)}, {"EXTERNAL", "kafka.example.com", 19093}} {
		c := dialAddr(t, b.ListenerAddr(tt.listener), nil)
		md := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
		if len(md.Brokers) != 1 || md.Brokers[0].Host != tt.host || md.Brokers[0].Port != tt.port {
			t.Errorf("%s: Metadata brokers %+v, want %s:%d", tt.listener, md.Brokers, tt.host, tt.port)
		}
		dc := c.roundTrip(kmsg.NewPtrDescribeClusterRequest()).(*kmsg.DescribeClusterResponse)
		if len(dc.Brokers) != 1 || dc.Brokers[0].Host != tt.host || dc.Brokers[0].Port != tt.port {
			t.Errorf("%s: DescribeCluster brokers %+v", tt.listener, dc.Brokers)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = "g"
		fr := c.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
		if fr.Host != tt.host || fr.Port != tt.port {
			t.Errorf("%s: FindCoordinator %s:%d", tt.listener, fr.Host, fr.Port)
		}
	}
}

func TestSecurityConfigErrorsNameTheKey(t *testing.T) {
	for _, tt := range []struct {
		name  string
		props map[string]string
		key   string
		want  string
	}{
		{"duplicate name", map[string]string{"listeners": "PLAINTEXT://:1,PLAINTEXT://:2"}, "listeners", "different name"},
		{"unparsable", map[string]string{"listeners": "PLAINTEXT:/x"}, "listeners", "broker endpoint"},
		{"no protocol", map[string]string{"listeners": "CLIENT://127.0.0.1:0"}, "listener.security.protocol.map", "no security protocol defined for listener CLIENT"},
		{"unknown protocol", map[string]string{"listener.security.protocol.map": "A:TLS"}, "listener.security.protocol.map", "unknown security protocol"},
		{"same port", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9999,SSL://127.0.0.1:9999"}, "listeners", "different port"},
		{"advertised unknown", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0", "advertised.listeners": "SSL://h:1"}, "advertised.listeners", "not among listeners"},
		{"per-listener key", map[string]string{"listener.name.sasl_ssl.log.dirs": "/x"}, "listener.name.sasl_ssl.log.dirs", "cannot be set per listener"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := ConfigFromProperties(tt.props)
			cfg.InMemory = true
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.key+":") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %s: ...%s", err, tt.key, tt.want)
			}
		})
	}
	// Start-up checks of TLS and SASL listeners.
	for _, tt := range []struct {
		name  string
		props map[string]string
		key   string
		want  string
	}{
		{"JKS", map[string]string{"listeners": "SSL://127.0.0.1:0", "ssl.keystore.location": "/x.jks"}, "ssl.keystore.type", "use PEM"},
		{"PKCS12 per listener", map[string]string{"listeners": "SSL://127.0.0.1:0", "listener.name.ssl.ssl.keystore.type": "PKCS12", "listener.name.ssl.ssl.keystore.location": "/x.p12"}, "listener.name.ssl.ssl.keystore.type", "use PEM"},
		{"no key", map[string]string{"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM"}, "ssl.keystore.location", "no certificate"},
		{"GSSAPI", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0"}, "sasl.enabled.mechanisms", "GSSAPI is not supported"},
		{"PLAIN without users", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "PLAIN"}, "listener.name.sasl_plaintext.plain.sasl.jaas.config", "no JAAS config"},
		// Kafka's JaasContext needs a login module for every mechanism.
		{"SCRAM without JAAS", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "SCRAM-SHA-512"}, "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config", "ScramLoginModule required;"},
		{"OAUTHBEARER without JAAS", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "OAUTHBEARER"},
			"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config", "OAuthBearerLoginModule required;"},
		{"global sasl.jaas.config is not the broker's", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "SCRAM-SHA-256",
			"sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;"}, "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", "no JAAS config"},
		{"two login modules", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "SCRAM-SHA-256",
			"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": `a.B required x="1;2"; c.D required;`}, "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", "contains 2 login modules"},
		{"no login module", map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "SCRAM-SHA-256",
			"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": ` `}, "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", "does not contain any login modules"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := ConfigFromProperties(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			cfg.InMemory = true
			b, err := New(cfg)
			if err == nil {
				b.Close(t.Context())
			}
			if err == nil || !strings.Contains(err.Error(), tt.key+":") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %s: ...%s", err, tt.key, tt.want)
			}
		})
	}
}

func TestPrincipalMappingRules(t *testing.T) {
	for _, tt := range []struct {
		rules, dn, want string
		fail            bool
	}{
		{"DEFAULT", "CN=alice,OU=eng,O=Acme", "CN=alice,OU=eng,O=Acme", false},
		{"", "CN=alice", "CN=alice", false},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=svc,OU=ServiceUsers,O=Acme", "svc", false},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=bob,OU=People", "CN=bob,OU=People", false},
		{`RULE:^CN=(.*?),OU=(.*?)$/$1@$2/L`, "CN=Bob,OU=ENG", "bob@eng", false},
		{`RULE:^CN=(.*?),OU=(.*?)$/$1@$2/U`, "CN=Bob,OU=eng", "BOB@ENG", false},
		{`RULE:^CN=(.*)$/$1/`, "OU=x", "", true},
	} {
		pm, err := parsePrincipalRules(tt.rules)
		if err != nil {
			t.Fatalf("%q: %v", tt.rules, err)
		}
		got, err := pm.name(tt.dn)
		if (err != nil) != tt.fail || got != tt.want {
			t.Errorf("rules %q on %q = %q, %v; want %q", tt.rules, tt.dn, got, err, tt.want)
		}
	}
	if _, err := parsePrincipalRules("RULE:broken"); err == nil {
		t.Error("a malformed rule was accepted")
	}
}

// TestMutualTLSPrincipal: the SSL listener maps the client certificate's DN
// with ssl.principal.mapping.rules; a client without a certificate fails
// the handshake when ssl.client.auth=required, and is ANONYMOUS when it is
// requested. Fetches over TLS copy instead of sendfile.
func TestMutualTLSPrincipal(t *testing.T) {
	ca := NewTestCA(t)
	var seen principals
	b := NewTest(t, WithListener(ProtocolSSL), WithTLS(ca, "required"), seen.option(), WithConfig(func(c *Config) {
		c.SSL.PrincipalMappingRules = `RULE:^CN=([^,]*),OU=apps.*$/$1/L,DEFAULT`
	}))
	c := dialAddr(t, b.ListenerAddr("SSL"), ca.ClientTLS(t, pkix.Name{CommonName: "Billing", OrganizationalUnit: []string{"apps"}}))
	c.roundTrip(kmsg.NewPtrMetadataRequest())
	if !seen.has("SSL User:billing") {
		t.Errorf("principals %v, want SSL User:billing", seen.got)
	}
	c = dialAddr(t, b.ListenerAddr("SSL"), ca.ClientTLS(t, pkix.Name{CommonName: "ops", Organization: []string{"Acme"}}))
	c.roundTrip(kmsg.NewPtrMetadataRequest())
	if !seen.has("SSL User:CN=ops,O=Acme") {
		t.Errorf("principals %v, want the DN by DEFAULT", seen.got)
	}
	anon := dialAddr(t, b.ListenerAddr("SSL"), ca.ClientTLS(t, pkix.Name{}))
	anon.send(kmsg.NewPtrMetadataRequest())
	if _, err := anon.read(1, false); err == nil {
		t.Error("a client without a certificate was served with ssl.client.auth=required")
	}

	b2 := NewTest(t, WithListener(ProtocolSSL), WithTLS(ca, "requested"))
	c = dialAddr(t, b2.ListenerAddr("SSL"), ca.ClientTLS(t, pkix.Name{}))
	if md := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(md.Brokers) != 1 || md.Brokers[0].Port != int32(mustPort(t, b2.ListenerAddr("SSL"))) {
		t.Errorf("metadata over SSL: %+v", md.Brokers)
	}
}

func mustPort(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// saslTest starts a broker with a SASL_PLAINTEXT listener, PLAIN user
// alice/alice-pw and SCRAM-SHA-256 user bob/bob-pw.
func saslTest(t *testing.T, opts ...TestOption) (*Broker, *principals) {
	var seen principals
	opts = append([]TestOption{WithListener(ProtocolSASLPlaintext), WithPlainUser("alice", "alice-pw"), WithPlainUser("carol", "carol-pw"),
		WithSCRAMUser(auth.MechanismSCRAMSHA256, "bob", "bob-pw"), seen.option(),
		WithConfig(func(c *Config) { c.FailedAuthenticationDelayMs = 0 })}, opts...)
	return NewTest(t, opts...), &seen
}

func handshake(c *rawConn, version int16, mechanism string) *kmsg.SASLHandshakeResponse {
	c.t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.SetVersion(version)
	req.Mechanism = mechanism
	return c.roundTrip(req).(*kmsg.SASLHandshakeResponse)
}

func authenticate(c *rawConn, version int16, token string) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(version)
	req.SASLAuthBytes = []byte(token)
	return c.roundTrip(req).(*kmsg.SASLAuthenticateResponse)
}

// authFails checks a SASL_AUTHENTICATION_FAILED answer with msg, then the
// close.
func authFails(c *rawConn, r *kmsg.SASLAuthenticateResponse, msg string) {
	c.t.Helper()
	if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != msg {
		c.t.Errorf("authenticate: %+v, want SASL_AUTHENTICATION_FAILED %q", r, msg)
	}
	c.expectClosed()
}

func TestSASLStateMachine(t *testing.T) {
	b, seen := saslTest(t)
	addr := b.ListenerAddr(ProtocolSASLPlaintext)

	t.Run("request before authentication closes", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		c.send(kmsg.NewPtrMetadataRequest())
		c.expectClosed()
	})
	t.Run("one ApiVersions only", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		c.roundTrip(kmsg.NewPtrApiVersionsRequest())
		c.send(kmsg.NewPtrApiVersionsRequest())
		c.expectClosed()
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		r := handshake(c, 1, "GSSAPI")
		if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !slices.Equal(r.SupportedMechanisms, b.cfg.SASLEnabledMechanisms) {
			t.Errorf("handshake: %+v", r)
		}
		c.expectClosed()
	})
	t.Run("wrong password", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		if r := handshake(c, 1, "PLAIN"); r.ErrorCode != 0 || !slices.Contains(r.SupportedMechanisms, "PLAIN") {
			t.Fatalf("handshake: %+v", r)
		}
		authFails(c, authenticate(c, 2, "\x00alice\x00nope"), "Authentication failed: Invalid username or password")
	})
	t.Run("unknown user gets the same answer", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		handshake(c, 1, "PLAIN")
		authFails(c, authenticate(c, 1, "\x00mallory\x00alice-pw"), "Authentication failed: Invalid username or password")
	})
	t.Run("other request during authentication is answered ILLEGAL_SASL_STATE, then closes", func(t *testing.T) {
		// Kafka's handleSaslToken sends the request's error response
		// before failing the authentication.
		c := dialAddr(t, addr, nil)
		handshake(c, 1, "PLAIN")
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
		r := c.roundTrip(req).(*kmsg.MetadataResponse)
		if len(r.Topics) != 1 || *r.Topics[0].Topic != "t" || r.Topics[0].ErrorCode != kerr.IllegalSaslState.Code {
			t.Errorf("metadata during authentication: %+v", r)
		}
		c.expectClosed()
	})
	t.Run("other request during the handshake closes without an answer", func(t *testing.T) {
		// Kafka's handleKafkaRequest refuses it before parsing it.
		c := dialAddr(t, addr, nil)
		c.roundTrip(kmsg.NewPtrApiVersionsRequest())
		c.send(kmsg.NewPtrMetadataRequest())
		c.expectClosed()
	})
	t.Run("PLAIN v1 then served", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		c.roundTrip(kmsg.NewPtrApiVersionsRequest())
		handshake(c, 1, "PLAIN")
		r := authenticate(c, 2, "\x00alice\x00alice-pw")
		if r.ErrorCode != 0 || r.SessionLifetimeMillis != 0 {
			t.Fatalf("authenticate: %+v", r)
		}
		if md := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(md.Brokers) != 1 || md.Brokers[0].Port != int32(mustPort(t, addr)) {
			t.Errorf("metadata: %+v", md.Brokers)
		}
		if r := authenticate(c, 2, "\x00alice\x00alice-pw"); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Errorf("SaslAuthenticate after authentication: %+v", r)
		}
		if !seen.has("SASL_PLAINTEXT User:alice") {
			t.Errorf("principals %v", seen.got)
		}
	})
	t.Run("PLAIN v0 raw tokens", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		handshake(c, 0, "PLAIN")
		token := "\x00carol\x00carol-pw"
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
		c.nc.Write(append(frame, token...))
		var size [4]byte
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c.r, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
			t.Fatalf("raw answer: %v %v", size, err)
		}
		c.roundTrip(kmsg.NewPtrMetadataRequest())
		if !seen.has("SASL_PLAINTEXT User:carol") {
			t.Errorf("principals %v", seen.got)
		}
	})
	t.Run("raw token with a wrong password closes without an answer", func(t *testing.T) {
		c := dialAddr(t, addr, nil)
		handshake(c, 0, "PLAIN")
		token := "\x00carol\x00wrong"
		c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...))
		c.expectClosed()
	})
}

func TestSASLFailureDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	b, _ := saslTest(t, WithConfig(func(c *Config) { c.FailedAuthenticationDelayMs = delay.Milliseconds() }))
	c := dialAddr(t, b.ListenerAddr(ProtocolSASLPlaintext), nil)
	handshake(c, 1, "PLAIN")
	start := time.Now()
	r := authenticate(c, 1, "\x00alice\x00nope")
	if took := time.Since(start); took < delay || r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Errorf("answer after %v (want at least %v): %+v", took, delay, r)
	}
	c.expectClosed()
}

// TestSASLReauthentication: KIP-368. SessionLifetimeMs is
// connections.max.reauth.ms; a new handshake re-authenticates as the same
// principal and mechanism; changing either fails; an expired session is
// closed at its next request.
func TestSASLReauthentication(t *testing.T) {
	b, _ := saslTest(t, WithConfig(func(c *Config) { c.ConnectionsMaxReauthMs = 60_000 }))
	addr := b.ListenerAddr(ProtocolSASLPlaintext)
	login := func(t *testing.T) *rawConn {
		c := dialAddr(t, addr, nil)
		handshake(c, 1, "PLAIN")
		if r := authenticate(c, 2, "\x00alice\x00alice-pw"); r.ErrorCode != 0 || r.SessionLifetimeMillis != 60_000 {
			t.Fatalf("authenticate: %+v", r)
		}
		return c
	}
	t.Run("same principal", func(t *testing.T) {
		c := login(t)
		handshake(c, 1, "PLAIN")
		if r := authenticate(c, 2, "\x00alice\x00alice-pw"); r.ErrorCode != 0 || r.SessionLifetimeMillis != 60_000 {
			t.Fatalf("re-authenticate: %+v", r)
		}
		c.roundTrip(kmsg.NewPtrMetadataRequest())
	})
	t.Run("another principal", func(t *testing.T) {
		c := login(t)
		handshake(c, 1, "PLAIN")
		authFails(c, authenticate(c, 2, "\x00carol\x00carol-pw"), "Cannot change principals during re-authentication from User.alice: User.carol")
	})
	t.Run("another mechanism", func(t *testing.T) {
		c := login(t)
		if r := handshake(c, 1, "SCRAM-SHA-256"); r.ErrorCode != 0 {
			t.Fatalf("handshake: %+v", r)
		}
		c.send(kmsg.NewPtrSASLAuthenticateRequest())
		c.expectClosed()
	})

	short, _ := saslTest(t, WithConfig(func(c *Config) { c.ConnectionsMaxReauthMs = 50 }))
	c := dialAddr(t, short.ListenerAddr(ProtocolSASLPlaintext), nil)
	handshake(c, 1, "PLAIN")
	if r := authenticate(c, 2, "\x00alice\x00alice-pw"); r.SessionLifetimeMillis != 50 {
		t.Fatalf("authenticate: %+v", r)
	}
	time.Sleep(100 * time.Millisecond)
	c.send(kmsg.NewPtrMetadataRequest())
	c.expectClosed()
}

// TestSCRAMCredentialAPIs: Describe/AlterUserScramCredentials with Kafka's
// validation, durable across a restart, and usable for the next login.
func TestSCRAMCredentialAPIs(t *testing.T) {
	dir := t.TempDir()
	opts := []TestOption{OnDisk(), WithListener(ProtocolSASLPlaintext), WithConfig(func(c *Config) { c.DataDir = dir })}
	b := NewTest(t, opts...)
	c := dial(t, b)

	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := func(name string, mech int8, iter int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations = name, mech, iter
		u.Salt = []byte("0123456789abcdef")
		cred, _ := auth.NewSCRAMCredential(auth.MechanismSCRAMSHA256, "unused", u.Salt, 4096)
		u.SaltedPassword = cred.ServerKey // any bytes: the server takes the salted password as sent
		return u
	}
	dana := up("dana", 1, 4096)
	dana.SaltedPassword = saltedPassword(t, "dana-pw", dana.Salt, 4096)
	alter.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{dana, up("few", 1, 100), up("many", 2, 20000), up("", 1, 4096), up("twice", 1, 4096), up("twice", 2, 4096), up("badmech", 9, 4096)}
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "ghost", 1
	alter.Deletions = append(alter.Deletions, del)
	ar := c.roundTrip(alter).(*kmsg.AlterUserSCRAMCredentialsResponse)
	want := map[string]int16{"dana": 0, "few": kerr.UnacceptableCredential.Code, "many": kerr.UnacceptableCredential.Code, "": kerr.UnacceptableCredential.Code,
		"twice": kerr.DuplicateResource.Code, "badmech": kerr.UnsupportedSaslMechanism.Code, "ghost": kerr.ResourceNotFound.Code}
	for _, r := range ar.Results {
		if w, ok := want[r.User]; !ok || w != r.ErrorCode {
			t.Errorf("alter %q: code %d, want %d", r.User, r.ErrorCode, w)
		}
		delete(want, r.User)
	}
	if len(want) != 0 {
		t.Errorf("no result for %v", want)
	}

	describe := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"dana", "nobody"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		describe.Users = append(describe.Users, u)
	}
	dr := c.roundTrip(describe).(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if len(dr.Results) != 2 || dr.Results[0].ErrorCode != 0 || len(dr.Results[0].CredentialInfos) != 1 || dr.Results[0].CredentialInfos[0].Iterations != 4096 ||
		dr.Results[1].ErrorCode != kerr.ResourceNotFound.Code {
		t.Errorf("describe: %+v", dr.Results)
	}

	b.Close(t.Context())
	b = NewTest(t, opts...)
	c = dial(t, b)
	dr = c.roundTrip(kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if len(dr.Results) != 1 || dr.Results[0].User != "dana" {
		t.Fatalf("after restart: %+v", dr.Results)
	}
	cred, ok := b.scram.Lookup("dana", auth.MechanismSCRAMSHA256)
	if !ok || cred.Iterations != 4096 {
		t.Fatalf("dana's credential after restart: %+v %v", cred, ok)
	}
	if err := scramLogin(b.ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA256, "dana", "dana-pw"); err != nil {
		t.Errorf("login with the altered credential: %v", err)
	}
	if err := scramLogin(b.ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA256, "dana", "wrong"); err == nil {
		t.Errorf("login with a wrong password succeeded")
	}
}

func saltedPassword(t *testing.T, password string, salt []byte, iterations int) []byte {
	k, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// scramLogin authenticates with franz-go's SCRAM client and pings.
func scramLogin(addr, mechanism, user, password string) error {
	a := scram.Auth{User: user, Pass: password}
	m := a.AsSha256Mechanism()
	if mechanism == auth.MechanismSCRAMSHA512 {
		m = a.AsSha512Mechanism()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(m))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// TestFetchOverTLS: records on disk reach a TLS consumer intact (fetches
// over TLS copy, sendfile cannot encrypt).
func TestFetchOverTLS(t *testing.T) {
	ca := NewTestCA(t)
	b := NewTest(t, OnDisk(), WithListener(ProtocolSSL), WithTLS(ca, "none"))
	opts := []kgo.Opt{kgo.SeedBrokers(b.ListenerAddr(ProtocolSSL)), kgo.DialTLSConfig(ca.ClientTLS(t, pkix.Name{})), kgo.DefaultProduceTopic("tls"), kgo.AllowAutoTopicCreation()}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const n = 500
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i) + strings.Repeat("v", 2000))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("tls"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for got := 0; got < n; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := strconv.Itoa(got) + strings.Repeat("v", 2000); string(r.Value) != want {
				t.Fatalf("record %d: %q...", got, r.Value[:10])
			}
			got++
		})
	}
}

// TestDescribeConfigsHidesKeys: the TLS key and passwords are sensitive:
// DescribeConfigs names them without their values, as Kafka.
func TestDescribeConfigsHidesKeys(t *testing.T) {
	ca := NewTestCA(t)
	b := NewTest(t, WithListener(ProtocolSSL), WithTLS(ca, "none"), WithConfig(func(c *Config) {
		if err := c.Set(map[string]string{"ssl.keystore.key": c.SSL.KeystoreKey}); err != nil {
			t.Fatal(err)
		}
	}))
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.SetVersion(4)
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	req.Resources, req.IncludeSynonyms = append(req.Resources, r), true
	resp := dial(t, b).roundTrip(req).(*kmsg.DescribeConfigsResponse)
	found := false
	for _, c := range resp.Resources[0].Configs {
		if c.Name != "ssl.keystore.key" {
			continue
		}
		found = true
		if c.Value != nil || !c.IsSensitive || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("ssl.keystore.key: value %v sensitive %v source %v", c.Value, c.IsSensitive, c.Source)
		}
		for _, s := range c.ConfigSynonyms {
			if s.Value != nil {
				t.Errorf("synonym %v shows the key", s.Source)
			}
		}
	}
	if !found {
		t.Error("ssl.keystore.key not described")
	}
}

// TestInlinePEMFromProperties: a server.properties with the key material
// inline on one line (as Kafka's docs show it) serves TLS.
func TestInlinePEMFromProperties(t *testing.T) {
	ca := NewTestCA(t)
	oneLine := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ") }
	text := "listeners=SSL://127.0.0.1:0\nssl.keystore.type=PEM\nssl.truststore.type=PEM\n" +
		"ssl.keystore.certificate.chain=" + oneLine(ca.serverChain) + "\n" +
		"ssl.keystore.key=" + oneLine(ca.serverKey) + "\n" +
		"ssl.truststore.certificates=" + oneLine(ca.CertPEM) + "\nssl.client.auth=required\n"
	props, err := ReadProperties(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	b := NewTest(t, WithConfig(func(c *Config) {
		if err := c.Set(props); err != nil {
			t.Fatal(err)
		}
	}))
	c := dialAddr(t, b.ListenerAddr(ProtocolSSL), ca.ClientTLS(t, pkix.Name{CommonName: "inline"}))
	c.roundTrip(kmsg.NewPtrMetadataRequest())
}
