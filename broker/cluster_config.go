package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// The KRaft keys of a cluster node. A node runs as a member of a cluster
// (metadata quorum, registration, leaders from the image) only when
// process.roles asks for it and controller.quorum.voters names other nodes:
// without these keys, and with Kafka's shipped single-node combined
// server.properties (one voter, itself), the broker is the single node it
// always was, with no Raft started.

// defaultControllerListener is the listener name Kafka's sample configs
// give the controller.
const defaultControllerListener = "CONTROLLER"

func setProcessRoles(c *Config, v string) error {
	var roles []string
	for _, r := range strings.Split(v, ",") {
		r = strings.TrimSpace(r)
		switch r {
		case "broker", "controller":
			if slices.Contains(roles, r) {
				return fmt.Errorf("%s is listed twice in %q", r, v)
			}
			roles = append(roles, r)
		case "":
		default:
			return fmt.Errorf("unknown role %q: want broker, controller or broker,controller", r)
		}
	}
	if len(roles) == 0 {
		return fmt.Errorf("want broker, controller or broker,controller, got %q", v)
	}
	slices.Sort(roles)
	c.ProcessRoles = roles
	return nil
}

// parseVoters parses controller.quorum.voters: id@host:port, comma
// separated.
func parseVoters(v string) (map[int32]string, error) {
	voters := map[int32]string{}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		id, addr, ok := strings.Cut(e, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("want id@host:port entries, got %q", e)
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" || port == "0" {
			return nil, fmt.Errorf("want id@host:port with a fixed port, got %q", e)
		}
		if _, dup := voters[int32(n)]; dup {
			return nil, fmt.Errorf("node %d is listed twice", n)
		}
		voters[int32(n)] = addr
	}
	return voters, nil
}

// peerOverridesKey is kafkit.peer.address.overrides: id@host:port entries
// naming, for a voter, the address this node dials to reach it instead of
// its controller.quorum.voters address (and of its inter-broker listener:
// every connection to the node goes there). Fault-injection tests put a proxy
// per link there, so they can cut or slow down one pair of nodes; the
// voters' own addresses stay what the quorum's configuration and the
// cluster id are made of.
const peerOverridesKey = "kafkit.peer.address.overrides"

// peerOverrides are kafkit.peer.address.overrides' entries.
func (c *Config) peerOverrides() map[int32]string {
	over, _ := parseVoters(c.PeerAddressOverrides)
	return over
}

// controllerNames are the controller's listener names:
// controller.listener.names, else CONTROLLER (the name Kafka's sample
// configs use) on a node with process.roles.
func (c *Config) controllerNames() []string {
	if len(c.ControllerListenerNames) > 0 || len(c.ProcessRoles) == 0 {
		return c.ControllerListenerNames
	}
	return []string{defaultControllerListener}
}

// controllerListen is the host:port of the first controller listener in
// listeners; empty when there is none (the quorum then binds the node's
// controller.quorum.voters address).
func (c *Config) controllerListen() string {
	names := c.controllerNames()
	for _, l := range c.Listeners {
		if slices.Contains(names, l.Name) {
			return l.Addr()
		}
	}
	return ""
}

// clusterMode reports whether the config asks for a node of a cluster: a
// controller-only node always (its brokers are other nodes, even under a
// single voter).
func (c *Config) clusterMode() bool {
	if len(c.ProcessRoles) == 0 {
		return false
	}
	if c.dynamicQuorum() {
		return true
	}
	voters, _ := parseVoters(c.QuorumVoters)
	_, self := voters[int32(c.BrokerID)]
	return len(voters) > 1 || (len(voters) == 1 && (!self || c.controllerOnly()))
}

// dynamicQuorum reports a node of a dynamic quorum (KIP-853): no
// controller.quorum.voters, and controller.quorum.bootstrap.servers naming
// several controllers, or a controller-only node's. (A combined node
// with a single bootstrap server is the single-node broker, as before.)
// Its voters are the Raft configuration's, formatted into the log
// directory (kafka-storage format --standalone or --initial-controllers)
// or changed by AddRaftVoter and RemoveRaftVoter.
func (c *Config) dynamicQuorum() bool {
	if len(c.ProcessRoles) == 0 || strings.TrimSpace(c.QuorumVoters) != "" || strings.TrimSpace(c.QuorumBootstrapServers) == "" {
		return false
	}
	return c.controllerOnly() || len(strings.Split(c.QuorumBootstrapServers, ",")) > 1
}

// controllerOnly reports process.roles=controller: a node that runs the
// metadata quorum and the controller, and no broker.
func (c *Config) controllerOnly() bool {
	return slices.Equal(c.ProcessRoles, []string{"controller"})
}

// validateCluster checks the KRaft keys, naming the key at fault.
func (c *Config) validateCluster(bad func(key, format string, args ...any)) {
	if len(c.ProcessRoles) == 0 {
		return
	}
	voters, err := parseVoters(c.QuorumVoters)
	if err != nil {
		bad("controller.quorum.voters", "%v", err)
		return
	}
	switch {
	case len(voters) == 0 && strings.TrimSpace(c.QuorumBootstrapServers) == "":
		bad("controller.quorum.voters", "a cluster node needs its controllers: set controller.quorum.voters=id@host:port,... or controller.quorum.bootstrap.servers=host:port,... (a dynamic quorum, KIP-853)")
		return
	case len(voters) == 0 && !c.dynamicQuorum():
		return // a single node
	case c.dynamicQuorum() && !slices.Contains(c.ProcessRoles, "controller"):
		bad("controller.quorum.bootstrap.servers", "a broker-only node of a dynamic quorum (KIP-853) is not supported yet: give it controller.quorum.voters=id@host:port,... of the controllers")
		return
	case c.dynamicQuorum() && c.PeerAddressOverrides != "":
		bad(peerOverridesKey, "not supported with a dynamic quorum (controller.quorum.bootstrap.servers)")
	}
	c.validateRoles(voters, bad)
	if !c.clusterMode() {
		return
	}
	if c.BrokerID < 0 {
		bad("node.id", "a cluster node needs node.id (>= 0), got %d", c.BrokerID)
	}
	over, err := parseVoters(c.PeerAddressOverrides)
	if err != nil {
		bad(peerOverridesKey, "%v", err)
	}
	for _, id := range slices.Sorted(maps.Keys(over)) {
		if _, ok := voters[id]; !ok || id == int32(c.BrokerID) {
			bad(peerOverridesKey, "node %d is not another voter of controller.quorum.voters %v", id, slices.Sorted(maps.Keys(voters)))
		}
	}
	if c.InMemory {
		bad("log.dirs", "a cluster node keeps its metadata log on disk: it cannot run in memory")
	}
	if c.BrokerSessionTimeoutMs <= c.BrokerHeartbeatIntervalMs {
		bad("broker.session.timeout.ms", "%d must be larger than broker.heartbeat.interval.ms %d", c.BrokerSessionTimeoutMs, c.BrokerHeartbeatIntervalMs)
	}
	if c.ReplicaFetchWaitMaxMs > c.ReplicaLagTimeMaxMs {
		// Kafka's check: a follower waiting longer than the lag allows
		// would leave the ISR of every quiet partition.
		bad("replica.fetch.wait.max.ms", "%d should always be less than or equal to replica.lag.time.max.ms %d to prevent frequent changes in ISR", c.ReplicaFetchWaitMaxMs, c.ReplicaLagTimeMaxMs)
	}
}

// validateRoles checks process.roles against the voters and listeners with
// Kafka's rules (KafkaConfig.validateValues) and messages: a node with the
// controller role is a voter, a broker-only node is not and names the
// controllers' listener without listening on it, a controller-only node
// listens on controller listeners only, every one of controller.listener.names.
func (c *Config) validateRoles(voters map[int32]string, bad func(key, format string, args ...any)) {
	ids := slices.Sorted(maps.Keys(voters))
	_, voter := voters[int32(c.BrokerID)]
	controller := slices.Contains(c.ProcessRoles, "controller")
	switch {
	case c.dynamicQuorum() && c.controllerListen() == "":
		// No controller.quorum.voters entry to listen on: the quorum's
		// address of this node is its controller listener's.
		bad("controller.listener.names", "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role")
	case c.dynamicQuorum():
		// The voters are the quorum's own (KIP-853), checked by format.
	case controller && !voter:
		bad("controller.quorum.voters", "If process.roles contains the 'controller' role, the node id %d must be included in the set of voters controller.quorum.voters=%v", c.BrokerID, ids)
	case !controller && voter:
		bad("controller.quorum.voters", "If process.roles contains just the 'broker' role, the node id %d must not be included in the set of voters controller.quorum.voters=%v", c.BrokerID, ids)
	}
	ctl, others := 0, 0
	for _, l := range c.Listeners {
		if slices.Contains(c.controllerNames(), l.Name) {
			ctl++
		} else {
			others++
		}
	}
	switch roles := strings.Join(c.ProcessRoles, ","); roles {
	case "broker":
		if len(c.ControllerListenerNames) == 0 {
			bad("controller.listener.names", "controller.listener.names must contain at least one value when running KRaft with just the broker role")
		} else if ctl > 0 {
			bad("controller.listener.names", "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role")
		}
	case "controller":
		switch {
		case others > 0:
			bad("listeners", "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller")
		case ctl == 0:
			bad("controller.listener.names", "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role")
		case ctl < len(c.controllerNames()):
			bad("controller.listener.names", "controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role")
		}
	}
}

// checkStoredNodeID refuses a log directory that meta.properties gives to
// another node, as Kafka does.
func checkStoredNodeID(props map[string]string, path string, nodeID int32) error {
	v, ok := props["node.id"]
	if !ok {
		v, ok = props["broker.id"] // version=0 files (ZooKeeper era)
	}
	if !ok {
		return nil
	}
	if stored, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err != nil || int32(stored) != nodeID {
		return fmt.Errorf("node.id: stored node id %s doesn't match the configured node.id %d in %s. If you moved your data, make sure your configured node id matches. If you intend to create a new node, you should remove all data in your data directories", v, nodeID, path)
	}
	return nil
}

// freshClusterID is the cluster id a node writes into a log directory
// never formatted (kafka-storage.sh format is optional here). The nodes of
// a cluster must agree on it without talking: they share
// controller.quorum.voters, so it is derived from that, in Kafka's
// cluster id form; a single node takes a random one.
func (c *Config) freshClusterID() string {
	if !c.clusterMode() || c.dynamicQuorum() {
		// A dynamic quorum's nodes share no voters list: its cluster id
		// comes from kafka-storage format -t, and a node never formatted
		// has its own, which AddRaftVoter refuses (INCONSISTENT_CLUSTER_ID).
		return NewClusterID()
	}
	voters := c.voters()
	var canon []string
	for _, id := range slices.Sorted(maps.Keys(voters)) {
		canon = append(canon, fmt.Sprintf("%d@%s", id, voters[id]))
	}
	sum := sha256.Sum256([]byte("kafkit cluster " + strings.Join(canon, ",")))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
