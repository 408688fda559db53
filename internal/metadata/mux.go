package metadata

import (
	"bytes"
	"crypto/tls"
	"errors"
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

// ObserverPreamble opens a connection a broker-only node (an observer)
// dials to a voter and leaves there for the active controller's Raft
// traffic to it (see observer.go); the node's id follows as 4 bytes.
const ObserverPreamble = "RAFO"

// IsPreamble reports whether a connection's first four bytes, or those
// that follow a Kafka connection's authentication, open Raft's stream.
func IsPreamble(head [4]byte) bool {
	return string(head[:]) == RaftPreamble || string(head[:]) == ObserverPreamble
}

// Mux splits a listener's connections by their first four bytes: Raft
// connections (RaftPreamble, consumed) to Raft(), observers' parked ones
// (ObserverPreamble, consumed) to Parked(), every other one, bytes intact,
// to Other().
type Mux struct {
	ln                   net.Listener
	raft, parked, others *muxListener
	closeOnce            sync.Once
	wg                   sync.WaitGroup
	// raftCert: a Raft connection must have presented a client
	// certificate that verified (see RaftClientCertRequired).
	raftCert bool
	// loginOnly: Raft's stream comes only through Upgrade (see
	// RaftLoginRequired).
	loginOnly bool
	// allow, if set, decides whether a Raft connection that opened with
	// its preamble may go on (RaftAuthorizer).
	allow func(nc net.Conn) bool
}

// MuxOption adjusts a Mux.
type MuxOption func(*Mux)

// RaftClientCertRequired makes the Mux close a Raft connection that is not
// TLS with a verified client certificate: on a TLS controller listener
// (ln from tls.NewListener, with ClientCAs and at least
// VerifyClientCertIfGiven) the quorum's stream is authenticated by mutual
// TLS.
func RaftClientCertRequired() MuxOption { return func(m *Mux) { m.raftCert = true } }

// RaftAuthorizer makes the Mux close a Raft connection that allow refuses
// (after RaftClientCertRequired's check): on an SSL listener, whether the
// principal of its client certificate may take part in the quorum.
func RaftAuthorizer(allow func(nc net.Conn) bool) MuxOption {
	return func(m *Mux) { m.allow = allow }
}

// RaftLoginRequired makes the Mux close every connection that opens with a
// Raft preamble: on a SASL listener Raft's stream is a Kafka connection
// that authenticated first and was handed over with Upgrade once its
// principal was found to be a cluster member's.
func RaftLoginRequired() MuxOption { return func(m *Mux) { m.loginOnly = true } }

// preambleTimeout bounds the wait for a new connection's first bytes.
const preambleTimeout = 10 * time.Second

// NewMux starts splitting ln's connections. Without others, connections
// that are not Raft's are closed.
func NewMux(ln net.Listener, others bool, opts ...MuxOption) *Mux {
	m := &Mux{ln: ln, raft: newMuxListener(ln.Addr()), parked: newMuxListener(ln.Addr())}
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

// Parked is the listener of the connections observers leave here for the
// active controller's Raft traffic to them, their preamble consumed.
func (m *Mux) Parked() net.Listener { return m.parked }

// Upgrade hands over a connection whose Kafka side authenticated and then
// sent head, a Raft preamble (IsPreamble): it goes on as Raft's stream.
func (m *Mux) Upgrade(nc net.Conn, head [4]byte) {
	m.route(nc, head)
}

// Other is the listener of the other connections (nil without others).
func (m *Mux) Other() net.Listener { return m.others }

// Close closes the listener and both sides.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		// Without others the Raft side closed ln already when the quorum
		// closed its transport.
		if err = m.ln.Close(); errors.Is(err, net.ErrClosed) {
			err = nil
		}
		m.raft.Close()
		m.parked.Close()
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
			m.parked.Close()
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
	case IsPreamble(head) && (m.loginOnly || m.raftCert && !verifiedClient(nc) || m.allow != nil && !m.allow(nc)):
		nc.Close()
	case IsPreamble(head):
		m.route(nc, head)
	case m.others != nil:
		m.others.deliver(&prefixConn{Conn: nc, r: io.MultiReader(bytes.NewReader(head[:]), nc)})
	default:
		nc.Close()
	}
}

// route delivers a Raft connection to its side.
func (m *Mux) route(nc net.Conn, head [4]byte) {
	if string(head[:]) == ObserverPreamble {
		m.parked.deliver(nc)
	} else {
		m.raft.deliver(nc)
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

// deliver hands nc to the side's Accept; a side nobody accepts on (a
// quorum that takes no observers) closes it after preambleTimeout.
func (l *muxListener) deliver(nc net.Conn) {
	t := time.NewTimer(preambleTimeout)
	defer t.Stop()
	select {
	case l.conns <- nc:
	case <-l.closed:
		nc.Close()
	case <-t.C:
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
