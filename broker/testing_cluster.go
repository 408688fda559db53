package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/metadata"
)

// TestCluster is a cluster of combined nodes (ids 1..n), or of
// controller-only and broker-only nodes, in one test process, on
// 127.0.0.1, with its data in temporary directories; see NewTestCluster
// and NewTestClusterSplit.
type TestCluster struct {
	t     testing.TB
	mu    sync.Mutex
	cfgs  map[int32]Config
	nodes map[int32]*Broker // nil while a node is stopped
	// fixed are the addresses a node comes back on, by listener name: its
	// CONTROLLER endpoint (its controller.quorum.voters entry) and its
	// first client listener once it was bound.
	fixed map[int32]map[string]string
	// bound are listeners bound for a node's next start, by listener name:
	// the voters' CONTROLLER listeners, bound before the quorum's
	// addresses are written into any config, so that nothing else can
	// take a chosen port before the node serves it.
	bound map[int32]map[string]net.Listener
}

// NewTestCluster starts an n-node cluster for a test, every node a broker
// and a voter of the metadata quorum, with short timeouts (heartbeats every
// 100 ms, sessions of 1.5 s, elections after 500 ms) so that failures show
// quickly. opts adjust every node's Config. It returns once every broker
// is registered and unfenced; t.Cleanup stops it.
func NewTestCluster(t testing.TB, n int, opts ...TestOption) *TestCluster {
	t.Helper()
	return newTestCluster(t, n, 0, opts)
}

// NewTestClusterSplit starts a cluster laid out as Kafka's production
// clusters are: controllers controller-only nodes (process.roles=controller,
// ids 1..controllers) that run the metadata quorum on their CONTROLLER
// listener and nothing else, and brokers broker-only nodes (ids after
// them) that register with the active one. Timeouts as NewTestCluster's;
// opts adjust every node's Config. It returns once every broker is
// registered and unfenced. Addrs names the brokers only.
func NewTestClusterSplit(t testing.TB, controllers, brokers int, opts ...TestOption) *TestCluster {
	t.Helper()
	return newTestCluster(t, controllers, brokers, opts)
}

// newTestCluster starts voters voters (combined nodes, or controller-only
// ones when brokers > 0) and then brokers broker-only nodes.
func newTestCluster(t testing.TB, voters, brokers int, opts []TestOption) *TestCluster {
	t.Helper()
	var quorum []string
	addrs := map[int32]string{}
	c := &TestCluster{t: t, cfgs: map[int32]Config{}, nodes: map[int32]*Broker{},
		fixed: map[int32]map[string]string{}, bound: map[int32]map[string]net.Listener{}}
	for id := int32(1); id <= int32(voters); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() }) // if its node never took it
		addrs[id] = ln.Addr().String()
		c.bound[id] = map[string]net.Listener{defaultControllerListener: ln}
		c.fixed[id] = map[string]string{defaultControllerListener: addrs[id]}
		quorum = append(quorum, fmt.Sprintf("%d@%s", id, addrs[id]))
	}
	clusterID := NewClusterID()
	for id := int32(1); id <= int32(voters+brokers); id++ {
		cfg := DefaultConfig()
		roles := "broker,controller"
		switch {
		case brokers > 0 && id <= int32(voters):
			roles = "controller"
		case brokers > 0:
			roles = "broker"
		}
		if err := cfg.Set(map[string]string{
			"process.roles": roles, "controller.quorum.voters": strings.Join(quorum, ","),
			"broker.heartbeat.interval.ms": "100", "broker.session.timeout.ms": "1500",
			"controller.quorum.election.timeout.ms": "500", "group.initial.rebalance.delay.ms": "0",
		}); err != nil {
			t.Fatal(err)
		}
		cfg.BrokerID, cfg.ClusterID = int64(id), clusterID
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		switch roles {
		case "controller":
			host, port, _ := net.SplitHostPort(addrs[id])
			p, _ := strconv.Atoi(port)
			cfg.Listeners = []Listener{{Name: defaultControllerListener, Host: host, Port: p}}
			cfg.ControllerListenerNames = []string{defaultControllerListener}
		case "broker":
			cfg.ControllerListenerNames = []string{defaultControllerListener}
		}
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		for _, o := range opts {
			o(&cfg)
		}
		if name := cfg.controllerNames(); id <= int32(voters) && name[0] != defaultControllerListener {
			// An option named the CONTROLLER listener otherwise.
			c.bound[id] = map[string]net.Listener{name[0]: c.bound[id][defaultControllerListener]}
			c.fixed[id] = map[string]string{name[0]: addrs[id]}
		}
		c.cfgs[id] = cfg
	}
	// After the nodes' t.TempDir: cleanups run last first, and the nodes
	// must stop before their directories go.
	t.Cleanup(c.close)
	n := voters + brokers
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for id := int32(1); id <= int32(n); id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[id] = c.start(id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if brokers == 0 {
		brokers = voters // combined nodes
	}
	c.AwaitLive(brokers)
	return c
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// listenAgain binds addr, a port this process held until a node stopped:
// retried for a while, in case something else (an outgoing connection
// given it as its ephemeral port) holds it for a moment.
func listenAgain(addr string) (net.Listener, error) {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
	}
}

func (c *TestCluster) start(id int32) error {
	c.mu.Lock()
	cfg := c.cfgs[id]
	bound := c.bound[id]
	delete(c.bound, id)
	fixed := c.fixed[id]
	c.mu.Unlock()
	if bound == nil {
		bound = map[string]net.Listener{}
	}
	closeBound := func() {
		for _, ln := range bound {
			ln.Close()
		}
	}
	for name, addr := range fixed {
		if bound[name] != nil {
			continue
		}
		ln, err := listenAgain(addr)
		if err != nil {
			closeBound()
			return fmt.Errorf("node %d: binding its %s listener again: %w", id, name, err)
		}
		bound[name] = ln
	}
	cfg.bound = bound
	b, err := New(cfg)
	if err != nil {
		closeBound()
		return fmt.Errorf("node %d: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[id] = b
	cfg.bound = nil // served by b now, closed with it
	// A restart comes back on the same client port (a controller-only
	// node has none: its one listener is its CONTROLLER endpoint).
	if !cfg.controllerOnly() && c.fixed[id][b.listeners[0].Name] == "" {
		cfg.Listen = b.Addr()
		if c.fixed[id] == nil {
			c.fixed[id] = map[string]string{}
		}
		c.fixed[id][b.listeners[0].Name] = b.listeners[0].ln.Addr().String()
	}
	c.cfgs[id] = cfg
	return nil
}

// AddBroker starts broker-only node id (process.roles=broker, not a voter:
// the active controller adds it to the quorum as an observer), with the
// cluster's settings, and waits (up to 15 s) until it is registered and
// unfenced. Ids follow the cluster's own (n+1, n+2 ...).
func (c *TestCluster) AddBroker(id int32) {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[1]
	c.mu.Unlock()
	if cfg.controllerOnly() {
		cfg.Listeners = nil // its CONTROLLER listener
	}
	cfg.ProcessRoles, cfg.ControllerListenerNames = []string{"broker"}, []string{defaultControllerListener}
	cfg.BrokerID, cfg.Listen, cfg.DataDir = int64(id), "127.0.0.1:0", c.t.TempDir()
	c.mu.Lock()
	c.cfgs[id] = cfg
	c.mu.Unlock()
	c.Restart(id)
}

// Broker is node id, nil while it is stopped.
func (c *TestCluster) Broker(id int32) *Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Addrs are the client addresses of the running brokers (bootstrap.servers).
func (c *TestCluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := int32(1); int(id) <= len(c.cfgs); id++ {
		if b := c.nodes[id]; b != nil && !b.cfg.controllerOnly() {
			out = append(out, b.Addr())
		}
	}
	return out
}

// ControllerAddrs are the voters' CONTROLLER endpoints, by node id
// (controller.quorum.voters; what --bootstrap-controller takes).
func (c *TestCluster) ControllerAddrs() map[int32]string {
	c.mu.Lock()
	cfg := c.cfgs[1]
	c.mu.Unlock()
	return cfg.voters()
}

// Stop stops node id as SIGTERM does: a controlled shutdown that moves its
// leaderships first.
func (c *TestCluster) Stop(id int32) { c.stop(id, false) }

// Kill stops node id as kill -9 does: no controlled shutdown, and its logs
// are abandoned, not flushed or closed (what was written stays, as the
// page cache keeps it), so that Restart recovers them. Its listeners,
// metadata quorum and directory lock are released, as the process's death
// releases them.
func (c *TestCluster) Kill(id int32) { c.stop(id, true) }

func (c *TestCluster) stop(id int32, crash bool) {
	c.t.Helper()
	c.mu.Lock()
	b := c.nodes[id]
	c.nodes[id] = nil
	c.mu.Unlock()
	if b == nil {
		return
	}
	b.crash = crash
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		c.t.Errorf("stopping node %d: %v", id, err)
	}
}

// Restart starts a stopped node again on its data and waits (up to 15 s)
// until it is registered again and unfenced.
func (c *TestCluster) Restart(id int32) {
	c.t.Helper()
	if err := c.start(id); err != nil {
		c.t.Fatal(err)
	}
	b := c.Broker(id)
	if b.cfg.controllerOnly() {
		return // it does not register
	}
	c.await(fmt.Sprintf("registration of node %d", id), func(*Broker) bool {
		return b.cluster.epoch.Load() > 0 && !b.cluster.fencedHere()
	})
}

// AwaitTopic waits (up to 15 s) until every running broker's image has
// the topic with partitions partitions and the broker has their local logs.
func (c *TestCluster) AwaitTopic(topic string, partitions int) {
	c.t.Helper()
	c.await("topic "+topic+" on every node", func(*Broker) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, b := range c.nodes {
			if b == nil || b.cfg.controllerOnly() {
				continue
			}
			if t := b.topics.get(topic); t == nil || len(t.partitions) != partitions {
				return false
			}
		}
		return true
	})
}

// Controller waits (up to 15 s) for an active controller among the
// running nodes and returns its id.
func (c *TestCluster) Controller() int32 {
	c.t.Helper()
	var id int32 = -1
	c.await("an active controller", func(b *Broker) bool {
		if b.cluster.q.IsController() {
			id = b.nodeID
			return true
		}
		return false
	})
	return id
}

// Leader is the leader of a partition in the active controller's image,
// the first to have every change (-1 for none or an unknown partition).
func (c *TestCluster) Leader(topic string, partition int32) int32 {
	c.t.Helper()
	leader := int32(-1)
	c.controllerView(func(img *metadata.Image) {
		if t := img.Topics[topic]; t != nil && int(partition) < len(t.Partitions) {
			leader = t.Partitions[partition].Leader
		}
	})
	return leader
}

// controllerView waits (up to 15 s) for an active controller and runs fn
// with its image once that has applied every change committed so far: a
// controller just elected may not have applied its predecessor's last
// changes yet (a controlled shutdown's leadership moves, say), and its
// image would show the state from before them.
func (c *TestCluster) controllerView(fn func(*metadata.Image)) {
	c.t.Helper()
	c.await("an active controller", func(b *Broker) bool {
		if !b.cluster.q.IsController() {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if b.cluster.q.Barrier(ctx) != nil {
			return false // no longer the controller, or not yet caught up
		}
		b.cluster.q.View(fn)
		return true
	})
}

// AwaitLive waits (up to 15 s) until every running node's image has n
// registered, unfenced brokers.
func (c *TestCluster) AwaitLive(n int) {
	c.t.Helper()
	c.await(fmt.Sprintf("%d live brokers on every node", n), func(*Broker) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, b := range c.nodes {
			if b == nil {
				continue
			}
			live := 0
			b.cluster.q.View(func(img *metadata.Image) { live = len(liveBrokers(img, plaintextListener)) })
			if live != n {
				return false
			}
		}
		return true
	})
}

// await polls fn on the running nodes until it holds for one of them.
func (c *TestCluster) await(what string, fn func(*Broker) bool) {
	c.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		var running []*Broker
		for _, b := range c.nodes {
			if b != nil {
				running = append(running, b)
			}
		}
		c.mu.Unlock()
		for _, b := range running {
			if fn(b) {
				return
			}
		}
	}
	c.t.Fatalf("test cluster: no %s within 15 s", what)
}

func (c *TestCluster) close() {
	c.mu.Lock()
	var ids []int32
	for id, b := range c.nodes {
		if b != nil {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(id, true)
		}()
	}
	wg.Wait()
}
