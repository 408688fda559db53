package broker

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// dynamicNode is a controller-only node of a dynamic quorum in a test.
type dynamicNode struct {
	id   int32
	cfg  Config
	addr string
	b    *Broker
	dir  [16]byte // meta.properties' directory.id
}

// startDynamicControllers formats and starts n controller-only nodes
// whose quorum is dynamic: node 1 formatted --standalone, the others
// --no-initial-controllers; or, with initial, every one
// --initial-controllers naming them all.
func startDynamicControllers(t *testing.T, n int, initial bool) []*dynamicNode {
	t.Helper()
	return startDynamicNodes(t, n, initial, "controller")
}

// startDynamicNodes is startDynamicControllers with process.roles roles
// (a combined node also gets a client listener on a free port).
func startDynamicNodes(t *testing.T, n int, initial bool, roles string) []*dynamicNode {
	t.Helper()
	var nodes []*dynamicNode
	var addrs []string
	lns := map[int32]net.Listener{}
	for id := int32(1); id <= int32(n); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		lns[id] = ln
		addrs = append(addrs, ln.Addr().String())
	}
	clusterID := NewClusterID()
	var all []InitialVoter
	for id := int32(1); id <= int32(n); id++ {
		all = append(all, InitialVoter{ID: id, Addr: addrs[id-1], DirectoryID: "AAAAAAAAAAAAAAAAAAAAAQ"})
	}
	for id := int32(1); id <= int32(n); id++ {
		cfg := DefaultConfig()
		listeners := "CONTROLLER://" + addrs[id-1]
		if roles != "controller" {
			listeners = "PLAINTEXT://127.0.0.1:0," + listeners
		}
		if err := cfg.Set(map[string]string{
			"process.roles": roles, "controller.quorum.bootstrap.servers": strings.Join(addrs, ","),
			"controller.listener.names": "CONTROLLER", "listeners": listeners,
			"controller.quorum.election.timeout.ms": "500", "node.id": strconv.Itoa(int(id)),
			"broker.heartbeat.interval.ms": "100", "broker.session.timeout.ms": "1500",
		}); err != nil {
			t.Fatal(err)
		}
		cfg.DataDir = t.TempDir()
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if _, err := FormatLogDir(cfg, clusterID); err != nil {
			t.Fatal(err)
		}
		var voters []InitialVoter
		var err error
		if initial {
			voters, err = PlanQuorumFormat(cfg, false, all, false)
		} else {
			voters, err = PlanQuorumFormat(cfg, id == 1, nil, id != 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := FormatQuorum(cfg, voters); err != nil {
			t.Fatal(err)
		}
		nd := &dynamicNode{id: id, cfg: cfg, addr: addrs[id-1], dir: directoryID(t, cfg.DataDir)}
		cfg.bound = map[string]net.Listener{"CONTROLLER": lns[id]}
		b, err := New(cfg)
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		nd.b = b
		t.Cleanup(func() { nd.stop() })
		nodes = append(nodes, nd)
	}
	return nodes
}

func (nd *dynamicNode) stop() {
	if nd.b != nil {
		// The last combined node of a quorum would wait for a controlled
		// shutdown no controller can grant.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		nd.b.Close(ctx)
		nd.b = nil
	}
}

func directoryID(t *testing.T, dataDir string) [16]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props, err := ReadProperties(f)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseUUID(props["directory.id"])
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// request sends req to nd's controller listener itself.
func (nd *dynamicNode) request(t *testing.T, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), nd.id, err)
	}
	return resp
}

func addVoterReq(nd *dynamicNode) *kmsg.AddRaftVoterRequest {
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.TimeoutMillis, req.VoterID, req.VoterDirectoryID = 10000, nd.id, nd.dir
	host, port, _ := net.SplitHostPort(nd.addr)
	p, _ := strconv.Atoi(port)
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "CONTROLLER", host, uint16(p)
	req.Listeners = []kmsg.AddRaftVoterRequestListener{l}
	return req
}

func removeVoterReq(id int32, dir [16]byte) *kmsg.RemoveRaftVoterRequest {
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.VoterID, req.VoterDirectoryID = id, dir
	return req
}

// awaitDynamicController waits (bounded) for one of the running nodes
// to be the active controller.
func awaitDynamicController(t *testing.T, nodes []*dynamicNode) *dynamicNode {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, nd := range nodes {
			if nd.b != nil && nd.b.cluster.q.IsController() {
				return nd
			}
		}
	}
	t.Fatal("no active controller within 15 s")
	return nil
}

func quorumVoters(t *testing.T, nd *dynamicNode) []int32 {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = []kmsg.DescribeQuorumRequestTopic{rt}
	resp := nd.request(t, req).(*kmsg.DescribeQuorumResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("DescribeQuorum: %+v", resp)
	}
	var ids []int32
	for _, v := range resp.Topics[0].Partitions[0].CurrentVoters {
		ids = append(ids, v.ReplicaID)
	}
	// v2: each voter's endpoint, from the Raft configuration.
	for _, n := range resp.Nodes {
		if len(n.Listeners) != 1 || net.JoinHostPort(n.Listeners[0].Host, strconv.Itoa(int(n.Listeners[0].Port))) == "" {
			t.Errorf("voter %d's endpoints %+v", n.NodeID, n.Listeners)
		}
	}
	if len(resp.Nodes) != len(ids) {
		t.Errorf("DescribeQuorum: %d voters, %d endpoints", len(ids), len(resp.Nodes))
	}
	slices.Sort(ids)
	return ids
}

// KIP-853 over TCP: a controller formatted --standalone, two more added
// with AddRaftVoter; the three survive the loss of the first, and
// RemoveRaftVoter takes it out. The failure answers are Kafka's.
func TestClusterDynamicQuorum(t *testing.T) {
	nodes := startDynamicControllers(t, 3, false)
	first := awaitDynamicController(t, nodes)
	if first.id != 1 {
		t.Fatalf("node %d leads; only node 1 was formatted --standalone", first.id)
	}
	if got := quorumVoters(t, first); !slices.Equal(got, []int32{1}) {
		t.Fatalf("voters %v, want [1]", got)
	}
	// The controller listener advertises the two APIs.
	av := first.request(t, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	for _, k := range []int16{kmsg.AddRaftVoter.Int16(), kmsg.RemoveRaftVoter.Int16()} {
		if !slices.ContainsFunc(av.ApiKeys, func(a kmsg.ApiVersionsResponseApiKey) bool { return a.ApiKey == k }) {
			t.Errorf("ApiVersions on the controller listener lacks %s", kmsg.NameForKey(k))
		}
	}

	// A node that is not the active controller answers NOT_LEADER_OR_FOLLOWER.
	if r := nodes[1].request(t, addVoterReq(nodes[2])).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("AddRaftVoter on a waiting controller: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	bad := addVoterReq(nodes[1])
	bad.Listeners[0].Name = "OTHER"
	if r := first.request(t, bad).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("AddRaftVoter without the controller listener's endpoint: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	bad = addVoterReq(nodes[1])
	bad.ClusterID = kmsg.StringPtr("other")
	if r := first.request(t, bad).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.InconsistentClusterID.Code {
		t.Errorf("AddRaftVoter with another cluster id: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	for _, nd := range nodes[1:] {
		if r := first.request(t, addVoterReq(nd)).(*kmsg.AddRaftVoterResponse); r.ErrorCode != 0 {
			t.Fatalf("AddRaftVoter %d: %v %v", nd.id, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
	}
	if got := quorumVoters(t, first); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("voters %v, want [1 2 3]", got)
	}
	if r := first.request(t, addVoterReq(nodes[1])).(*kmsg.AddRaftVoterResponse); r.ErrorCode != kerr.DuplicateVoter.Code {
		t.Errorf("adding voter 2 again: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := first.request(t, removeVoterReq(9, nodes[0].dir)).(*kmsg.RemoveRaftVoterResponse); r.ErrorCode != kerr.VoterNotFound.Code {
		t.Errorf("removing voter 9: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// The quorum survives the first controller's loss.
	first.stop()
	next := awaitDynamicController(t, nodes)
	if got := quorumVoters(t, next); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("voters after losing node 1: %v", got)
	}
	if r := next.request(t, removeVoterReq(1, nodes[0].dir)).(*kmsg.RemoveRaftVoterResponse); r.ErrorCode != 0 {
		t.Fatalf("RemoveRaftVoter 1: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	next = awaitDynamicController(t, nodes)
	if got := quorumVoters(t, next); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("voters after removing node 1: %v", got)
	}

	// A controller that was added (formatted with no voters) restarts as
	// a voter: its membership is the Raft log's, not the format's.
	next.stop()
	ln, err := listenAgain(next.addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := next.cfg
	cfg.bound = map[string]net.Listener{"CONTROLLER": ln}
	if next.b, err = New(cfg); err != nil {
		t.Fatalf("restarting node %d: %v", next.id, err)
	}
	if got := quorumVoters(t, awaitDynamicController(t, nodes)); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("voters after restarting node %d: %v", next.id, got)
	}
}

// Controllers formatted --initial-controllers start the quorum with the
// listed voters, and elect one of them.
func TestClusterDynamicQuorumInitialControllers(t *testing.T) {
	nodes := startDynamicControllers(t, 3, true)
	ctl := awaitDynamicController(t, nodes)
	if got := quorumVoters(t, ctl); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("voters %v, want [1 2 3]", got)
	}
	if r := ctl.request(t, removeVoterReq(2, nodes[1].dir)).(*kmsg.RemoveRaftVoterResponse); r.ErrorCode != 0 {
		t.Fatalf("RemoveRaftVoter 2: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if got := quorumVoters(t, awaitDynamicController(t, nodes)); !slices.Equal(got, []int32{1, 3}) {
		t.Fatalf("voters after removing 2: %v", got)
	}
}

// With an authorizer, AddRaftVoter and RemoveRaftVoter need ALTER on the
// cluster, checked on the broker a client reaches before it forwards them
// to the active controller (KafkaApis forwardToControllerOrFail, then
// ControllerApis' ALTER). The quorum is a static one
// (controller.quorum.voters): the active controller refuses the change
// as Kafka's does under kraft.version 0.
func TestClusterRaftVoterAPIsAuthorized(t *testing.T) {
	c := newAuthzTestCluster(t)
	ctl := c.Controller()
	other := ctl%3 + 1
	add := addVoterReq(&dynamicNode{id: other, addr: c.ControllerAddrs()[other], dir: [16]byte{1}})
	remove := removeVoterReq(9, [16]byte{1})
	alice := principalClient(t, c.Broker(other), "alice")
	if r := ask[*kmsg.AddRaftVoterResponse](t, alice, add); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("AddRaftVoter without ALTER on the cluster: %+v", r)
	}
	if r := ask[*kmsg.RemoveRaftVoterResponse](t, alice, remove); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("RemoveRaftVoter without ALTER on the cluster: %+v", r)
	}
	admin := principalClient(t, c.Broker(other), "admin")
	if r := ask[*kmsg.AddRaftVoterResponse](t, admin, add); r.ErrorCode != kerr.UnsupportedVersion.Code || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "kraft.version feature is 0") {
		t.Errorf("AddRaftVoter on a static quorum, forwarded by broker %d: %v %v", other, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	if r := ask[*kmsg.RemoveRaftVoterResponse](t, admin, remove); r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("RemoveRaftVoter on a static quorum, forwarded: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
}

// Combined nodes (broker,controller) of a dynamic quorum: the first,
// formatted --standalone, registers as a broker with itself; the second
// registers once added, and both serve a topic of RF 2.
func TestClusterDynamicQuorumCombinedNodes(t *testing.T) {
	nodes := startDynamicNodes(t, 2, false, "broker,controller")
	first := awaitDynamicController(t, nodes)
	if r := first.request(t, addVoterReq(nodes[1])).(*kmsg.AddRaftVoterResponse); r.ErrorCode != 0 {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		t.Fatalf("AddRaftVoter 2: %v %s", kerr.ErrorForCode(r.ErrorCode), msg)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		live := 0
		nodes[1].b.cluster.q.View(func(img *metadata.Image) { live = len(liveBrokers(img, plaintextListener)) })
		if live == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2 sees %d live brokers, want 2", live)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[1].b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := createTopic(t, cl, "dyn", 2, 2); err != nil {
		t.Fatal(err)
	}
}
