package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lane selects which of a broker's connections carries a request. Kafka
// answers one connection's requests in order, so requests the broker may hold
// (Fetch for fetch.max.wait.ms, JoinGroup for the rebalance, Produce waiting
// for acks=all) get their own connection instead of delaying others.
type lane int8

const (
	laneDefault lane = iota
	laneProduce
	laneFetch
	laneFetch2 // a second fetch connection: see RequestFetchAsync
	laneGroup
	numLanes
)

func laneOf(req kmsg.Request) lane {
	switch req.(type) {
	case *kmsg.ProduceRequest:
		return laneProduce
	case *kmsg.FetchRequest:
		return laneFetch
	case *kmsg.JoinGroupRequest, *kmsg.SyncGroupRequest, *kmsg.HeartbeatRequest, *kmsg.LeaveGroupRequest:
		return laneGroup
	case *kmsg.ShareFetchRequest: // long polls, as Fetch
		return laneFetch
	}
	return laneDefault
}

// broker is one broker (or a bootstrap seed, with a negative id) and its
// lazily dialed connections.
type broker struct {
	cl    *Client
	id    int32
	addr  string
	lanes [numLanes]slot
}

// slot holds one lane's connection and its reconnect state.
type slot struct {
	mu      sync.Mutex      // guards every field below
	cur     *conn           // nil until dialed; replaced when dead or retired
	dialing chan struct{}   // non-nil while one caller dials; closed when it finishes
	lastErr error           // the last dial failure, handed to callers that waited on it
	bo      backoff.BackOff // reconnect.backoff.ms .. reconnect.backoff.max.ms
	retryAt time.Time       // no dial before this
}

func (cl *Client) newBroker(id int32, addr string) *broker {
	b := &broker{cl: cl, id: id, addr: addr}
	for i := range b.lanes {
		b.lanes[i].bo = NewBackoff(cl.cfg.ReconnectBackoff, cl.cfg.ReconnectBackoffMax)
	}
	return b
}

// errBackingOff is returned instead of waiting when the caller asked not to
// wait out a reconnect backoff.
var errBackingOff = fmt.Errorf("%w: in reconnect backoff", ErrDial)

// acquire returns a live connection for lane l, dialing if needed. Concurrent
// callers share one dial. After a failed dial or a dropped connection, the
// next dial waits out the reconnect backoff (exponential with jitter); with
// noWait the caller gets errBackingOff instead of waiting.
func (b *broker) acquire(ctx context.Context, l lane, noWait bool) (*conn, error) {
	s := &b.lanes[l]
	for {
		if err := b.cl.closedErr(); err != nil {
			return nil, err
		}
		now := time.Now()
		s.mu.Lock()
		if c := s.cur; c != nil {
			if c.isDead() {
				s.cur = nil
				s.retryAt = c.diedAt.Add(s.bo.NextBackOff())
			} else if err := c.retire(now, b.cl.cfg.ConnMaxIdle); err != nil {
				s.cur = nil
				c.die(err)
			} else {
				s.mu.Unlock()
				return c, nil
			}
		}
		if ch := s.dialing; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			s.mu.Lock()
			err := s.lastErr
			ok := s.cur != nil
			s.mu.Unlock()
			if !ok && err != nil {
				return nil, err
			}
			continue
		}
		if wait := s.retryAt.Sub(now); wait > 0 {
			s.mu.Unlock()
			if noWait {
				return nil, errBackingOff
			}
			if err := b.cl.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		ch := make(chan struct{})
		s.dialing = ch
		s.mu.Unlock()

		c, err := b.cl.dial(b.id, b.addr)

		s.mu.Lock()
		s.dialing = nil
		close(ch)
		if err != nil {
			s.lastErr = err
			s.retryAt = time.Now().Add(s.bo.NextBackOff())
			s.mu.Unlock()
			b.cl.log.Warn("connect failed", "broker", b.id, "addr", b.addr, "err", err)
			return nil, err
		}
		s.bo.Reset()
		s.lastErr, s.retryAt, s.cur = nil, time.Time{}, c
		s.mu.Unlock()
		return c, nil
	}
}

// send queues req on the lane's connection; fn is called once with the
// outcome unless send returns an error. A connection found dead before the
// write is replaced once, since nothing was sent on it.
func (b *broker) send(ctx context.Context, l lane, req kmsg.Request, noWait bool, fn func(kmsg.Response, error)) error {
	for attempt := 0; ; attempt++ {
		c, err := b.acquire(ctx, l, noWait)
		if err != nil {
			return err
		}
		err = c.send(ctx, req, fn)
		if errors.Is(err, errConnDead) {
			if attempt == 0 {
				continue
			}
			return c.err
		}
		return err
	}
}

// request sends req and waits for its response or ctx. When ctx ends first
// the response is discarded on arrival.
func (b *broker) request(ctx context.Context, req kmsg.Request, noWait bool) (kmsg.Response, error) {
	type result struct {
		resp kmsg.Response
		err  error
	}
	done := make(chan result, 1)
	if err := b.send(ctx, laneOf(req), req, noWait, func(r kmsg.Response, err error) { done <- result{r, err} }); err != nil {
		return nil, err
	}
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hasLiveConn reports whether the default lane is connected; Request prefers
// such brokers so that it does not dial when it does not need to.
func (b *broker) hasLiveConn() bool {
	s := &b.lanes[laneDefault]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil && !s.cur.isDead()
}

// close kills the broker's connections; used when the broker leaves the
// metadata or changes address.
func (b *broker) close(err error) {
	for i := range b.lanes {
		s := &b.lanes[i]
		s.mu.Lock()
		if s.cur != nil {
			s.cur.die(err)
		}
		s.mu.Unlock()
	}
}

// dial opens a connection to addr, negotiates versions and authenticates,
// then starts its writer and reader. The TCP connect is bounded by
// socket.connection.setup.timeout.ms and the handshake by request.timeout.ms;
// Close aborts both.
func (cl *Client) dial(id int32, addr string) (*conn, error) {
	cfg := &cl.cfg
	ctx, cancel := context.WithTimeout(cl.ctx, cfg.DialTimeout)
	defer cancel()
	d := &net.Dialer{}
	var (
		nc  net.Conn
		err error
	)
	if cfg.TLS != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: cfg.TLS}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		if cerr := cl.closedErr(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("%w %d (%s): %w", ErrDial, id, addr, err)
	}
	c := newConn(nc, id, addr, cfg)
	nc.SetDeadline(time.Now().Add(cfg.RequestTimeout))
	stop := context.AfterFunc(cl.ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake(cl.ctx, cfg, addr)
	stop()
	if err != nil {
		nc.Close()
		if cerr := cl.closedErr(); cerr != nil {
			return nil, cerr
		}
		if errors.Is(err, ErrSASL) || errors.Is(err, ErrUnsupportedAPI) {
			return nil, err
		}
		return nil, fmt.Errorf("%w %d (%s): handshake: %w", ErrDial, id, addr, err)
	}
	nc.SetDeadline(time.Time{})
	if !cl.startConn(c) {
		nc.Close()
		return nil, ErrClosed
	}
	cl.log.Debug("connected", "broker", id, "addr", addr)
	return c, nil
}

func (c *conn) handshake(ctx context.Context, cfg *Config, addr string) error {
	if err := c.negotiate(cfg.SoftwareName, cfg.SoftwareVersion); err != nil {
		return err
	}
	if cfg.SASL == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return c.authenticate(ctx, cfg.SASL, host)
}
