// Package netproxy is a TCP proxy for fault-injection tests: one Proxy per
// network link (a node dialing another), which a test can cut, slow down or
// reset while the programs on either side keep running, as a network
// partition or a slow link would. It listens on 127.0.0.1 only, holds a
// bounded number of connections, and is closed by the test's cleanup.
package netproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Direction is which bytes of a proxied connection a fault applies to.
type Direction int

const (
	// Forward is the bytes the dialer sends to the target.
	Forward Direction = 1 << iota
	// Backward is the bytes the target sends back to the dialer.
	Backward
	// Both directions.
	Both = Forward | Backward
)

// MaxConns bounds the connections one proxy holds at once; further ones
// are closed as soon as they are accepted.
const MaxConns = 128

// chunkSize is the most one read takes off a connection; queueChunks the
// chunks read ahead of the writer of one direction (what a delayed link
// holds in flight).
const (
	chunkSize   = 32 << 10
	queueChunks = 16
)

// Proxy forwards every connection made to Addr to the target address.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	blocked Direction // blackholed directions
	refuse  bool
	delay   time.Duration
	// open is closed when the blackhole is lifted: a stalled pump waits
	// on the one it saw.
	open     chan struct{}
	conns    map[*link]struct{}
	accepted int
	closed   chan struct{}
	wg       sync.WaitGroup
}

// Start listens on a free 127.0.0.1 port and forwards to target; the proxy
// is closed at the end of tb.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln, open: make(chan struct{}), conns: map[*link]struct{}{}, closed: make(chan struct{})}
	close(p.open)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to be dialed instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Block blackholes dir: bytes in that direction, on the connections open
// now and on new ones, are held (not lost: TCP would retransmit them) until
// Unblock, as when a link's packets are dropped. A new connection is
// accepted, as the kernel would complete its handshake with no program
// involved, but the target is not dialed while Forward is blocked.
func (p *Proxy) Block(dir Direction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked == 0 && dir != 0 {
		p.open = make(chan struct{})
	}
	p.blocked |= dir
}

// Refuse closes every connection (with a reset) and resets new ones until
// Unblock, as when the far side is reachable but nothing listens.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
	p.CloseConns()
}

// Unblock lifts Block and Refuse; held bytes flow again.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked != 0 {
		close(p.open)
	}
	p.blocked, p.refuse = 0, false
}

// Delay holds every chunk of bytes, in both directions, d before passing
// it on (0 removes the delay); it adds latency, not a bandwidth limit.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// CloseConns resets every connection open now; new ones are served.
func (p *Proxy) CloseConns() {
	p.mu.Lock()
	conns := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		conns = append(conns, l)
	}
	p.mu.Unlock()
	for _, l := range conns {
		l.close()
	}
}

// Conns is the number of connections open now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted is how many connections the proxy has accepted in all.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return
	default:
	}
	close(p.closed)
	p.mu.Unlock()
	p.ln.Close()
	p.CloseConns()
	p.wg.Wait()
}

// gate returns a channel closed when dir may flow, and the delay.
func (p *Proxy) gate(dir Direction) (<-chan struct{}, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked&dir != 0 {
		return p.open, p.delay
	}
	return closedChan, p.delay
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		p.mu.Lock()
		p.accepted++
		full, refuse := len(p.conns) >= MaxConns, p.refuse
		var l *link
		if !full && !refuse {
			l = &link{p: p, client: c, done: make(chan struct{})}
			p.conns[l] = struct{}{}
			p.wg.Add(1)
		}
		p.mu.Unlock()
		if l == nil {
			reset(c)
			continue
		}
		go l.serve()
	}
}

// reset closes c with a RST rather than a FIN, as a refused connection
// or a dropped one ends.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// link is one proxied connection.
type link struct {
	p        *Proxy
	client   net.Conn
	mu       sync.Mutex
	upstream net.Conn
	once     sync.Once
	done     chan struct{}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		reset(l.client)
		l.mu.Lock()
		if l.upstream != nil {
			reset(l.upstream)
		}
		l.mu.Unlock()
	})
}

func (l *link) serve() {
	defer l.p.wg.Done()
	defer func() {
		l.close()
		l.p.mu.Lock()
		delete(l.p.conns, l)
		l.p.mu.Unlock()
	}()
	// With Forward blackholed, the connection attempt would not reach
	// the target yet.
	if open, _ := l.p.gate(Forward); !l.wait(open) {
		return
	}
	u, err := net.DialTimeout("tcp", l.p.target, 5*time.Second)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.upstream = u
	l.mu.Unlock()
	select {
	case <-l.done: // closed while dialing
		reset(u)
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pump(l.client, u, Forward) }()
	go func() { defer wg.Done(); l.pump(u, l.client, Backward) }()
	wg.Wait()
}

// wait blocks until ch is closed (true) or the link or proxy closes.
func (l *link) wait(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-l.done:
		return false
	case <-l.p.closed:
		return false
	}
}

type chunk struct {
	b   []byte
	due time.Time
}

// pump copies src to dst, each chunk held for the delay and while dir is
// blackholed; the end of either side ends the link.
func (l *link) pump(src, dst net.Conn, dir Direction) {
	q := make(chan chunk, queueChunks)
	var reader sync.WaitGroup
	reader.Add(1)
	defer reader.Wait() // after close, which ends its Read
	defer l.close()
	go func() {
		defer reader.Done()
		defer close(q)
		for {
			b := make([]byte, chunkSize)
			n, err := src.Read(b)
			if n > 0 {
				_, d := l.p.gate(dir)
				select {
				case q <- chunk{b[:n], time.Now().Add(d)}:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		if open, _ := l.p.gate(dir); !l.wait(open) {
			return
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}
