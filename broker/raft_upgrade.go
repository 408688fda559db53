package broker

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// A Raft connection to a SASL controller listener is a Kafka connection
// until it has authenticated; then it sends the Raft preamble where a
// request's size would be, and the read loop hands the socket to the
// quorum (peer_security.go tells the whole story).

// errRaftUpgrade ends a connection's Kafka side: the socket goes on as the
// quorum's Raft stream (see conn.raftUpgrade).
var errRaftUpgrade = errors.New("the connection switches to Raft")

// raftUpgrade is what the read loop leaves for upgradeRaft: the preamble
// and the reader that may hold the first Raft bytes already.
type raftUpgrade struct {
	head [4]byte
	r    *bufio.Reader
}

// wantsRaft reports whether head, read where a request's size would be, is
// a Raft preamble that this connection may send: an authenticated SASL
// connection of a voter's controller listener. (Elsewhere it reads as a
// size beyond socket.request.max.bytes and closes the connection.)
func (c *conn) wantsRaft(head [4]byte, r *bufio.Reader) bool {
	if c.sasl == nil || c.sasl.state != saslComplete || c.listener != controllerListener ||
		c.b.cluster == nil || c.b.cluster.mux == nil || !metadata.IsPreamble(head) {
		return false
	}
	c.upgrade = &raftUpgrade{head: head, r: r}
	return true
}

// upgradeRaft hands the connection to the quorum once the writer has sent
// every answer, if its principal may take part in it: CLUSTER_ACTION on
// the cluster, as Kafka asks of the inter-node APIs (super.users have it;
// without an authorizer every API is allowed). Otherwise it closes the
// connection, saying why once per principal.
func (c *conn) upgradeRaft() {
	if !c.b.cluster.raftAllowed(c.principal, c.host) {
		c.nc.Close()
		return
	}
	c.nc.SetDeadline(time.Time{})
	c.b.cluster.mux.Upgrade(&readerConn{Conn: c.nc, r: c.upgrade.r}, c.upgrade.head)
}

// raftAllowed reports whether principal, from host, may take part in the
// quorum's Raft stream: CLUSTER_ACTION on the cluster, or no authorizer.
// A refusal is logged once per principal.
func (c *cluster) raftAllowed(principal, host string) bool {
	b := c.b
	rc := &reqCtx{ctx: b.ctx, host: host, principal: principal, listener: controllerListener}
	if b.acls.authz == nil || b.allowedCluster(rc, kmsg.ACLOperationClusterAction) {
		return true
	}
	if _, seen := c.raftRefused.LoadOrStore(principal, true); !seen {
		b.log.Warn("refusing the metadata quorum's Raft stream to a principal without CLUSTER_ACTION on the cluster (the nodes' principal belongs in super.users)",
			"principal", principal, "host", host)
	}
	return false
}

// raftCertAllowed is raftAllowed for a Raft connection of an SSL
// controller listener, whose principal its client certificate names.
func (c *cluster) raftCertAllowed(mapper *principalMapper) func(nc net.Conn) bool {
	return func(nc net.Conn) bool {
		tc, ok := nc.(*tls.Conn)
		if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
			return false
		}
		name, err := mapper.name(tc.ConnectionState().PeerCertificates[0].Subject.String())
		if err != nil {
			return false
		}
		host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
		return c.raftAllowed("User:"+name, host)
	}
}

// readerConn is a connection whose reads go through the buffered reader
// that already holds some of its bytes.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
