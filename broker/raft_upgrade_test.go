package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/metadata"
)

// controllerSASLPlaintext makes the controller listener SASL_PLAINTEXT with
// PLAIN: the nodes log in as User:broker; User:alice can log in too.
func controllerSASLPlaintext(c *Config) {
	if err := c.Set(map[string]string{
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
		"controller.listener.names":                        "CONTROLLER",
		"sasl.mechanism.controller.protocol":               "PLAIN",
		"listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
		"listener.name.controller.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required ` +
			`username="broker" password="broker-pw" user_broker="broker-pw" user_alice="alice-pw";`,
	}); err != nil {
		panic(err) // the test's own keys
	}
}

// raftProbe sends one AppendEntries, of a stale term that changes nothing
// (or req), to addr over a Raft connection opened as dial opens it, and
// returns the answer's term or the transport's error.
func raftProbe(t *testing.T, addr string, dial func(addr string) (net.Conn, error), req ...*raft.AppendEntriesRequest) (uint64, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // raft's transport listens; nothing dials it
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransport(probeStream{ln, dial}, 1, 5*time.Second, io.Discard)
	defer trans.Close()
	req = append(req, &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("99"), Addr: []byte("probe")}})
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries("1", raft.ServerAddress(addr), req[0], &resp)
	return resp.Term, err
}

type probeStream struct {
	net.Listener
	dial func(addr string) (net.Conn, error)
}

func (s probeStream) Dial(addr raft.ServerAddress, _ time.Duration) (net.Conn, error) {
	return s.dial(string(addr))
}

// raftDialer opens a connection, logs it in as user (none when empty) and
// sends preamble.
func raftDialer(user, password, preamble string) func(addr string) (net.Conn, error) {
	return func(addr string) (net.Conn, error) {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if user != "" {
			if err := client.Login(context.Background(), nc, addr, &client.SASL{Mechanism: client.MechanismPlain, User: user, Password: password}); err != nil {
				nc.Close()
				return nil, err
			}
		}
		if _, err := io.WriteString(nc, preamble); err != nil {
			nc.Close()
			return nil, err
		}
		nc.SetDeadline(time.Time{})
		return nc, nil
	}
}

// closedByPeer reports whether the other side closed nc (within 5 s)
// rather than keeping it open.
func closedByPeer(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := nc.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// A SASL_PLAINTEXT controller listener: the quorum forms and follows over
// Raft connections that log in with PLAIN as User:broker (a super user),
// a broker-only node follows the log over the connections it parks at the
// voters, and Raft is refused without a login, to User:alice (logged in,
// no CLUSTER_ACTION) and on the broker-only node's client listener.
func TestClusterControllerListenerSASLPlaintext(t *testing.T) {
	c := NewTestCluster(t, 3, controllerSASLPlaintext, WithAuthorizer("User:broker"),
		WithTestPrincipal(func(id string) string {
			if id == "admin" {
				return "User:broker"
			}
			return anonymousPrincipal
		}))
	c.AddBroker(4)
	admin := principalClient(t, c.Broker(4), "admin")
	if err := createTopic(t, admin, "t", 3, 3); err != nil {
		t.Fatalf("creating a topic through the broker-only node: %v", err)
	}
	c.AwaitTopic("t", 3) // broker 4's image included
	_, p := describeQuorumUntil(t, admin, "broker 4 an observer, caught up", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		return len(p.Observers) == 1 && p.Observers[0].ReplicaID == 4 && p.Observers[0].LogEndOffset == leaderEnd(p)
	})
	ctl := p.LeaderID
	addr := c.Broker(ctl).cluster.voters[ctl]
	term := c.Broker(ctl).cluster.q.Term()

	// The way the nodes do it is answered (with the controller's term:
	// the probe's is stale), which shows the probe can succeed.
	if got, err := raftProbe(t, addr, raftDialer("broker", "broker-pw", metadata.RaftPreamble)); err != nil || got < term {
		t.Fatalf("Raft as User:broker: term %d, %v; want an answer with term >= %d", got, err, term)
	}
	for name, dial := range map[string]func(string) (net.Conn, error){
		"no login":            raftDialer("", "", metadata.RaftPreamble),
		"User:alice":          raftDialer("alice", "alice-pw", metadata.RaftPreamble),
		"broker 4's listener": func(string) (net.Conn, error) { return raftDialer("", "", metadata.RaftPreamble)(c.Broker(4).Addr()) },
	} {
		if _, err := raftProbe(t, addr, dial); err == nil {
			t.Errorf("Raft with %s was answered", name)
		}
	}
	// Nor can they park a connection to be sent the log on.
	for name, dial := range map[string]func(string) (net.Conn, error){
		"no login":   raftDialer("", "", metadata.ObserverPreamble+"\x00\x00\x00\x04"),
		"User:alice": raftDialer("alice", "alice-pw", metadata.ObserverPreamble+"\x00\x00\x00\x04"),
	} {
		nc, err := dial(addr)
		if err != nil {
			continue
		}
		if !closedByPeer(nc) {
			t.Errorf("a connection parked with %s was kept", name)
		}
		nc.Close()
	}
	// A forged entry of a term from the future, as User:alice: refused,
	// and the controller's term and log do not move.
	end := c.Broker(ctl).cluster.q.AppliedOffset()
	forged := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("99"), Addr: []byte("probe")}, Term: term + 1000,
		PrevLogEntry: end, PrevLogTerm: term, LeaderCommitIndex: end + 1,
		Entries: []*raft.Log{{Index: end + 1, Term: term + 1000, Type: raft.LogCommand, Data: []byte("forged")}}}
	if _, err := raftProbe(t, addr, raftDialer("alice", "alice-pw", metadata.RaftPreamble), forged); err == nil {
		t.Error("a forged AppendEntries as User:alice was answered")
	}
	if got := c.Broker(ctl).cluster.q.Term(); got >= term+1000 {
		t.Errorf("the controller's term went to %d", got)
	}

	// The cluster still works: a creation through the broker-only node.
	if err := createTopic(t, admin, "after", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("after", 1)
}

// An SSL controller listener: Raft is authenticated by mutual TLS, for the
// voters and for a broker-only node's parked connections (the nodes'
// certificates name User:CN=localhost, a super user); a Raft connection
// without a client certificate, or with one whose principal lacks
// CLUSTER_ACTION, is refused.
func TestClusterControllerListenerSSL(t *testing.T) {
	ca := NewTestCA(t)
	c := NewTestCluster(t, 3, WithTLS(ca, "none"), func(c *Config) {
		if err := c.Set(map[string]string{"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL", "controller.listener.names": "CONTROLLER"}); err != nil {
			panic(err)
		}
	}, WithAuthorizer("User:CN=localhost"), WithTestPrincipal(func(id string) string {
		if id == "admin" {
			return "User:CN=localhost"
		}
		return anonymousPrincipal
	}))
	c.AddBroker(4)
	if err := createTopic(t, principalClient(t, c.Broker(4), "admin"), "t", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("t", 3) // broker 4's image included
	ctl := c.Controller()
	addr := c.ControllerAddrs()[ctl]
	tlsDialer := func(cfg *tls.Config) func(string) (net.Conn, error) {
		return func(addr string) (net.Conn, error) {
			nc, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				return nil, err
			}
			if _, err := io.WriteString(nc, metadata.RaftPreamble); err != nil {
				nc.Close()
				return nil, err
			}
			return nc, nil
		}
	}
	if _, err := raftProbe(t, addr, tlsDialer(ca.ClientTLS(t, pkix.Name{CommonName: "localhost"}))); err != nil {
		t.Fatalf("Raft with a node's certificate: %v", err)
	}
	if _, err := raftProbe(t, addr, tlsDialer(ca.ClientTLS(t, pkix.Name{}))); err == nil {
		t.Error("Raft without a client certificate was answered")
	}
	if _, err := raftProbe(t, addr, tlsDialer(ca.ClientTLS(t, pkix.Name{CommonName: "alice"}))); err == nil {
		t.Error("Raft with User:CN=alice's certificate was answered")
	}
}
