package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/replica"
	"github.com/kafkit/kafkit/internal/storage"
)

// cluster is a node's part in a cluster (process.roles with other voters):
// its member of the metadata quorum, its registration with the active
// controller and, while it is the active controller, the brokers'
// sessions.
//
// A node with the controller role is a voter of the quorum; a broker-only
// node follows the log as a Raft non-voter that the active controller adds
// when it registers (AddNonvoter, KRaft's observers), over connections it
// opens to the voters' CONTROLLER endpoints (metadata/observer.go). A controller-only node
// (process.roles=controller) is a voter that serves only its CONTROLLER
// endpoint, with only the controller's APIs (cluster_controller_only.go):
// it never registers as a broker, so it is in no Metadata answer, leads
// and keeps no partition, and does not forward: not being the active
// controller, it answers NOT_CONTROLLER, as Kafka's controllers do.
//
// A broker node opens a local log for every partition of every topic in
// the image; the replicas' logs are kept by data replication
// (cluster_replica.go), the others stay empty.
type cluster struct {
	b      *Broker
	q      *metadata.Quorum
	mux    *metadata.Mux
	voters map[int32]string
	repl   *replica.Manager
	// caughtUp latches once an applied image holds this run's own
	// registration (see catchUp); raft's FSM goroutine only.
	caughtUp bool
	// hwLoaded is replication-offset-checkpoint as read at start.
	hwLoaded map[storage.TopicPartition]int64

	// incarnation identifies this run of the node (BrokerRegistration).
	incarnation [16]byte
	// epoch is the broker epoch the controller gave this run, 0 until it
	// registered.
	epoch atomic.Int64
	// shutDown is set once the controller allowed a controlled shutdown.
	shutDown atomic.Bool

	// clients reach each controller's CONTROLLER endpoint, one per node
	// and channel.
	clientsMu sync.Mutex
	clients   map[clientKey]peerClient
	// peerOpts log the clients in to the controller listener, interOpts
	// to the inter-broker listener (peer_security.go).
	peerOpts, interOpts []kgo.Opt

	ctl controllerState
	// moves are the coordinators' loads and unloads (cluster_coordinators.go).
	moves coordinatorMoves
	// verified are the transactions verified for partitions led here
	// (cluster_txn.go).
	verified verifiedTxns
	// beforeMarker, set by tests, runs before this node writes a
	// transaction marker to its log: a test holds a coordinator's lock
	// with it.
	beforeMarker atomic.Pointer[func(topic string, partition int32)]

	// bootstrap are the records the cluster starts with
	// (bootstrap_security.go): the first batch ever appended carries them.
	bootstrap []metadata.Record

	// raftRefused are the principals refused Raft on the controller
	// listener, each said once (raft_upgrade.go).
	raftRefused sync.Map

	// secSynced is the image's Security.Offset that the broker's SCRAM
	// credentials, ACLs and quotas were last rebuilt from (FSM goroutine).
	secSynced uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// controllerState is what the active controller keeps outside the log, as
// Kafka's does: the brokers' last heartbeats, reset on becoming active.
type controllerState struct {
	// mu serializes the controller's decisions: each reads the image,
	// appends the records it decided, and returns once they are applied,
	// so the next decision reads an image that has them.
	mu     sync.Mutex
	active bool
	// beatMu guards lastBeat and registered, apart from mu: a heartbeat
	// counts when it arrives, not once the decision lock, held across a
	// Raft append, frees up (on a loaded machine heartbeats queued behind
	// slow appends and the controller fenced live brokers, itself among
	// them). Taken after mu, never before.
	beatMu     sync.Mutex
	lastBeat   map[int32]time.Time
	registered map[int32]uint64 // offset of each broker's registration, when this controller wrote it
	// appliedTerm is the Raft term whose predecessors' entries this
	// node's image is known to have (see decide).
	appliedTerm uint64
	// balanceAt is when the next preferred leader election round is due
	// (cluster_balance.go); only controllerLoop touches it.
	balanceAt time.Time
	// membersMu serializes the quorum membership changes that follow a
	// broker-only node's registration and unregistration, each made after
	// its decision committed: an unregistration's removal must not undo
	// the re-registration that came right after it.
	membersMu sync.Mutex
}

func (c *Config) voters() map[int32]string {
	v, _ := parseVoters(c.QuorumVoters)
	return v
}

// startCluster joins the quorum on the CONTROLLER endpoint, which also
// serves Kafka requests from the other nodes, and starts registering.
func (b *Broker) startCluster() (err error) {
	c := &cluster{b: b, voters: b.cfg.voters(), clients: map[clientKey]peerClient{}, stop: make(chan struct{})}
	c.moves.wake = make(chan struct{}, 1)
	rand.Read(c.incarnation[:])
	c.ctl.lastBeat, c.ctl.registered = map[int32]time.Time{}, map[int32]uint64{}
	if c.bootstrap, err = b.bootstrapRecords(); err != nil {
		return err
	}
	if c.peerOpts, err = b.cfg.controllerOpts(); err != nil {
		return err
	}
	if c.interOpts, err = b.cfg.interBrokerOpts(); err != nil && !b.cfg.controllerOnly() {
		return err // checked at start-up, as Kafka does, for the connections to the inter-broker listener
	}
	// A broker-only node is the quorum's observer: it opens the
	// connections the controller sends it the log on itself
	// (metadata/observer.go), logged in as its other requests to the
	// controllers are.
	observer := !slices.Contains(b.cfg.ProcessRoles, "controller")
	var ctl *boundListener
	var raftTLS *tls.Config
	login, err := b.cfg.raftLogin()
	if err != nil {
		return err
	}
	var quorumLn, parked net.Listener
	if observer {
		if raftTLS, err = b.cfg.raftDialTLS(); err != nil {
			return err
		}
	} else {
		addr := b.cfg.controllerListen()
		if addr == "" {
			addr = c.voters[b.nodeID]
		}
		raw := b.cfg.bound[b.cfg.controllerNames()[0]]
		if raw == nil {
			if raw, err = net.Listen("tcp", addr); err != nil {
				return fmt.Errorf("controller listener (controller.quorum.voters entry of node %d): %w", b.nodeID, err)
			}
		}
		var ln net.Listener
		var muxOpts []metadata.MuxOption
		if ln, muxOpts, ctl, raftTLS, err = b.controllerEndpoint(c, raw); err != nil {
			raw.Close()
			return err
		}
		c.mux = metadata.NewMux(ln, true, muxOpts...)
		quorumLn, parked = c.mux.Raft(), c.mux.Parked()
	}
	// A cluster's security state comes from the log alone, but until the
	// log has any (before the first controller wrote the bootstrap
	// records, or while a restarted node has not replayed its log yet) the
	// bootstrap SCRAM users log the nodes in: the Raft stream of a SASL
	// controller listener with SCRAM needs them before any commit.
	boot := metadata.NewImage()
	if err := boot.Apply(0, c.bootstrap); err != nil {
		return fmt.Errorf("bootstrap records: %w", err)
	}
	b.loadSecurity(boot)
	c.loadCheckpoint()
	voters, join := c.voters, false
	if b.cfg.dynamicQuorum() {
		// A dynamic quorum's controller starts with the voters format
		// gave it, or waits to be added (cluster_dynamic.go).
		if voters, err = readQuorumBootstrap(b.cfg.DataDir); err != nil {
			c.mux.Close()
			return err
		}
		join = voters == nil
	}
	c.startReplication()
	c.q, err = metadata.OpenQuorum(metadata.QuorumConfig{
		NodeID: b.nodeID, Voters: voters, Join: join, Dir: metadataLogDir(b.cfg.DataDir),
		Listener: quorumLn, Parked: parked, DialTLS: raftTLS, Login: login, OnApply: c.onApply, Logger: b.log.With("component", "raft"),
		ElectionTimeout: time.Duration(b.cfg.QuorumElectionTimeoutMs) * time.Millisecond,
		Dial:            b.cfg.peerOverrides(),
		Observer:        observer,
	})
	if err != nil {
		c.repl.Close()
		if c.mux != nil {
			c.mux.Close()
		}
		return err
	}
	b.cluster = c
	b.pids.allocate = c.allocateProducerIDs
	if !observer {
		// Other nodes' Kafka requests on the CONTROLLER port, answered
		// with this node's first client endpoint where one is named.
		b.goStart(func() { b.acceptLoop(c.mux.Other(), ctl) })
	}
	if b.cfg.controllerOnly() {
		c.wg.Add(1)
		go c.controllerLoop()
		return nil
	}
	c.wg.Add(4)
	go c.brokerLoop()
	go c.controllerLoop()
	go c.coordinatorLoop()
	go c.checkpointLoop()
	return nil
}

// controlledShutdown asks the controller, through heartbeats with
// WantShutDown, to move this broker's leaderships away, until it answers
// ShouldShutDown, ctx ends, or broker.session.timeout.ms (at least 10 s)
// passed (the controller would have fenced this broker by then; with the
// quorum lost, as for the last nodes of a whole cluster stopping, none
// answers); the active controller then hands the quorum to another voter.
func (c *cluster) controlledShutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(time.Duration(c.b.cfg.BrokerSessionTimeoutMs)*time.Millisecond, 10*time.Second))
	defer cancel()
	interval := time.Duration(c.b.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond / 4
	for !c.shutDown.Load() && c.epoch.Load() > 0 && ctx.Err() == nil {
		if _, err := c.heartbeat(ctx, true); err != nil {
			c.b.log.Debug("controlled shutdown heartbeat", "err", err)
		}
		if c.shutDown.Load() {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
	if c.q.IsController() {
		c.q.TransferLeadership()
	}
}

// close stops the loops and leaves the quorum (no controlled shutdown: a
// crash or the end of one).
func (c *cluster) close() error {
	close(c.stop)
	c.wg.Wait()
	c.repl.Close()
	if !c.b.crash && !c.b.cfg.controllerOnly() {
		c.writeCheckpoint()
	}
	c.clientsMu.Lock()
	for _, pc := range c.clients {
		pc.cl.Close()
	}
	c.clientsMu.Unlock()
	err := c.q.Close()
	if c.mux != nil {
		err = errors.Join(err, c.mux.Close())
	}
	return err
}

// sleep waits d or until the cluster stops; false when it stopped.
func (c *cluster) sleep(d time.Duration) bool {
	select {
	case <-c.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// brokerLoop registers this broker with the active controller and then
// heartbeats every broker.heartbeat.interval.ms; a STALE_BROKER_EPOCH (the
// controller fenced an older registration) registers again.
func (c *cluster) brokerLoop() {
	defer c.wg.Done()
	interval := time.Duration(c.b.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
	retry := min(interval, 200*time.Millisecond)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), interval+time.Second)
		var err error
		if c.epoch.Load() == 0 {
			err = c.register(ctx)
		} else {
			_, err = c.heartbeat(ctx, false)
		}
		cancel()
		wait := interval
		if err != nil {
			if peerLoginError(err) {
				c.b.log.Warn("cannot log in to the controller listener", "err", err)
			} else {
				c.b.log.Debug("controller request", "err", err)
			}
			wait = retry
		}
		if c.epoch.Load() > 0 && err == nil && c.fencedHere() {
			wait = retry // catching up: heartbeat soon to be unfenced
		}
		if !c.sleep(wait) {
			return
		}
	}
}

// fencedHere reports whether this broker's own image has it fenced.
func (c *cluster) fencedHere() bool {
	fenced := true
	c.q.View(func(img *metadata.Image) {
		if br := img.Brokers[c.b.nodeID]; br != nil && br.Epoch == c.epoch.Load() {
			fenced = br.Fenced
		}
	})
	return fenced
}

// toController sends req to the active controller, as this node's quorum
// member knows it, else to each voter in turn; NOT_CONTROLLER answers move
// on to the next.
func (c *cluster) toController(ctx context.Context, req kmsg.Request, code func(kmsg.Response) int16) (kmsg.Response, error) {
	return c.toControllerOn(ctx, chanDefault, req, code)
}

// toControllerOn is toController over channel ch.
func (c *cluster) toControllerOn(ctx context.Context, ch channel, req kmsg.Request, code func(kmsg.Response) int16) (kmsg.Response, error) {
	if c.b.cfg.controllerOnly() {
		// A controller that is not the active one answers NOT_CONTROLLER
		// and the broker asks the next; it never forwards.
		return nil, kerr.NotController
	}
	ids := c.voterIDs()
	if id, ok := c.q.Controller(); ok {
		ids = append([]int32{id}, ids...)
	}
	var last error = kerr.NotController
	for _, id := range ids {
		if id == c.b.nodeID && !c.q.IsController() {
			// It would answer NOT_CONTROLLER, or forward an admin
			// request to the controller again.
			continue
		}
		cl, err := c.clientOn(id, ch)
		if err != nil {
			return nil, err
		}
		resp, err := cl.SeedBrokers()[0].Request(ctx, attempt(req))
		if err != nil {
			last = err
			continue
		}
		if code(resp) == kerr.NotController.Code {
			continue
		}
		return resp, nil
	}
	return nil, last
}

// attempt is a shallow copy of req for one attempt: kgo sets the version
// on the request it sends, and an attempt abandoned when its context ended
// (a node that does not answer) may still be doing so when the next starts.
func attempt(req kmsg.Request) kmsg.Request {
	v := reflect.New(reflect.TypeOf(req).Elem())
	v.Elem().Set(reflect.ValueOf(req).Elem())
	return v.Interface().(kmsg.Request)
}

// channel is a kind of request between nodes with connections of its own,
// as Kafka gives heartbeats, ISR changes, forwarding, transaction markers
// and transaction verifications each their own channel: a node handles a
// connection's requests one at a time, so a request that waits (for a
// metadata commit, a coordinator, a high watermark) would hold back every
// request behind it, and a heartbeat held back long enough gets its broker
// fenced.
type channel int8

const (
	chanDefault        channel = iota
	chanLifecycle              // BrokerRegistration, BrokerHeartbeat
	chanAlterPartition         // the replica manager's ISR changes
	// chanTxnMarkers carries WriteTxnMarkers and chanTxnVerify
	// AddPartitionsToTxn VerifyOnly (Kafka's
	// TransactionMarkerChannelManager and AddPartitionsToTxnManager have a
	// network client each). When a coordinator held its lock while its
	// markers travelled, two coordinators ending transactions with
	// markers for each other's partitions deadlocked on one connection:
	// each marker queued behind a verification that waited for the other
	// coordinator's lock, until the request timed out, again and again.
	chanTxnMarkers
	chanTxnVerify
	chanReplica // the replica fetchers' Fetch, ListOffsets and OffsetForLeaderEpoch
)

// interBroker reports whether ch carries requests between brokers rather
// than to the controllers: those go to the other broker's endpoint on
// inter.broker.listener.name, as Kafka's replica fetchers, transaction
// marker channel manager and AddPartitionsToTxnManager send theirs.
func (ch channel) interBroker() bool {
	return ch == chanReplica || ch == chanTxnMarkers || ch == chanTxnVerify
}

type clientKey struct {
	id int32
	ch channel
}

// client reaches node id over the default channel.
func (c *cluster) client(id int32) (*kgo.Client, error) { return c.clientOn(id, chanDefault) }

// clientOn reaches node id over channel ch: a broker's endpoint on the
// inter-broker listener for the channels between brokers, else a
// controller on its CONTROLLER endpoint, a broker-only node on the first
// listener it registered.
func (c *cluster) clientOn(id int32, ch channel) (*kgo.Client, error) {
	var addr string
	var ok bool
	opts := c.peerOpts
	if ch.interBroker() {
		name := c.b.cfg.interBrokerListener()
		c.q.View(func(img *metadata.Image) {
			if br := img.Brokers[id]; br != nil {
				for _, l := range br.Listeners {
					if strings.EqualFold(l.Name, name) {
						addr, ok = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), true
					}
				}
			}
		})
		if !ok {
			return nil, fmt.Errorf("node %d registered no %s listener (inter.broker.listener.name)", id, name)
		}
		opts = c.interOpts
	} else if addr, ok = c.voterAddrs()[id]; !ok {
		c.q.View(func(img *metadata.Image) {
			if br := img.Brokers[id]; br != nil && len(br.Listeners) > 0 {
				addr, ok = net.JoinHostPort(br.Listeners[0].Host, strconv.Itoa(int(br.Listeners[0].Port))), true
			}
		})
		if !ok {
			return nil, fmt.Errorf("node %d is neither a controller nor a registered broker", id)
		}
	}
	// Through kafkit.peer.address.overrides where a test put a proxy: all
	// of a node's traffic to another goes through the one proxy of their
	// link.
	if over, ok := c.b.cfg.peerOverrides()[id]; ok {
		addr = over
	}
	c.clientsMu.Lock()
	defer c.clientsMu.Unlock()
	k := clientKey{id, ch}
	if pc, ok := c.clients[k]; ok {
		if pc.addr == addr {
			return pc.cl, nil
		}
		// The broker registered again elsewhere: its requests in flight
		// fail, and their senders retry here.
		pc.cl.Close()
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("kafkit-node-%d", c.b.nodeID)),
		kgo.RequestRetries(0), kgo.DialTimeout(time.Second)}, opts...)...)
	if err != nil {
		delete(c.clients, k)
		return nil, err
	}
	c.clients[k] = peerClient{cl, addr}
	return cl, nil
}

// peerClient is a client of another node and the address it dials.
type peerClient struct {
	cl   *kgo.Client
	addr string
}

// register sends BrokerRegistration with this broker's listener.
func (c *cluster) register(ctx context.Context) error {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = c.b.nodeID, c.b.clusterID, c.incarnation
	for _, ep := range c.b.endpoints() {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port, l.SecurityProtocol = ep.Name, ep.Host, uint16(ep.Port), ep.SecurityProtocol
		req.Listeners = append(req.Listeners, l)
	}
	if c.b.cfg.BrokerRack != "" {
		req.Rack = &c.b.cfg.BrokerRack
	}
	req.PreviousBrokerEpoch = -1
	resp, err := c.toControllerOn(ctx, chanLifecycle, req, func(r kmsg.Response) int16 { return r.(*kmsg.BrokerRegistrationResponse).ErrorCode })
	if err != nil {
		return err
	}
	r := resp.(*kmsg.BrokerRegistrationResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return fmt.Errorf("broker registration: %w", err)
	}
	c.epoch.Store(r.BrokerEpoch)
	c.b.log.Info("registered with the controller", "broker_epoch", r.BrokerEpoch)
	return nil
}

// heartbeat sends one BrokerHeartbeat; ShouldShutDown marks shutDown.
func (c *cluster) heartbeat(ctx context.Context, wantShutDown bool) (*kmsg.BrokerHeartbeatResponse, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = c.b.nodeID, c.epoch.Load()
	req.CurrentMetadataOffset = int64(c.q.AppliedOffset())
	req.WantShutdown = wantShutDown
	resp, err := c.toControllerOn(ctx, chanLifecycle, req, func(r kmsg.Response) int16 { return r.(*kmsg.BrokerHeartbeatResponse).ErrorCode })
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.BrokerHeartbeatResponse)
	switch err := kerr.ErrorForCode(r.ErrorCode); {
	case errors.Is(err, kerr.StaleBrokerEpoch), errors.Is(err, kerr.BrokerIDNotRegistered):
		c.b.log.Info("registration lost; registering again", "err", err)
		c.epoch.CompareAndSwap(req.BrokerEpoch, 0)
		return nil, err
	case err != nil:
		return nil, err
	}
	if r.ShouldShutdown {
		c.shutDown.Store(true)
	}
	return r, nil
}

// endpoints are this broker's client listeners as it registers them: each
// one's advertised endpoint with Kafka's SecurityProtocol id.
func (b *Broker) endpoints() []metadata.Endpoint {
	ids := map[string]int16{ProtocolPlaintext: 0, ProtocolSSL: 1, ProtocolSASLPlaintext: 2, ProtocolSASLSSL: 3}
	var eps []metadata.Endpoint
	for _, l := range b.listeners {
		eps = append(eps, metadata.Endpoint{Name: l.Name, Host: l.advHost, Port: l.advPort, SecurityProtocol: ids[l.Protocol]})
	}
	return eps
}

// allocateProducerIDs takes a block of producer ids from the active
// controller.
func (c *cluster) allocateProducerIDs() (int64, error) {
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = c.b.nodeID, c.epoch.Load()
	if req.BrokerEpoch == 0 {
		return 0, kerr.CoordinatorNotAvailable // not registered yet: retriable
	}
	resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.AllocateProducerIDsResponse).ErrorCode })
	if err != nil {
		return 0, forwardError(err)
	}
	r := resp.(*kmsg.AllocateProducerIDsResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return 0, err
	}
	return r.ProducerIDStart, nil
}
