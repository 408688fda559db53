package netproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer answers every line with the same line and counts the
// connections it accepted and the lines it received.
type echoServer struct {
	ln       net.Listener
	accepted atomic.Int64
	lines    atomic.Int64
	wg       sync.WaitGroup
}

func startEcho(t *testing.T) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					s.lines.Add(1)
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and waits up to d for its echo.
func roundTrip(c net.Conn, r *bufio.Reader, line string, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return errors.New("echo mismatch: " + got)
	}
	return nil
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// waitFor polls cond every 5 ms for up to 2 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2 s", what)
		}
	}
}

func TestForwards(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	if p.Target() != s.ln.Addr().String() {
		t.Errorf("Target %s", p.Target())
	}
	c, r := dial(t, p.Addr())
	for _, l := range []string{"a", "bb", "ccc"} {
		if err := roundTrip(c, r, l, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if p.Conns() != 1 || p.Accepted() != 1 {
		t.Errorf("conns %d accepted %d, want 1 and 1", p.Conns(), p.Accepted())
	}
}

// A blackholed link holds the bytes of existing connections and delivers
// them, in order, once unblocked; the connection survives.
func TestBlockHoldsExistingConnection(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	c, r := dial(t, p.Addr())
	if err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Block(Both)
	if err := roundTrip(c, r, "during", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip through a blackholed link: %v, want a timeout", err)
	}
	if n := s.lines.Load(); n != 1 {
		t.Errorf("the target received %d lines while the link was blocked, want 1 (the one before)", n)
	}
	p.Unblock()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "during\n" {
		t.Fatalf("after Unblock: %q %v, want the held line", got, err)
	}
	if err := roundTrip(c, r, "after", 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Blocking one direction: the target gets the requests, the dialer no
// answers (an asymmetric partition).
func TestBlockOneDirection(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	c, r := dial(t, p.Addr())
	if err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Block(Backward)
	if err := roundTrip(c, r, "y", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip with Backward blocked: %v, want a timeout", err)
	}
	waitFor(t, "the target receiving the line sent while Backward was blocked", func() bool { return s.lines.Load() == 2 })
	p.Unblock()
	p.Block(Forward)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "y\n" {
		t.Fatalf("Backward unblocked: %q %v, want the held answer", got, err)
	}
	if err := roundTrip(c, r, "z", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip with Forward blocked: %v, want a timeout", err)
	}
	if n := s.lines.Load(); n != 2 {
		t.Errorf("the target received %d lines, want 2 (Forward blocked)", n)
	}
}

// A connection made while Forward is blocked is accepted by the proxy but
// reaches the target only after Unblock.
func TestBlockNewConnection(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	p.Block(Both)
	c, r := dial(t, p.Addr())
	if err := roundTrip(c, r, "held", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip on a new connection through a blackholed link: %v", err)
	}
	if n := s.accepted.Load(); n != 0 {
		t.Errorf("the target accepted %d connections through a blocked link", n)
	}
	p.Unblock()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after Unblock: %q %v", got, err)
	}
}

// Refuse resets open connections and new ones until Unblock.
func TestRefuse(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	c, r := dial(t, p.Addr())
	if err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Refuse()
	if err := roundTrip(c, r, "y", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("round trip on a refused link's open connection: %v, want it closed", err)
	}
	// The reset may come as soon as the dial itself.
	if c2, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		defer c2.Close()
		if err := roundTrip(c2, bufio.NewReader(c2), "y", 2*time.Second); err == nil || isTimeout(err) {
			t.Fatalf("new connection on a refused link: %v, want it closed", err)
		}
	}
	p.Unblock()
	c3, r3 := dial(t, p.Addr())
	if err := roundTrip(c3, r3, "z", 2*time.Second); err != nil {
		t.Fatalf("after Unblock: %v", err)
	}
}

func TestDelay(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	c, r := dial(t, p.Addr())
	const d = 100 * time.Millisecond
	p.Delay(d)
	start := time.Now()
	if err := roundTrip(c, r, "slow", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*d {
		t.Errorf("round trip took %v with %v each way", rtt, d)
	}
	p.Delay(0)
	if err := roundTrip(c, r, "fast", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCloseConns(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	c, r := dial(t, p.Addr())
	if err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.CloseConns()
	if err := roundTrip(c, r, "y", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("round trip after CloseConns: %v, want the connection closed", err)
	}
	waitFor(t, "the closed link to be forgotten", func() bool { return p.Conns() == 0 })
	c2, r2 := dial(t, p.Addr())
	if err := roundTrip(c2, r2, "z", 2*time.Second); err != nil {
		t.Fatalf("new connection after CloseConns: %v", err)
	}
}

// Close ends held connections too (a blocked pump must not outlive it),
// and the port stops accepting.
func TestCloseWhileBlocked(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	c, r := dial(t, p.Addr())
	if err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Block(Both)
	io.WriteString(c, "held\n")
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return with a blocked connection")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Errorf("read after Close: %v, want the connection closed", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts after Close")
	}
}

func TestMaxConns(t *testing.T) {
	s := startEcho(t)
	p := Start(t, s.ln.Addr().String())
	for i := range MaxConns {
		c, r := dial(t, p.Addr())
		if err := roundTrip(c, r, "x", 2*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		defer c.Close()
		if err := roundTrip(c, bufio.NewReader(c), "over", 2*time.Second); err == nil || isTimeout(err) {
			t.Fatalf("connection beyond MaxConns: %v, want it closed", err)
		}
	}
	if p.Conns() != MaxConns {
		t.Errorf("conns %d, want %d", p.Conns(), MaxConns)
	}
}
