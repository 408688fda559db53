package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/wirecheck"
)

// reqCtx is what a handler knows about the request it serves.
type reqCtx struct {
	ctx      context.Context // canceled when the connection or the broker closes
	clientID string
	host     string // client's IP
	version  int16
	// principal is who the connection authenticated as, in Kafka's
	// "User:name" form (KafkaPrincipal); User:ANONYMOUS before or without
	// authentication, as on a Kafka PLAINTEXT listener.
	principal string
	// listener is the name of the listener the connection came in on
	// (PLAINTEXT, SASL_SSL, CONTROLLER, ...): Metadata, DescribeCluster and
	// FindCoordinator answer with that listener's endpoints.
	listener string
	// scratch is the connection's reusable buffer for record bytes read
	// from the logs (Fetch): handlers run one at a time per connection and
	// the response is encoded before the next request, so it can be reused.
	scratch *[]byte
	// fetch is the connection's reusable storage for a Fetch (see
	// fetchScratch); nil outside a connection.
	fetch *fetchScratch
	// chunks are file ranges a Fetch response carries behind markers, sent
	// from the segment files by the writer (zero copy); see frame.go.
	chunks []pendingChunk
	// zeroCopy allows chunks: a TCP connection to a broker on disk.
	zeroCopy bool
	// throttle is the quota throttle time the response carries: the
	// connection reads nothing more until it has passed (KIP-219).
	throttle time.Duration
	// await, when a handler sets it, completes the response later (an
	// acks=all Produce waiting for its replicas): it arranges for complete
	// to run once the response is final, on any goroutine, without
	// blocking. The connection goes on reading and handling requests, and
	// the writer sends the responses in request order, this one once
	// complete ran.
	await func(complete func())
}

// dropChunks releases the chunks gathered so far (a long poll gathers again).
func (rc *reqCtx) dropChunks() {
	for _, pc := range rc.chunks {
		pc.chunk.Close()
	}
	rc.chunks = rc.chunks[:0]
}

// conn serves one client connection. Kafka answers the requests of one
// connection strictly in order and handles them one at a time (the channel is
// muted while a request is in flight); kafkit does the same: the read loop
// goroutine decodes and handles each request, and a writer goroutine owns the
// socket's write side so encoding the next response overlaps the write of the
// previous one.
type conn struct {
	b      *Broker
	nc     net.Conn
	host   string
	log    *slog.Logger
	out    chan *frame // encoded responses, in request order; owned by the writer goroutine
	ctx    context.Context
	cancel context.CancelFunc
	// scratch and fetch are lent to each request's handler in turn (see
	// reqCtx).
	scratch []byte
	fetch   fetchScratch
	// reqBuf is the read loop's reusable request buffer (after Produce
	// and Fetch).
	reqBuf []byte
	// clientID is the client id of the last request that had one (see
	// readClientID); handlers only read it.
	clientID *string
	// zeroCopy: fetches may send file chunks (TCP, logs on disk).
	zeroCopy bool
	// principal and listener: see reqCtx.
	principal string
	listener  string
	// sasl runs SaslServerAuthenticator's state machine on a SASL
	// listener (nil on others); see sasl_conn.go.
	sasl *saslConn
	// throttle is the last response's quota throttle (see reqCtx).
	throttle time.Duration
	// upgrade is set when the connection switches to Raft
	// (raft_upgrade.go).
	upgrade *raftUpgrade
}

// respBufs recycles encoded response buffers once the writer has sent them,
// so large fetch responses do not allocate a fresh buffer each time.
var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// connBufSize sizes each connection's read and write buffers: enough to
// batch small pipelined requests and responses into few syscalls, small
// enough for thousands of connections (reads and writes larger than it go
// straight to the socket).
const connBufSize = 16 << 10

// maxPooledResp keeps huge one-off responses from pinning memory in the pool.
const maxPooledResp = 64 << 20

// anonymousPrincipal is Kafka's KafkaPrincipal.ANONYMOUS, the principal of
// an unauthenticated connection.
const anonymousPrincipal = "User:ANONYMOUS"

// plaintextListener is the name of the listener a broker configured with only
// a listen address serves (Kafka's default listeners=PLAINTEXT://:9092).
const plaintextListener = "PLAINTEXT"

// minRequestSize is the smallest request body: api key, version and
// correlation id (the client id may be null).
const minRequestSize = 8

func (b *Broker) serveConn(nc net.Conn, l *boundListener) {
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	ctx, cancel := context.WithCancel(b.ctx)
	c := &conn{
		b: b, nc: nc, host: host, ctx: ctx, cancel: cancel,
		log: b.log.With("remote", nc.RemoteAddr().String()),
		out: make(chan *frame, 64),

		principal: anonymousPrincipal,
		listener:  l.Name,
	}
	if err := c.secure(l); err != nil {
		c.log.Info("closing connection", "reason", err)
		cancel()
		c.nc.Close()
		return
	}
	// TLS connections copy fetch data: sendfile cannot encrypt.
	_, isTCP := c.nc.(*net.TCPConn)
	c.zeroCopy = isTCP && !b.cfg.InMemory
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	err := c.readLoop()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errRaftUpgrade) && b.ctx.Err() == nil {
		c.log.Info("closing connection", "reason", err)
	}
	cancel() // responses still waiting (acks=all) complete at once
	close(c.out)
	wg.Wait()
	cancel()
	if errors.Is(err, errRaftUpgrade) {
		c.upgradeRaft()
		return
	}
	c.nc.Close()
}

// writeLoop writes encoded responses until out is closed. After a write error
// it drains out so the reader never blocks on a dead socket.
func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, connBufSize)
	var failed bool
	for f := range c.out {
		if f.ready != nil {
			<-f.ready
		}
		if failed {
			f.release()
			continue
		}
		err := writeFrame(c.nc, w, f, c.b.cfg.copyChunks)
		f.release()
		if err != nil {
			failed = true
			c.nc.Close()
			continue
		}
		// Flush only when no further response is already waiting, so a burst
		// of pipelined responses leaves in few syscalls.
		if len(c.out) == 0 {
			if err := w.Flush(); err != nil {
				failed = true
				c.nc.Close()
			}
		}
	}
	if !failed {
		w.Flush()
	}
}

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, connBufSize)
	var sizeBuf [4]byte
	maxSize := c.b.cfg.SocketRequestMaxBytes
	idle := time.Duration(c.b.cfg.ConnectionsMaxIdleMs) * time.Millisecond
	for {
		if c.b.ctx.Err() != nil {
			return nil
		}
		if idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.b.ctx.Err() == nil {
				return fmt.Errorf("idle for connections.max.idle.ms=%d", c.b.cfg.ConnectionsMaxIdleMs)
			}
			return err
		}
		if c.sasl != nil && c.wantsRaft(sizeBuf, r) {
			return errRaftUpgrade
		}
		size := int64(int32(binary.BigEndian.Uint32(sizeBuf[:])))
		if size < minRequestSize {
			return fmt.Errorf("invalid request size %d", size)
		}
		if size > maxSize {
			// Kafka closes the connection without reading the body; never
			// allocate a size the client merely claims.
			return fmt.Errorf("request size %d is larger than socket.request.max.bytes=%d", size, maxSize)
		}
		// readN grows its buffer as bytes arrive, so a claimed size alone
		// pins no memory.
		if idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		buf, err := readN(r, int(size), c.reqBuf)
		if err != nil {
			return err
		}
		resp, err := c.serve(buf)
		if err != nil {
			if resp != nil {
				c.out <- resp // the answer that precedes the close (failed authentication)
			}
			return err
		}
		// Produce handlers copy the records into the log and keep nothing
		// of the request (an acks=all response waiting for its replicas
		// has its own topic names), and a Fetch is decoded by copying
		// and answered before the next request is read, so their buffer
		// serves the next request; other handlers may keep slices of
		// theirs (group metadata...).
		if key := int16(binary.BigEndian.Uint16(buf)); key == int16(kmsg.Produce) || key == int16(kmsg.Fetch) {
			c.reqBuf = buf[:0]
		} else {
			c.reqBuf = nil
		}
		if resp != nil {
			// Always hand the response over, even while closing: the
			// writer drains out until it is closed (a dead socket makes it
			// drop, not block).
			c.out <- resp
		}
		c.muteForThrottle(c.throttle)
	}
}

// readN reads exactly n bytes into reuse if it is large enough, else into a
// buffer grown in steps so that a peer claiming a large size but sending
// little costs little memory.
func readN(r io.Reader, n int, reuse []byte) ([]byte, error) {
	const step = 1 << 20
	if n <= cap(reuse) {
		buf := reuse[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	if n <= step {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf := make([]byte, 0, step)
	for len(buf) < n {
		chunk := min(n-len(buf), step)
		if cap(buf)-len(buf) < chunk {
			nb := make([]byte, len(buf), min(n, 2*cap(buf)+chunk))
			copy(nb, buf)
			buf = nb
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk]); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+chunk]
	}
	return buf, nil
}

// errCloseConn asks the read loop to close the connection as Kafka does for a
// request it cannot parse or an API/version it does not know.
var errCloseConn = errors.New("closing connection")

// handle decodes one request frame, runs its handler and returns the encoded
// response frame (nil when none is sent, as for acks=0 produce).
func (c *conn) handle(msg []byte) (out *frame, err error) {
	defer c.recoverRequest(&out, &err)
	var d request // on the stack: decode would allocate it per request
	if ok, out, err := c.decodeInto(msg, &d); !ok {
		return out, err
	}
	key, version, corr, clientID, req, h := d.key, d.version, d.corr, d.clientID, d.req, d.h
	var id string
	if clientID != nil {
		id = *clientID
	}
	rc := &reqCtx{ctx: c.ctx, clientID: id, host: c.host, version: version, scratch: &c.scratch, fetch: &c.fetch, zeroCopy: c.zeroCopy, principal: c.principal, listener: c.listener}
	start := time.Now()
	resp, err := h.fn(rc, req)
	c.throttle = rc.throttle
	if rc.await != nil && err == nil && resp != nil {
		return c.deferred(rc, resp, key, version, corr, start), nil
	}
	c.b.metrics.request(key, version, start)
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		c.b.metrics.fetched(fr, rc.chunks)
	}
	if err != nil || resp == nil {
		rc.dropChunks()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errCloseConn, err)
		}
		return nil, nil
	}
	resp.SetVersion(version)
	// ApiVersions responses always use header v0 so clients can parse them
	// before knowing what the broker speaks.
	flexHeader := resp.IsFlexible() && key != int16(kmsg.ApiVersions)
	if len(rc.chunks) == 0 {
		return bytesFrame(c.encode(corr, resp, flexHeader)), nil
	}
	enc := c.encode(corr, resp, flexHeader)
	f, err := spliceChunks(enc, rc.chunks, resp.IsFlexible())
	if err == nil {
		return f, nil
	}
	c.log.Warn("zero-copy fetch fell back to copying", "err", err)
	if err := copyChunks(resp, rc.chunks); err != nil {
		rc.dropChunks()
		return nil, fmt.Errorf("%w: reading fetch data: %v", errCloseConn, err)
	}
	rc.dropChunks()
	return bytesFrame(c.encode(corr, resp, flexHeader)), nil
}

// deferred is the frame of a response that rc.await completes, encoded by
// whoever completes it (no goroutine waits for it).
func (c *conn) deferred(rc *reqCtx, resp kmsg.Response, key, version int16, corr int32, start time.Time) *frame {
	f := &frame{ready: make(chan struct{})}
	rc.await(func() {
		c.b.metrics.request(key, version, start)
		resp.SetVersion(version)
		f.segs = []frameSeg{{b: c.encode(corr, resp, resp.IsFlexible())}}
		close(f.ready)
	})
	return f
}

// recoverRequest, deferred, turns a panic while serving a request into
// closing the connection: a malformed request must never take the broker
// down; kmsg decoding is bounds-checked, this is the last line of defence
// for handlers and the SASL mechanisms.
func (c *conn) recoverRequest(out **frame, err *error) {
	if r := recover(); r != nil {
		c.log.Error("panic while handling request; closing connection", "panic", r)
		*out, *err = nil, fmt.Errorf("%w: internal error", errCloseConn)
	}
}

// request is a decoded request frame.
type request struct {
	key, version int16
	corr         int32
	clientID     *string
	req          kmsg.Request
	h            *handler
}

// decode parses a request frame. A request it cannot serve closes the
// connection (error), except an ApiVersions of an unknown version, which is
// answered (frame) so the client can pick a version (KIP-511).
func (c *conn) decode(msg []byte) (*request, *frame, error) {
	d := new(request)
	if ok, out, err := c.decodeInto(msg, d); !ok {
		return nil, out, err
	}
	return d, nil, nil
}

// decodeInto is decode into d; ok is false when there is no request to
// serve.
func (c *conn) decodeInto(msg []byte, d *request) (ok bool, _ *frame, _ error) {
	rd := kbin.Reader{Src: msg}
	key := rd.Int16()
	version := rd.Int16()
	corr := rd.Int32()
	clientID := c.readClientID(&rd)
	if rd.Complete() != nil {
		return false, nil, fmt.Errorf("%w: truncated request header", errCloseConn)
	}
	h := c.b.handlers.lookup(key)
	if h == nil {
		return false, nil, fmt.Errorf("%w: unknown api key %d", errCloseConn, key)
	}
	if version < h.min || version > h.max {
		if key == int16(kmsg.ApiVersions) {
			// KIP-511: answer with v0 listing what we support so the client
			// can pick a version.
			return false, bytesFrame(c.encode(corr, c.b.apiVersionsUnsupported(), false)), nil
		}
		return false, nil, fmt.Errorf("%w: unsupported version %d of %s (supported %d-%d)", errCloseConn, version, kmsg.NameForKey(key), h.min, h.max)
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		wirecheck.SkipTags(&rd)
	}
	body := rd.Src
	if err := rd.Complete(); err != nil {
		return false, nil, fmt.Errorf("%w: malformed request header", errCloseConn)
	}
	// kmsg trusts the counts it reads (a forged tag count costs it tens of
	// seconds of CPU); the schema walk bounds every count by the bytes left.
	if err := wirecheck.Request(key, version, body); err != nil {
		return false, nil, fmt.Errorf("%w: %v", errCloseConn, err)
	}
	read := req.ReadFrom
	if key == int16(kmsg.Produce) {
		// Produce keeps nothing of its request past the handler, so its
		// records may alias the frame instead of being copied out of it.
		read = req.(kmsg.UnsafeReadFrom).UnsafeReadFrom
	}
	if err := read(body); err != nil {
		return false, nil, fmt.Errorf("%w: malformed %s v%d request: %v", errCloseConn, kmsg.NameForKey(key), version, err)
	}
	*d = request{key: key, version: version, corr: corr, clientID: clientID, req: req, h: h}
	return true, nil, nil
}

// readClientID reads a request header's client id, the connection's last
// one when it is the same (a client sends one on every request): reading it
// afresh cost a string and a pointer per request.
func (c *conn) readClientID(rd *kbin.Reader) *string {
	if len(rd.Src) >= 2 && c.clientID != nil {
		if n := int(int16(binary.BigEndian.Uint16(rd.Src))); n >= 0 && 2+n <= len(rd.Src) && string(rd.Src[2:2+n]) == *c.clientID {
			rd.Src = rd.Src[2+n:]
			return c.clientID
		}
	}
	id := rd.NullableString()
	if id != nil {
		c.clientID = id
	}
	return id
}

// encode frames a response: size, correlation id, header tags, body.
func (c *conn) encode(corr int32, resp kmsg.Response, flexHeader bool) []byte {
	buf := (*respBufs.Get().(*[]byte))[:8]
	binary.BigEndian.PutUint32(buf[4:], uint32(corr))
	if flexHeader {
		buf = append(buf, 0) // no header tagged fields
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}
