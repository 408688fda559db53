package metadata

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// QuorumConfig configures one node of the metadata quorum.
type QuorumConfig struct {
	// NodeID is node.id.
	NodeID int32
	// Voters is controller.quorum.voters: every controller's id and the
	// host:port of its CONTROLLER listener, where the quorum's Raft
	// traffic goes.
	Voters map[int32]string
	// Dir holds the log, the stable store and snapshots (Kafka keeps the
	// metadata log in __cluster_metadata-0 under the first log dir).
	Dir string
	// Listener, if set, is where this node takes the quorum's connections,
	// their RaftPreamble consumed (a Mux's Raft side), and Parked where
	// observers leave theirs (the Mux's Parked side); otherwise a voter
	// listens on its own address in Voters and takes only Raft connections
	// there. An observer listens nowhere (see observer.go).
	Listener, Parked net.Listener
	// DialTLS, if set, makes this node's Raft connections TLS with it
	// (its certificate is the client certificate the others' Mux
	// requires, see RaftClientCertRequired).
	DialTLS *tls.Config
	// Login, if set, authenticates each Raft connection this node dials
	// as a Kafka connection to the controller listener (ApiVersions, then
	// SASL), before its preamble: on a SASL listener the other node hands
	// it to Raft only then (Mux.Upgrade). addr is the address dialed.
	Login func(nc net.Conn, addr string) error
	// OnApply is the FSM's hook (see NewFSM); it may be nil.
	OnApply func(offset uint64, records []Record, img *Image)
	Logger  *slog.Logger
	// Dial, if set, is where this node dials each voter instead of its
	// address in Voters (kafkit.peer.address.overrides: a proxy per link
	// in fault tests); Voters stays the quorum's configuration.
	Dial map[int32]string
	// ElectionTimeout is Kafka's controller.quorum.election.timeout.ms
	// (1 s); hashicorp/raft's heartbeat and election timeouts take it.
	ElectionTimeout time.Duration
	// Observer makes this node a broker-only one (not among Voters): it
	// does not bootstrap the quorum but waits for the active controller to
	// add it as a non-voter (AddObserver), then follows the log, as
	// KRaft's observers do, over connections it dials to the voters
	// itself (observer.go).
	Observer bool
	// Join makes this controller one that a dynamic quorum (KIP-853) adds
	// later: formatted with --no-initial-controllers, it bootstraps
	// nothing and waits, reachable on Listener, for the active controller
	// to add it (AddVoter). Voters may then leave it out.
	Join bool
}

// Quorum is one node of the metadata quorum: a Raft member whose state
// machine is the metadata image.
type Quorum struct {
	cfg   QuorumConfig
	raft  *raft.Raft
	fsm   *FSM
	trans *raft.NetworkTransport
	store *boltStore
	mux   *Mux // the listener OpenQuorum opened itself, if it did
	// followers is what the leader learned of its followers' logs
	// (describe.go).
	followers *followers
	// lot keeps the connections observers parked here (a voter's);
	// stream dials and parks (observer.go).
	lot    *parkingLot
	stream streamLayer
	// ctx ends when the quorum closes: the goroutines of observer.go stop.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrNotController is an append on a node that is not the active
// controller (NOT_CONTROLLER on the wire); ErrUnknownOutcome an append
// whose leadership was lost before it was known to be committed: it may or
// may not have been.
var (
	ErrNotController  = errors.New("metadata: this node is not the active controller")
	ErrUnknownOutcome = errors.New("metadata: leadership lost; the append may or may not have been committed")
)

// OpenQuorum starts this node's Raft member. A node whose log is empty
// bootstraps the quorum with every voter, as each voter does with the same
// list, so a fresh cluster needs no format step.
func OpenQuorum(cfg QuorumConfig) (*Quorum, error) {
	if cfg.Join && cfg.Listener == nil {
		return nil, errors.New("a controller that waits to be added to the quorum needs its listener")
	}
	if _, ok := cfg.Voters[cfg.NodeID]; !ok && !cfg.Observer && !cfg.Join {
		return nil, fmt.Errorf("controller.quorum.voters: node.id %d is not among the voters %v", cfg.NodeID, slices.Sorted(maps.Keys(cfg.Voters)))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: slogWriter{cfg.Logger}, Level: hclog.Info})

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.ElectionTimeout, cfg.ElectionTimeout
	// A leader steps down only after a whole election timeout without a
	// quorum's answers (the most Raft allows): a node whose goroutines a
	// busy machine delays for half of it need not lose the controller.
	rc.LeaderLeaseTimeout = cfg.ElectionTimeout
	rc.Logger = hl

	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("metadata log %s: %w", cfg.Dir, err)
	}
	store := &boltStore{BoltStore: bolt}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl)
	if err != nil {
		store.Close()
		return nil, err
	}
	ln, parked := cfg.Listener, cfg.Parked
	var mux *Mux
	var own *muxListener // an observer's: the connections it parked
	switch {
	case cfg.Observer:
		own = newMuxListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		ln, parked = own, nil
	case ln == nil:
		raw, err := net.Listen("tcp", cfg.Voters[cfg.NodeID])
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("controller listener: %w", err)
		}
		mux = NewMux(raw, false)
		ln, parked = mux.Raft(), mux.Parked()
	}
	lot := newParkingLot()
	stream := streamLayer{Listener: ln, tls: cfg.DialTLS, login: cfg.Login, lot: lot, parkWait: cfg.ElectionTimeout}
	tc := &raft.NetworkTransportConfig{Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl}
	if len(cfg.Dial) > 0 {
		addrs := maps.Clone(cfg.Voters)
		maps.Copy(addrs, cfg.Dial)
		tc.ServerAddressProvider = dialAddrs(addrs)
	}
	trans := raft.NewNetworkTransportWithConfig(tc)
	q := &Quorum{cfg: cfg, fsm: NewFSM(cfg.OnApply), trans: trans, store: store, mux: mux, followers: &followers{},
		lot: lot, stream: stream}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	if q.raft, err = raft.NewRaft(rc, q.fsm, store, store, snaps, trackingTransport{trans, q.followers}); err != nil {
		trans.Close()
		store.Close()
		if mux != nil {
			mux.Close()
		}
		return nil, err
	}
	last := q.raft.LastIndex
	q.followers.leaderLog.Store(&last)
	if has, err := raft.HasExistingState(store, store, snaps); err == nil && !has && !cfg.Observer && !cfg.Join {
		var servers []raft.Server
		for _, id := range slices.Sorted(maps.Keys(cfg.Voters)) {
			servers = append(servers, raft.Server{ID: serverID(id), Address: raft.ServerAddress(cfg.Voters[id])})
		}
		// ErrCantBootstrap means another voter's configuration arrived
		// first: the quorum exists.
		if err := q.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			q.Close()
			return nil, err
		}
	}
	if parked != nil {
		q.wg.Add(1)
		go q.takeParked(parked)
	}
	if own != nil {
		q.startParking(own)
	}
	return q, nil
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// Controller is the active controller's node id, or false while there is
// none (an election is under way or the quorum is lost).
func (q *Quorum) Controller() (int32, bool) {
	_, id := q.raft.LeaderWithID()
	n, err := strconv.Atoi(string(id))
	return int32(n), err == nil && id != ""
}

// IsController reports whether this node is the active controller.
func (q *Quorum) IsController() bool { return q.raft.State() == raft.Leader }

// Append commits records as one batch and returns its offset once this
// node has applied it. Only the active controller appends; others get
// ErrNotController.
func (q *Quorum) Append(ctx context.Context, records ...Record) (uint64, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := q.raft.Apply(EncodeBatch(records...), timeout)
	switch err := f.Error(); {
	case errors.Is(err, raft.ErrNotLeader):
		return 0, ErrNotController
	case errors.Is(err, raft.ErrLeadershipLost):
		return 0, ErrUnknownOutcome
	case err != nil:
		return 0, err
	}
	if err, _ := f.Response().(error); err != nil {
		return f.Index(), err
	}
	return f.Index(), nil
}

// Barrier returns once this node, the active controller, has applied
// every entry committed before the call: a controller that has just been
// elected may not have applied its predecessor's last entries yet.
func (q *Quorum) Barrier(ctx context.Context) error {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := q.raft.Barrier(timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotController
		}
		return err
	}
	return nil
}

// Term is the current Raft term: a new term may have a new controller.
func (q *Quorum) Term() uint64 { return q.raft.CurrentTerm() }

// View runs fn with this node's image (see FSM.View).
func (q *Quorum) View(fn func(*Image)) { q.fsm.View(fn) }

// AppliedOffset is the offset of the last batch this node's image has
// applied. (Raft's own applied index runs ahead of the FSM: it counts
// entries handed to the FSM's goroutine, not yet applied.)
func (q *Quorum) AppliedOffset() uint64 {
	var off uint64
	q.fsm.View(func(img *Image) { off = img.Offset })
	return off
}

// Close leaves Raft, then closes the transport and the log.
func (q *Quorum) Close() error {
	err := q.raft.Shutdown().Error()
	q.cancel()
	err = errors.Join(err, q.trans.Close(), q.store.Close())
	if q.mux != nil {
		err = errors.Join(err, q.mux.Close())
	}
	q.wg.Wait()
	q.lot.close()
	return err
}

// dialAddrs gives raft's transport the address to dial for each voter
// (Voters overlaid with QuorumConfig.Dial).
type dialAddrs map[int32]string

func (d dialAddrs) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return "", fmt.Errorf("quorum member %q is no node id", id)
	}
	if addr, ok := d[int32(n)]; ok {
		return raft.ServerAddress(addr), nil
	}
	return observerAddr(int32(n)), nil
}

// streamLayer is raft's transport over a listener of ours.
type streamLayer struct {
	net.Listener
	tls   *tls.Config // nil: plain TCP
	login func(nc net.Conn, addr string) error
	lot   *parkingLot
	// parkWait bounds the wait for an observer's parked connection.
	parkWait time.Duration
}

// Dial opens a Raft connection: RaftPreamble first (see Mux), after the
// login where there is one. An observer's connection is one it parked
// here.
func (s streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if id, ok := observerID(addr); ok {
		// A live observer parks a connection again within a round trip
		// of its last being used: a longer wait is for one that is gone,
		// and would hold up the replication goroutine raft stops when
		// the observer is removed.
		return s.lot.take(id, min(timeout, s.parkWait))
	}
	return s.dial(context.Background(), string(addr), timeout, []byte(RaftPreamble))
}

// dial connects to a voter's controller listener, logs in and sends
// preamble; ctx ending aborts it.
func (s streamLayer) dial(ctx context.Context, addr string, timeout time.Duration, preamble []byte) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var nc net.Conn
	var err error
	if s.tls != nil {
		nc, err = (&tls.Dialer{Config: s.tls}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(timeout))
	defer context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })()
	if s.login != nil {
		if err := s.login(nc, addr); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if _, err := nc.Write(preamble); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

// slogWriter takes hclog's lines ("... [WARN]  raft: msg: k=v") into slog
// at their level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for tag, l := range map[string]slog.Level{"[TRACE]": slog.LevelDebug - 4, "[DEBUG]": slog.LevelDebug, "[WARN]": slog.LevelWarn, "[ERROR]": slog.LevelError} {
		if strings.Contains(line, tag) {
			level = l
		}
	}
	if i := strings.Index(line, "] "); i >= 0 {
		line = strings.TrimSpace(line[i+2:])
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}

// TransferLeadership hands the active controller's role to another voter
// (a controlled shutdown of the active controller); it returns when the
// transfer is done or failed.
func (q *Quorum) TransferLeadership() error { return q.raft.LeadershipTransfer().Error() }
