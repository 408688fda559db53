package metadata

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"
)

// RaftPreamble opens every connection the quorum dials. The controller's
// port serves both the quorum's Raft traffic and Kafka requests (brokers'
// BrokerRegistration and BrokerHeartbeat, forwarded admin requests), as
// Kafka's CONTROLLER listener does; a Kafka connection starts with a
// request's size, and "RAFT" read as one (0x52414654, 1.38 GB) is beyond
// any request a broker accepts, so the first four bytes tell the two apart.
const RaftPreamble = "RAFT"

// Mux splits a listener's connections by their first four bytes: Raft
// connections (RaftPreamble, consumed) to Raft(), every other one, bytes
// intact, to Other().
type Mux struct {
	ln           net.Listener
	raft, others *muxListener
	closeOnce    sync.Once
	wg           sync.WaitGroup
	// raftCert: a Raft connection must have presented a client
	// certificate that verified (see RaftClientCertRequired).
	raftCert bool
}

// MuxOption adjusts a Mux.
type MuxOption func(*Mux)

// RaftClientCertRequired makes the Mux close a Raft connection that is not
// TLS with a verified client certificate: on a TLS controller listener
// (ln from tls.NewListener, with ClientCAs and at least
// VerifyClientCertIfGiven) the quorum's stream is authenticated by mutual
// TLS. SASL cannot authenticate it: it is not a Kafka connection.
func RaftClientCertRequired() MuxOption { return func(m *Mux) { m.raftCert = true } }

// preambleTimeout bounds the wait for a new connection's first bytes.
const preambleTimeout = 10 * time.Second

// NewMux starts splitting ln's connections. Without others, connections
// that are not Raft's are closed.
func NewMux(ln net.Listener, others bool, opts ...MuxOption) *Mux {
	m := &Mux{ln: ln, raft: newMuxListener(ln.Addr())}
	for _, o := range opts {
		o(m)
	}
	if others {
		m.others = newMuxListener(ln.Addr())
	} else {
		// Closing the only side closes the port (raft's transport closes
		// its listener when the quorum closes).
		m.raft.onClose = func() { ln.Close() }
	}
	m.wg.Add(1)
	go m.accept()
	return m
}

// Raft is the listener of the Raft connections.
func (m *Mux) Raft() net.Listener { return m.raft }

// Other is the listener of the other connections (nil without others).
func (m *Mux) Other() net.Listener { return m.others }

// Close closes the listener and both sides.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.ln.Close()
		m.raft.Close()
		if m.others != nil {
			m.others.Close()
		}
		m.wg.Wait()
	})
	return err
}

func (m *Mux) accept() {
	defer m.wg.Done()
	for {
		nc, err := m.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			m.raft.Close()
			if m.others != nil {
				m.others.Close()
			}
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.classify(nc)
		}()
	}
}

func (m *Mux) classify(nc net.Conn) {
	var head [len(RaftPreamble)]byte
	nc.SetReadDeadline(time.Now().Add(preambleTimeout))
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		nc.Close()
		return
	}
	nc.SetReadDeadline(time.Time{})
	switch {
	case string(head[:]) == RaftPreamble && m.raftCert && !verifiedClient(nc):
		nc.Close()
	case string(head[:]) == RaftPreamble:
		m.raft.deliver(nc)
	case m.others != nil:
		m.others.deliver(&prefixConn{Conn: nc, r: io.MultiReader(bytes.NewReader(head[:]), nc)})
	default:
		nc.Close()
	}
}

// muxListener is one side of a Mux.
type muxListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	// onClose, if set, runs when the side is closed.
	onClose func()
}

func newMuxListener(addr net.Addr) *muxListener {
	return &muxListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *muxListener) deliver(nc net.Conn) {
	select {
	case l.conns <- nc:
	case <-l.closed:
		nc.Close()
	}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *muxListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		if l.onClose != nil {
			l.onClose()
		}
	})
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.addr }

// verifiedClient reports whether nc is TLS with a client certificate that
// verified against the listener's ClientCAs.
func verifiedClient(nc net.Conn) bool {
	tc, ok := nc.(*tls.Conn)
	return ok && len(tc.ConnectionState().VerifiedChains) > 0
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn is the connection under the read bytes (a *tls.Conn on a TLS
// listener), as tls.Conn.NetConn names its own.
func (c *prefixConn) NetConn() net.Conn { return c.Conn }
