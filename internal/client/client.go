package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client is a connection to one Kafka cluster, safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled by Close; bounds dials and background metadata refreshes
	cancel context.CancelFunc

	goMu   sync.Mutex         // guards closed, conns and wg.Add, so nothing starts after Close
	closed bool               //
	conns  map[*conn]struct{} // every connection whose goroutines run
	wg     sync.WaitGroup     // every goroutine this client started

	brokersMu sync.RWMutex      // guards brokers and seeds
	brokers   map[int32]*broker // from the latest metadata
	seeds     []*broker         // bootstrap.servers, ids -1, -2, ...

	meta metaCache
}

// New validates cfg, starts the client and bootstraps: it fetches the
// cluster's brokers from the first reachable seed (seeds are tried in random
// order) and fails if none answers before ctx ends or every seed was tried.
// The client then refreshes metadata every metadata.max.age.ms until Close.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cl, err := newSeedClient(cfg)
	if err != nil {
		return nil, err
	}
	if err := cl.refreshBrokers(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("bootstrap from %v: %w", cfg.SeedBrokers, err)
	}
	if !cl.spawn(cl.metadataLoop) {
		return nil, ErrClosed
	}
	return cl, nil
}

// newSeedClient is a client of cfg's seeds that has asked nothing yet.
func newSeedClient(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl := &Client{
		cfg:     cfg,
		log:     cfg.Logger,
		conns:   make(map[*conn]struct{}),
		brokers: make(map[int32]*broker),
	}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	cl.meta.init()
	for i, addr := range cfg.SeedBrokers {
		cl.seeds = append(cl.seeds, cl.newBroker(int32(-1-i), addr))
	}
	return cl, nil
}

// Close stops the client: it fails every pending request with ErrClosed,
// closes every connection and waits for every goroutine the client started.
// It is safe to call more than once.
func (cl *Client) Close() error {
	cl.goMu.Lock()
	if cl.closed {
		cl.goMu.Unlock()
		return nil
	}
	cl.closed = true
	conns := make([]*conn, 0, len(cl.conns))
	for c := range cl.conns {
		conns = append(conns, c)
	}
	cl.goMu.Unlock()
	cl.cancel()
	for _, c := range conns {
		c.die(ErrClosed)
	}
	cl.wg.Wait()
	return nil
}

func (cl *Client) closedErr() error {
	if cl.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// spawn runs fn on a goroutine tracked by Close; it refuses after Close.
func (cl *Client) spawn(fns ...func()) bool {
	cl.goMu.Lock()
	defer cl.goMu.Unlock()
	if cl.closed {
		return false
	}
	for _, fn := range fns {
		cl.wg.Add(1)
		go func() {
			defer cl.wg.Done()
			fn()
		}()
	}
	return true
}

// startConn registers c for Close and starts its writer and reader.
func (cl *Client) startConn(c *conn) bool {
	cl.goMu.Lock()
	defer cl.goMu.Unlock()
	if cl.closed {
		return false
	}
	cl.conns[c] = struct{}{}
	cl.wg.Add(2)
	go func() {
		defer cl.wg.Done()
		c.writeLoop()
	}()
	go func() {
		defer cl.wg.Done()
		c.readLoop()
		cl.goMu.Lock()
		delete(cl.conns, c)
		cl.goMu.Unlock()
	}()
	return true
}

// sleep waits d, or until ctx ends or the client closes.
func (cl *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cl.ctx.Done():
		return ErrClosed
	}
}

// broker returns the broker with id, refreshing metadata once if it is not
// known yet (a new broker, or a coordinator just learned of).
func (cl *Client) broker(ctx context.Context, id int32) (*broker, error) {
	lookup := func() *broker {
		cl.brokersMu.RLock()
		defer cl.brokersMu.RUnlock()
		if b := cl.brokers[id]; b != nil {
			return b
		}
		for _, b := range cl.seeds {
			if b.id == id {
				return b
			}
		}
		return nil
	}
	if b := lookup(); b != nil {
		return b, nil
	}
	if err := cl.refreshBrokers(ctx); err != nil {
		return nil, err
	}
	if b := lookup(); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownBroker, id)
}

// Request sends req to any live broker and waits for its response. It prefers
// brokers it is already connected to, and moves on to the next broker (then
// the seeds) only when a connection cannot be opened, so a request is never
// sent twice. Kafka error codes inside the response are the caller's to read.
func (cl *Client) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var errs []error
	for _, b := range cl.candidates() {
		resp, err := b.request(ctx, req, true)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, ErrDial) || ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, ErrNoBrokers
	}
	return nil, fmt.Errorf("%w: %w", ErrNoBrokers, errors.Join(errs...))
}

// candidates orders brokers for Request: connected ones first, then the rest
// of the known brokers, then the seeds, each group shuffled.
func (cl *Client) candidates() []*broker {
	cl.brokersMu.RLock()
	var live, idle []*broker
	for _, b := range cl.brokers {
		if b.hasLiveConn() {
			live = append(live, b)
		} else {
			idle = append(idle, b)
		}
	}
	seeds := append([]*broker(nil), cl.seeds...)
	cl.brokersMu.RUnlock()
	for _, g := range [][]*broker{live, idle, seeds} {
		rand.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	}
	return append(append(live, idle...), seeds...)
}

// RequestBroker sends req to broker id and waits for its response. Requests to
// one broker are pipelined on its connection (one per lane: produce, fetch,
// group, other). If ctx ends after the request was written, the call returns
// ctx's error and the response is discarded.
func (cl *Client) RequestBroker(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	b, err := cl.broker(ctx, id)
	if err != nil {
		return nil, err
	}
	return b.request(ctx, req, false)
}

// RequestBrokerAsync queues req to broker id and returns once the connection's
// writer has taken it (or it failed to). fn is called exactly once: with the
// response, in request order, on the connection's reader goroutine (an acks=0
// Produce completes with a nil response on the writer goroutine once written);
// or with the error, on the caller's goroutine if the request could not be
// queued. fn must not block: it holds up every later response on the
// connection. ctx bounds only the queuing; once written, the request ends with
// its response, request.timeout.ms or the connection's failure.
func (cl *Client) RequestBrokerAsync(ctx context.Context, id int32, req kmsg.Request, fn func(kmsg.Response, error)) {
	cl.requestAsync(ctx, id, laneOf(req), req, fn)
}

// FetchConns is how many connections to one broker RequestFetchAsync can
// spread Fetch requests over.
const FetchConns = 2

// DefaultConn, as RequestFetchAsync's conn, sends a Fetch on the broker's
// default connection rather than a fetch connection: for a Fetch the broker
// answers at once (closing a fetch session, which is not tied to a
// connection) that must not wait behind a long poll.
const DefaultConn = -1

// RequestFetchAsync is RequestBrokerAsync for a Fetch on the broker's fetch
// connection conn (0 <= conn < FetchConns, or DefaultConn). Kafka answers a
// connection's requests in order, so a Fetch the broker holds for
// fetch.max.wait.ms delays every Fetch behind it on its connection, but none
// on the other.
func (cl *Client) RequestFetchAsync(ctx context.Context, id int32, conn int, req *kmsg.FetchRequest, fn func(kmsg.Response, error)) {
	l := laneDefault
	if conn != DefaultConn {
		l = [FetchConns]lane{laneFetch, laneFetch2}[conn]
	}
	cl.requestAsync(ctx, id, l, req, fn)
}

func (cl *Client) requestAsync(ctx context.Context, id int32, l lane, req kmsg.Request, fn func(kmsg.Response, error)) {
	b, err := cl.broker(ctx, id)
	if err == nil {
		err = b.send(ctx, l, req, false, fn)
	}
	if err != nil {
		fn(nil, err)
	}
}

// FindCoordinator returns the id of the broker coordinating key: a group id
// (keyType 0) or a transactional id (keyType 1). Retriable failures
// (COORDINATOR_NOT_AVAILABLE while the coordinator loads, connection errors)
// are retried with retry.backoff.ms until ctx ends.
func (cl *Client) FindCoordinator(ctx context.Context, keyType int8, key string) (int32, error) {
	bo := NewBackoff(cl.cfg.RetryBackoff, cl.cfg.RetryBackoffMax)
	for {
		id, err := cl.findCoordinator(ctx, keyType, key)
		if err == nil || !IsRetriable(err) {
			return id, err
		}
		cl.log.Debug("find coordinator retry", "key", key, "err", err)
		if serr := cl.sleep(ctx, bo.NextBackOff()); serr != nil {
			return -1, fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
}

func (cl *Client) findCoordinator(ctx context.Context, keyType int8, key string) (int32, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = keyType
	req.CoordinatorKey = key            // v0-v3
	req.CoordinatorKeys = []string{key} // v4+ (batched)
	kresp, err := cl.Request(ctx, req)
	if err != nil {
		return -1, err
	}
	resp := kresp.(*kmsg.FindCoordinatorResponse)
	code, msg, node := resp.ErrorCode, resp.ErrorMessage, resp.NodeID
	if resp.GetVersion() >= 4 {
		if len(resp.Coordinators) != 1 {
			return -1, fmt.Errorf("find coordinator %q: broker answered %d coordinators for one key", key, len(resp.Coordinators))
		}
		c := resp.Coordinators[0]
		code, msg, node = c.ErrorCode, c.ErrorMessage, c.NodeID
	}
	if err := kerr.ErrorForCode(code); err != nil {
		detail := ""
		if msg != nil {
			detail = ": " + *msg
		}
		return -1, fmt.Errorf("find coordinator %q: %w%s", key, err, detail)
	}
	return node, nil
}
