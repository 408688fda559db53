package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// controllerSASLSSL makes the controller listener SASL_SSL with PLAIN (the
// nodes log in as user with password, and accept broker/broker-pw), TLS
// keys from ca.
func controllerSASLSSL(ca *TestCA, user, password string) TestOption {
	return func(c *Config) {
		WithTLS(ca, "none")(c)
		if err := c.Set(map[string]string{
			"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL",
			"controller.listener.names":                        "CONTROLLER",
			"sasl.mechanism.controller.protocol":               "PLAIN",
			"listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
			"listener.name.controller.plain.sasl.jaas.config": fmt.Sprintf(`org.apache.kafka.common.security.plain.PlainLoginModule required username=%q password=%q user_broker="broker-pw";`,
				user, password),
		}); err != nil {
			panic(err) // the test's own keys
		}
	}
}

// Nodes whose controller listener is SASL_SSL log in to each other as
// User:broker (registration, heartbeats, forwarded creations), the Raft
// stream on that port needs a client certificate, and a node with a wrong
// password fails to register with SASL_AUTHENTICATION_FAILED.
func TestClusterControllerListenerSASLSSL(t *testing.T) {
	ca := NewTestCA(t)
	var seen principals
	c := NewTestCluster(t, 3, controllerSASLSSL(ca, "broker", "broker-pw"), seen.option())
	if !seen.has("CONTROLLER User:broker") {
		t.Fatalf("principals on the controller listener: %v", seen.got)
	}
	for _, p := range seen.got {
		if strings.HasPrefix(p, "CONTROLLER ") && p != "CONTROLLER User:broker" {
			t.Errorf("a controller-listener connection as %s", p)
		}
	}

	// A creation through a node that is not the controller is forwarded
	// over SASL_SSL; kgo produces and consumes through every leader.
	ctl := c.Controller()
	other := ctl%3 + 1
	if err := createTopic(t, nodeClient(t, c.Broker(other)), "t", 3, 1); err != nil {
		t.Fatalf("creating a topic through node %d: %v", other, err)
	}
	c.AwaitTopic("t", 3)
	cl := clusterClient(t, c, kgo.DefaultProduceTopic("t"), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	for n := 0; n < 30; {
		f := cl.PollFetches(ctx)
		if err := f.Err0(); err != nil {
			t.Fatalf("consumed %d of 30: %v", n, err)
		}
		n += f.NumRecords()
	}

	// Raft on the controller port: only after a SASL login, not with the
	// preamble first, with or without TLS.
	first := c.cfgs[1]
	addr := first.voters()[1]
	for name, probe := range map[string]struct {
		dial func() (net.Conn, error)
		send string
	}{
		// Not a TLS record: the handshake fails.
		"plain TCP": {func() (net.Conn, error) { return net.Dial("tcp", addr) }, "RAFT\x00\x00\x00\x00"},
		"TLS without a client certificate": {func() (net.Conn, error) {
			return tls.Dial("tcp", addr, ca.ClientTLS(t, pkix.Name{}))
		}, "RAFT"},
	} {
		nc, err := probe.dial()
		if err != nil {
			continue // refused at the handshake: as good
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, probe.send)
		// Closed at once; Raft would wait for a request.
		var ne net.Error
		if _, err := nc.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the connection was not closed: %v", name, err)
		}
		nc.Close()
	}

	// A node with a wrong password: the controller does not take its
	// registration (nor its Raft connections: it follows the log over
	// those the others dial to it).
	c.Stop(3)
	cfg := c.cfgs[3]
	controllerSASLSSL(ca, "broker", "wrong")(&cfg)
	c.cfgs[3] = cfg
	if err := c.start(3); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	var err error
	for rctx.Err() == nil {
		if err = c.Broker(3).cluster.register(rctx); !errors.Is(err, kerr.NotController) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("registration with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if !peerLoginError(err) {
		t.Errorf("%v is not reported as a login failure", err)
	}
}

// Start-up refuses what cannot log a node in, naming the key.
func TestPeerSecurityConfigErrors(t *testing.T) {
	ca := NewTestCA(t)
	for _, tt := range []struct {
		name string
		opt  TestOption
		want string
	}{
		{"no username", func(c *Config) {
			controllerSASLSSL(ca, "", "")(c)
		}, "listener.name.controller.plain.sasl.jaas.config: no username and password"},
		{"GSSAPI", func(c *Config) {
			controllerSASLSSL(ca, "broker", "broker-pw")(c)
			c.SASLMechanismController = "GSSAPI"
		}, "sasl.mechanism.controller.protocol: listener CONTROLLER uses SASL and GSSAPI cannot"},
		{"SSL controller without a trust store", func(c *Config) {
			controllerSASLSSL(ca, "broker", "broker-pw")(c)
			c.ListenerProtocols["CONTROLLER"] = ProtocolSSL
			c.SSL.TruststoreCertificates = ""
		}, "ssl.truststore.location: the controller listener CONTROLLER is SSL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if err := cfg.Set(map[string]string{"process.roles": "broker,controller", "node.id": "1",
				"controller.quorum.voters": "1@" + freeAddr(t) + ",2@" + freeAddr(t)}); err != nil {
				t.Fatal(err)
			}
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
			tt.opt(&cfg)
			b, err := New(cfg)
			if err == nil {
				b.Close(t.Context())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("start-up error %v, want ...%s", err, tt.want)
			}
		})
	}
}

// A controller listener with SCRAM: the nodes log in with the user the
// cluster starts with (kafka-storage format --add-scram, here
// WithSCRAMUser), which the first controller writes into the empty log
// before any node can register. Raft logs in with it too, before any
// commit: the bootstrap credentials serve until the log has them, also
// when the whole cluster restarts and no node has replayed its log yet. A
// broker-only node then follows the log (AwaitTopic includes it).
func TestClusterControllerListenerSCRAM(t *testing.T) {
	ca := NewTestCA(t)
	var seen principals
	c := NewTestCluster(t, 3, seen.option(), WithSCRAMUser("SCRAM-SHA-512", "broker", "broker-pw"), func(c *Config) {
		WithTLS(ca, "none")(c)
		if err := c.Set(map[string]string{
			"listener.security.protocol.map":                          "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL",
			"sasl.mechanism.controller.protocol":                      "SCRAM-SHA-512",
			"listener.name.controller.sasl.enabled.mechanisms":        "SCRAM-SHA-512",
			"listener.name.controller.scram-sha-512.sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-pw";`,
		}); err != nil {
			panic(err)
		}
	})
	if !seen.has("CONTROLLER User:broker") {
		t.Fatalf("principals: %v", seen.got)
	}
	if err := createTopic(t, clusterClient(t, c), "t", 3, 1); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("t", 3)
	restartAll(t, c)
	c.AddBroker(4) // an observer: its parked Raft connections log in with SCRAM over TLS
	if err := createTopic(t, clusterClient(t, c), "after-restart", 3, 1); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("after-restart", 3)
}
