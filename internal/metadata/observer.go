package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Observers, the broker-only nodes, follow the metadata log as Raft
// non-voters, as KRaft's observers fetch it from the leader. hashicorp/raft
// pushes the log: its leader dials each member. A broker-only node has no
// controller listener to be dialed on, and its client listeners cannot
// authenticate the controllers (a SASL_SSL or SSL one speaks TLS before
// anything could tell Raft from Kafka). So the observer dials instead:
// it keeps parkedPerVoter connections open to every voter's controller
// listener, logged in as any of its requests to the controllers is (TLS,
// SASL: QuorumConfig.DialTLS and Login), each opened with
// ObserverPreamble and its node id. The voter parks them; when, as the
// active controller, its transport dials the observer (whose address in
// the quorum's configuration is observerAddr, no host), it takes a parked
// one, and the observer serves Raft on it as on a connection it accepted.
// Once one is used or dies the observer parks another. The observer's
// Raft stream is thereby authenticated like a voter's (the voter's Mux and
// login checks apply to the parked connections), and the observer takes
// Raft traffic only over connections it opened to the configured voters.

// parkedPerVoter is how many idle connections an observer keeps at each
// voter: the leader's transport uses one for the log and one for
// heartbeats, and the next is parked while they are in use.
const parkedPerVoter = 2

// maxParked bounds the connections a voter keeps for one node id (a
// restarted observer's old ones, a peer parking too many).
const maxParked = 8

// observerAddr is an observer's address in the quorum's configuration: a
// name for its parked connections, not a host.
func observerAddr(id int32) raft.ServerAddress {
	return raft.ServerAddress("observer/" + strconv.Itoa(int(id)))
}

func observerID(addr raft.ServerAddress) (int32, bool) {
	s, ok := strings.CutPrefix(string(addr), "observer/")
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), ok && err == nil
}

// AddObserver makes broker-only node id a non-voting member that the
// active controller replicates the metadata log to (hashicorp/raft's
// AddNonvoter): KRaft's observer. A member already known is left alone.
// Only the active controller can add one (ErrNotController).
func (q *Quorum) AddObserver(id int32) error {
	addr := observerAddr(id)
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == serverID(id) && s.Address == addr {
			return nil
		}
	}
	err := q.raft.AddNonvoter(serverID(id), addr, 0, 10*time.Second).Error()
	if err == raft.ErrNotLeader {
		return ErrNotController
	}
	return err
}

// Observers are the non-voting members of the quorum, by id.
func (q *Quorum) Observers() ([]int32, error) {
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []int32
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Nonvoter {
			if n, err := strconv.Atoi(string(s.ID)); err == nil {
				out = append(out, int32(n))
			}
		}
	}
	return out, nil
}

// RemoveObserver takes broker-only node id out of the quorum's
// configuration (an unregistered broker): the active controller stops
// sending it the log. A voter, or an id that is no member, is left alone.
func (q *Quorum) RemoveObserver(id int32) error {
	f := q.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	i := slices.IndexFunc(f.Configuration().Servers, func(s raft.Server) bool { return s.ID == serverID(id) })
	if i < 0 || f.Configuration().Servers[i].Suffrage != raft.Nonvoter {
		return nil
	}
	err := q.raft.RemoveServer(serverID(id), 0, 10*time.Second).Error()
	if err == raft.ErrNotLeader {
		return ErrNotController
	}
	return err
}

// parkingLot is a voter's parked observer connections, by node id, newest
// last.
type parkingLot struct {
	mu     sync.Mutex
	conns  map[int32][]net.Conn
	parked chan struct{} // closed and replaced whenever one is parked
	closed bool
}

func newParkingLot() *parkingLot {
	return &parkingLot{conns: map[int32][]net.Conn{}, parked: make(chan struct{})}
}

func (p *parkingLot) park(id int32, nc net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		nc.Close()
		return
	}
	cs := append(p.conns[id], nc)
	if len(cs) > maxParked {
		cs[0].Close()
		cs = cs[1:]
	}
	p.conns[id] = cs
	close(p.parked)
	p.parked = make(chan struct{})
}

// take returns the newest live connection observer id parked, waiting up
// to timeout for one.
func (p *parkingLot) take(id int32, timeout time.Duration) (net.Conn, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, net.ErrClosed
		}
		var nc net.Conn
		if cs := p.conns[id]; len(cs) > 0 {
			nc, p.conns[id] = cs[len(cs)-1], cs[:len(cs)-1]
		}
		wait := p.parked
		p.mu.Unlock()
		if nc != nil && idle(nc) {
			return nc, nil
		}
		if nc != nil {
			nc.Close()
			continue
		}
		select {
		case <-wait:
		case <-deadline.C:
			return nil, fmt.Errorf("observer %d has no connection parked at this voter (is it running, and can it log in to the controller listener?)", id)
		}
	}
}

// idle reports whether a parked connection is still open with nothing to
// read: an observer sends nothing before it is asked, so anything else
// (its close) means it is no use.
func idle(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := nc.Read(make([]byte, 1))
	nc.SetReadDeadline(time.Time{})
	var ne net.Error
	return n == 0 && errors.As(err, &ne) && ne.Timeout()
}

func (p *parkingLot) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cs := range p.conns {
		for _, nc := range cs {
			nc.Close()
		}
	}
	p.conns = nil
}

// takeParked reads the node id of each connection parked on ln into the
// lot (a voter's).
func (q *Quorum) takeParked(ln net.Listener) {
	defer q.wg.Done()
	go func() {
		<-q.ctx.Done()
		ln.Close() // the Mux's side: Raft's is closed with the transport too
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			var id [4]byte
			nc.SetReadDeadline(time.Now().Add(preambleTimeout))
			if _, err := io.ReadFull(nc, id[:]); err != nil {
				nc.Close()
				return
			}
			nc.SetReadDeadline(time.Time{})
			q.lot.park(int32(binary.BigEndian.Uint32(id[:])), nc)
		}()
	}
}

// startParking keeps parkedPerVoter connections parked at every voter
// (an observer's), serving Raft on them through own.
func (q *Quorum) startParking(own *muxListener) {
	preamble := binary.BigEndian.AppendUint32([]byte(ObserverPreamble), uint32(q.cfg.NodeID))
	for _, id := range slices.Sorted(maps.Keys(q.cfg.Voters)) {
		addr := q.cfg.Voters[id]
		if d, ok := q.cfg.Dial[id]; ok {
			addr = d
		}
		q.wg.Add(1)
		go q.parkAt(own, id, addr, preamble)
	}
	go func() {
		<-q.ctx.Done()
		own.Close()
	}()
}

func (q *Quorum) parkAt(own *muxListener, voter int32, addr string, preamble []byte) {
	defer q.wg.Done()
	slots := make(chan struct{}, parkedPerVoter)
	var lastErr string
	for {
		select {
		case slots <- struct{}{}:
		case <-q.ctx.Done():
			return
		}
		nc, err := q.stream.dial(q.ctx, addr, 10*time.Second, preamble)
		if err != nil {
			<-slots
			// Once per distinct failure: a voter that is down is retried
			// quietly, a login that fails is said.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				q.cfg.Logger.Warn("cannot open the metadata log's connection to a voter", "voter", voter, "addr", addr, "err", err)
			}
			select {
			case <-time.After(q.cfg.ElectionTimeout):
			case <-q.ctx.Done():
				return
			}
			continue
		}
		lastErr = ""
		own.deliver(&parkedConn{Conn: nc, done: sync.OnceFunc(func() { <-slots })})
	}
}

// parkedConn is an observer's parked connection: done frees its slot once
// the voter uses it (the first bytes arrive) or it closes.
type parkedConn struct {
	net.Conn
	done func()
}

func (c *parkedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.done()
	return n, err
}

func (c *parkedConn) Close() error {
	c.done()
	return c.Conn.Close()
}
