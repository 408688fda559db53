package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/internal/auth"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/props"
)

// Node-to-node security. A node's own connections log in to another
// node's listener as a Kafka broker does: TLS with the listener's ssl.*
// trust store (and its key store as the client certificate), SASL with
// sasl.mechanism.controller.protocol (to the controller listener) or
// sasl.mechanism.inter.broker.protocol (to the inter-broker listener) and
// the username and password of that listener's
// listener.name.<l>.<mechanism>.sasl.jaas.config. Requests to the
// controllers (registration, heartbeats, forwarded admin requests,
// producer ids, AlterPartition) go to the controller listener; requests
// between brokers (replica fetching, transaction markers, transaction
// verifications) go to the other broker's inter-broker listener
// (cluster.clientOn), whose principal needs CLUSTER_ACTION as in Kafka.
//
// The quorum's Raft stream shares the controller port (see metadata.Mux)
// and is authenticated as a Kafka connection to that listener would be:
//   - PLAINTEXT: not at all, as Kafka's PLAINTEXT listener; Raft
//     connections open with metadata.RaftPreamble.
//   - SSL: by mutual TLS: the port speaks TLS before the split, a Raft
//     connection must present a client certificate the listener's trust
//     store verifies, whose principal (ssl.principal.mapping.rules) has
//     CLUSTER_ACTION as below; the node dials with its key store's.
//   - SASL_PLAINTEXT and SASL_SSL: a Raft connection is a Kafka connection
//     first (TLS on SASL_SSL): ApiVersions, SaslHandshake and
//     SaslAuthenticate with sasl.mechanism.controller.protocol and the
//     listener's JAAS username and password (internal/client's Login), as
//     the node's requests to the controllers log in. Then, instead of a
//     request, it sends the Raft preamble; the accepting node's connection
//     hands itself over to Raft (conn.upgradeRaft) if its principal has
//     CLUSTER_ACTION on the cluster (super.users have it; without an
//     authorizer any authenticated principal, as every API is allowed
//     then), else closes. A connection that opens with the preamble
//     without logging in is closed (metadata.RaftLoginRequired). Kafka's
//     KRaft authenticates its Raft RPCs the same way, being Kafka
//     requests. The session is not re-authenticated
//     (connections.max.reauth.ms): Raft keeps the connection as long as
//     it works.
// Broker-only nodes get the log over connections they open to the voters'
// controller listener themselves, logged in the same way
// (internal/metadata/observer.go): they take Raft traffic on no port of
// their own.

// listenerProtocol is the security protocol of a listener name, one that
// is not in listeners included (a controller listener bound at its
// controller.quorum.voters address): listener.security.protocol.map, else
// PLAINTEXT for a controller listener, as Kafka maps it.
func (c *Config) listenerProtocol(name string) string {
	for _, l := range c.Listeners {
		if l.Name == name && l.Protocol != "" {
			return l.Protocol
		}
	}
	m := c.ListenerProtocols
	if m == nil {
		m = defaultProtocolMap
	}
	if p, ok := m[name]; ok {
		return p
	}
	if slices.Contains(c.controllerNames(), name) {
		return ProtocolPlaintext
	}
	return ""
}

// interBrokerListener is inter.broker.listener.name, else the listener
// named security.inter.broker.protocol, else the first client listener.
func (c *Config) interBrokerListener() string {
	switch {
	case c.InterBrokerListenerName != "":
		return c.InterBrokerListenerName
	case c.InterBrokerProtocol != "":
		return c.InterBrokerProtocol
	}
	for _, l := range c.Listeners {
		if !slices.Contains(c.controllerNames(), l.Name) {
			return l.Name
		}
	}
	return plaintextListener
}

// controllerOpts are the kgo options of this node's connections to the
// controllers' listener.
func (c *Config) controllerOpts() ([]kgo.Opt, error) {
	return c.peerOpts(c.controllerNames()[0], c.SASLMechanismController, "sasl.mechanism.controller.protocol")
}

// interBrokerOpts are the kgo options of this node's connections to other
// brokers' inter-broker listener (replica fetching, issue 12); start-up
// checks them.
func (c *Config) interBrokerOpts() ([]kgo.Opt, error) {
	return c.peerOpts(c.interBrokerListener(), c.SASLMechanismInterBroker, "sasl.mechanism.inter.broker.protocol")
}

// peerOpts are the kgo options that log this node in to listener.
func (c *Config) peerOpts(listener, mechanism, mechKey string) ([]kgo.Opt, error) {
	proto := c.listenerProtocol(listener)
	var opts []kgo.Opt
	if strings.HasSuffix(proto, "SSL") {
		cfg, err := c.peerTLS(listener, proto)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if strings.HasPrefix(proto, "SASL_") {
		m, err := c.peerSASL(listener, mechanism, mechKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// peerTLS is the client side of a TLS listener: its trust store verifies
// the other node, its key store's certificate is this node's.
func (c *Config) peerTLS(listener, proto string) (*tls.Config, error) {
	srv, _, err := c.listenerTLS(listener, proto)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: srv.Certificates, RootCAs: srv.ClientCAs}, nil
}

// peerSASL is the SASL login of this node to listener with mechanism.
func (c *Config) peerSASL(listener, mechanism, mechKey string) (sasl.Mechanism, error) {
	user, pass, err := c.peerCredentials(listener, mechanism, mechKey)
	if err != nil {
		return nil, err
	}
	switch mechanism {
	case auth.MechanismPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case auth.MechanismSCRAMSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	}
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
}

// peerCredentials are the username and password this node logs in to
// listener with, from its JAAS config for mechanism.
func (c *Config) peerCredentials(listener, mechanism, mechKey string) (user, pass string, err error) {
	switch mechanism {
	case auth.MechanismPlain, auth.MechanismSCRAMSHA256, auth.MechanismSCRAMSHA512:
	default:
		return "", "", fmt.Errorf("%s: listener %s uses SASL and %s cannot log a kafkit node in to it: set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechKey, listener, mechanism)
	}
	key := strings.ToLower(mechanism) + ".sasl.jaas.config"
	jaas, _, _ := c.listenerKey(listener, key)
	for _, o := range props.JAASOptions(jaas) {
		switch o.Key {
		case "username":
			user = o.Value
		case "password":
			pass = o.Value
		}
	}
	if user == "" {
		return "", "", fmt.Errorf("%s: no username and password for this node's own connections to listener %s with %s (username=\"...\" password=\"...\", as Kafka's broker logs in)", listenerKeyName(listener, key), listener, mechanism)
	}
	return user, pass, nil
}

// raftLogin is how this node's Raft connections log in to the controller
// listener: nil unless it is SASL.
func (c *Config) raftLogin() (func(nc net.Conn, addr string) error, error) {
	name := c.controllerNames()[0]
	if !strings.HasPrefix(c.listenerProtocol(name), "SASL_") {
		return nil, nil
	}
	user, pass, err := c.peerCredentials(name, c.SASLMechanismController, "sasl.mechanism.controller.protocol")
	if err != nil {
		return nil, err
	}
	s := &client.SASL{Mechanism: c.SASLMechanismController, User: user, Password: pass}
	return func(nc net.Conn, addr string) error {
		return client.Login(context.Background(), nc, addr, s)
	}, nil
}

// controllerEndpoint is how this node serves its controller listener: the
// socket (TLS before the Raft split on an SSL or SASL_SSL listener), the
// options that make Raft need a client certificate (SSL) or a login
// (SASL), the listener's Kafka side, and the TLS config of this node's
// Raft connections.
func (b *Broker) controllerEndpoint(c *cluster, raw net.Listener) (net.Listener, []metadata.MuxOption, *boundListener, *tls.Config, error) {
	name := b.cfg.controllerNames()[0]
	proto := b.cfg.listenerProtocol(name)
	ctl := &boundListener{Listener: Listener{Name: controllerListener, Protocol: proto}, advHost: b.advHost, advPort: b.advPort}
	var err error
	var opts []metadata.MuxOption
	if ctl.isSASL() {
		if ctl.sasl, err = b.listenerSASL(name); err != nil {
			return nil, nil, nil, nil, err
		}
		opts = append(opts, metadata.RaftLoginRequired())
	}
	if !ctl.isTLS() {
		return raw, opts, ctl, nil, nil
	}
	srv, mapper, err := b.cfg.listenerTLS(name, proto)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	dial, err := b.cfg.peerTLS(name, proto)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if ctl.isSASL() {
		// SASL authenticates Raft too; client certificates are what
		// ssl.client.auth asks of every connection.
		return tls.NewListener(raw, srv), opts, ctl, dial, nil
	}
	if srv.ClientCAs == nil {
		return nil, nil, nil, nil, fmt.Errorf("%s: the controller listener %s is %s: the metadata quorum's Raft stream on it is authenticated by client certificates, which need a trust store", b.cfg.sslKeyName(name, "ssl.truststore.location"), name, proto)
	}
	if srv.ClientAuth == tls.NoClientCert {
		srv.ClientAuth = tls.VerifyClientCertIfGiven // Raft's connections give one
	}
	ctl.principal = mapper
	return tls.NewListener(raw, srv), []metadata.MuxOption{metadata.RaftClientCertRequired(), metadata.RaftAuthorizer(c.raftCertAllowed(mapper))}, ctl, dial, nil
}

// raftDialTLS is the TLS config of a broker-only node's Raft connections
// to the voters (controllerEndpoint gives a voter's): nil unless the
// controller listener is SSL or SASL_SSL.
func (c *Config) raftDialTLS() (*tls.Config, error) {
	name := c.controllerNames()[0]
	proto := c.listenerProtocol(name)
	if !strings.HasSuffix(proto, "SSL") {
		return nil, nil
	}
	return c.peerTLS(name, proto)
}

// peerLoginError reports whether err is this node failing to log in to
// another's listener (credentials, mechanism, certificate or ACLs), which
// retrying does not fix: worth a warning, unlike a controller moving.
func peerLoginError(err error) bool {
	var cv *tls.CertificateVerificationError
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.As(err, &cv)
}
