package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// describeQuorumReq is what kafka-metadata-quorum.sh sends.
func describeQuorumReq() *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// seedClient is a client of one address only (a CONTROLLER endpoint, as
// --bootstrap-controller gives it).
func seedClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ask sends req to the one node cl reaches.
func ask[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(R)
}

// quorumPartition is the one partition of a DescribeQuorum answer.
func quorumPartition(t *testing.T, resp *kmsg.DescribeQuorumResponse) kmsg.DescribeQuorumResponseTopicPartition {
	t.Helper()
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != metadataTopic || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeQuorum answer %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// describeQuorumUntil asks through cl until ok holds of the answer.
func describeQuorumUntil(t *testing.T, cl *kgo.Client, what string, ok func(kmsg.DescribeQuorumResponseTopicPartition) bool) (*kmsg.DescribeQuorumResponse, kmsg.DescribeQuorumResponseTopicPartition) {
	t.Helper()
	var resp *kmsg.DescribeQuorumResponse
	var p kmsg.DescribeQuorumResponseTopicPartition
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := describeQuorumReq().RequestWith(ctx, cl)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		resp, p = r, quorumPartition(t, r)
		if p.ErrorCode == 0 && ok(p) {
			return resp, p
		}
	}
	t.Fatalf("%s: last DescribeQuorum answer %+v", what, resp)
	return nil, p
}

func replicaIDs(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []int32 {
	var ids []int32
	for _, r := range rs {
		ids = append(ids, r.ReplicaID)
	}
	return ids
}

// allAt reports whether every replica's log ends at end.
func allAt(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, end int64) bool {
	for _, r := range rs {
		if r.LogEndOffset != end {
			return false
		}
	}
	return true
}

// leaderEnd is the leader's own log end offset in an answer.
func leaderEnd(p kmsg.DescribeQuorumResponseTopicPartition) int64 {
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == p.LeaderID {
			return v.LogEndOffset
		}
	}
	return -2
}

// Three combined nodes: DescribeQuorum, routed by kgo to the controller
// or sent to any broker (which forwards it), shows the active controller,
// its term and commit index, and every voter's log; a standby
// controller's CONTROLLER listener answers NOT_LEADER_OR_FOLLOWER; a
// killed voter's log end and last fetch stop while the others follow.
// The CONTROLLER listener describes the controllers (KIP-919), a client
// listener the brokers, each refusing the other endpoint type.
func TestClusterDescribeQuorum(t *testing.T) {
	start := time.Now()
	c := NewTestCluster(t, 3)
	cl := clusterClient(t, c)
	ctl := c.Controller()
	resp, p := describeQuorumUntil(t, cl, "every voter caught up", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		return len(p.CurrentVoters) == 3 && allAt(p.CurrentVoters, leaderEnd(p))
	})
	term := c.Broker(ctl).cluster.q.Term()
	if p.LeaderID != ctl || p.LeaderEpoch != int32(term) || p.HighWatermark <= 0 || p.HighWatermark > leaderEnd(p) ||
		!slices.Equal(replicaIDs(p.CurrentVoters), []int32{1, 2, 3}) || len(p.Observers) != 0 {
		t.Errorf("DescribeQuorum partition %+v; controller %d term %d", p, ctl, term)
	}
	for _, v := range p.CurrentVoters {
		if v.LastFetchTimestamp < start.UnixMilli() || v.LastCaughtUpTimestamp < start.UnixMilli() {
			t.Errorf("voter %d: last fetch %d, last caught up %d, before the test started (%d)", v.ReplicaID, v.LastFetchTimestamp, v.LastCaughtUpTimestamp, start.UnixMilli())
		}
	}
	var nodes []string
	for _, n := range resp.Nodes {
		for _, l := range n.Listeners {
			nodes = append(nodes, fmt.Sprintf("%d %s %s", n.NodeID, l.Name, net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))))
		}
	}
	var want []string
	for id := int32(1); id <= 3; id++ {
		want = append(want, fmt.Sprintf("%d CONTROLLER %s", id, c.Broker(id).cluster.voters[id]))
	}
	if !slices.Equal(nodes, want) {
		t.Errorf("DescribeQuorum v2 nodes %v, want %v", nodes, want)
	}

	// Any broker's client listener: forwarded to the active controller.
	for id := int32(1); id <= 3; id++ {
		r := ask[*kmsg.DescribeQuorumResponse](t, nodeClient(t, c.Broker(id)), describeQuorumReq())
		if p := quorumPartition(t, r); p.ErrorCode != 0 || p.LeaderID != ctl {
			t.Errorf("DescribeQuorum through broker %d: %+v", id, p)
		}
	}
	standby := ctl%3 + 1
	standbyCtl := seedClient(t, c.Broker(standby).cluster.voters[standby])
	if p := quorumPartition(t, ask[*kmsg.DescribeQuorumResponse](t, standbyCtl, describeQuorumReq())); p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("DescribeQuorum on standby controller %d's CONTROLLER listener: %+v, want NOT_LEADER_OR_FOLLOWER", standby, p)
	}
	wrong := describeQuorumReq()
	wrong.Topics[0].Topic = "__consumer_offsets"
	if r := ask[*kmsg.DescribeQuorumResponse](t, nodeClient(t, c.Broker(ctl)), wrong); len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("DescribeQuorum of another topic: %+v", r)
	}

	// DescribeCluster: controllers on the CONTROLLER listener, brokers on
	// the client one.
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = endpointControllers
	d := ask[*kmsg.DescribeClusterResponse](t, standbyCtl, dc)
	var eps []string
	for _, b := range d.Brokers {
		eps = append(eps, fmt.Sprintf("%d %s", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))))
	}
	var wantEps []string
	for id := int32(1); id <= 3; id++ {
		wantEps = append(wantEps, fmt.Sprintf("%d %s", id, c.Broker(id).cluster.voters[id]))
	}
	if d.ErrorCode != 0 || d.EndpointType != endpointControllers || d.ControllerID != ctl || d.ClusterID != c.Broker(1).ClusterID() || !slices.Equal(eps, wantEps) {
		t.Errorf("DescribeCluster of the controllers: %+v (endpoints %v, want %v, controller %d)", d, eps, wantEps, ctl)
	}
	v0 := kversion.Stable()
	v0.SetMaxKeyVersion(int16(kmsg.DescribeCluster), 0)
	v0Ctl, err := kgo.NewClient(kgo.SeedBrokers(c.Broker(standby).cluster.voters[standby]), kgo.MaxVersions(v0))
	if err != nil {
		t.Fatal(err)
	}
	defer v0Ctl.Close()
	for _, tc := range []struct {
		cl       *kgo.Client
		typ      int8
		version  int16
		code     int16
		endpoint string
	}{
		{standbyCtl, endpointBrokers, 2, kerr.MismatchedEndpointType.Code, "CONTROLLER listener, brokers asked"},
		{v0Ctl, endpointBrokers, 0, kerr.InvalidRequest.Code, "CONTROLLER listener, v0"},
		{nodeClient(t, c.Broker(standby)), endpointControllers, 2, kerr.MismatchedEndpointType.Code, "client listener, controllers asked"},
		{nodeClient(t, c.Broker(standby)), 3, 2, kerr.UnsupportedEndpointType.Code, "client listener, unknown type"},
		{nodeClient(t, c.Broker(standby)), 0, 2, kerr.UnsupportedEndpointType.Code, "client listener, type 0"},
	} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = tc.typ
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := tc.cl.SeedBrokers()[0].Request(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.endpoint, err)
		}
		if got := r.(*kmsg.DescribeClusterResponse); got.Version != tc.version || got.ErrorCode != tc.code || got.ErrorMessage == nil || len(got.Brokers) != 0 {
			t.Errorf("DescribeCluster on %s: %+v, want code %d", tc.endpoint, got, tc.code)
		}
	}
	dc.EndpointType = endpointBrokers
	if d := ask[*kmsg.DescribeClusterResponse](t, nodeClient(t, c.Broker(standby)), dc); d.ErrorCode != 0 || len(d.Brokers) != 3 || d.EndpointType != endpointBrokers {
		t.Errorf("DescribeCluster of the brokers: %+v", d)
	}

	// A killed voter (the third node) falls behind.
	gone := standby%3 + 1
	c.Kill(gone)
	killed := time.Now().UnixMilli()
	if err := createTopic(t, cl, "after-kill", 1, 1); err != nil {
		t.Fatal(err)
	}
	_, p = describeQuorumUntil(t, cl, "the live voters at the leader's log end", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		end := leaderEnd(p)
		for _, v := range p.CurrentVoters {
			if v.ReplicaID != gone && v.LogEndOffset != end {
				return false
			}
		}
		return true
	})
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == gone && (v.LogEndOffset >= leaderEnd(p) || v.LastFetchTimestamp > killed || v.LastCaughtUpTimestamp > killed) {
			t.Errorf("killed voter %d: %+v; leader's log end %d, killed at %d", gone, v, leaderEnd(p), killed)
		}
	}
}

// Controller-only and broker-only nodes: the brokers are the quorum's
// observers, with their logs; the controller-only nodes answer
// DescribeQuorum and DescribeCluster on their one listener, and
// ApiVersions there lists them.
func TestClusterDescribeQuorumSplit(t *testing.T) {
	c := NewTestClusterSplit(t, 3, 2)
	cl := clusterClient(t, c)
	ctl := c.Controller()
	_, p := describeQuorumUntil(t, cl, "voters and observers caught up", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		return allAt(p.CurrentVoters, leaderEnd(p)) && allAt(p.Observers, leaderEnd(p)) && len(p.Observers) == 2
	})
	if p.LeaderID != ctl || !slices.Equal(replicaIDs(p.CurrentVoters), []int32{1, 2, 3}) || !slices.Equal(replicaIDs(p.Observers), []int32{4, 5}) {
		t.Errorf("DescribeQuorum partition %+v; controller %d", p, ctl)
	}
	direct := seedClient(t, c.Broker(ctl).Addr())
	if p := quorumPartition(t, ask[*kmsg.DescribeQuorumResponse](t, direct, describeQuorumReq())); p.ErrorCode != 0 || p.LeaderID != ctl || len(p.Observers) != 2 {
		t.Errorf("DescribeQuorum on the active controller's listener: %+v", p)
	}
	standby := ctl%3 + 1
	if p := quorumPartition(t, ask[*kmsg.DescribeQuorumResponse](t, seedClient(t, c.Broker(standby).Addr()), describeQuorumReq())); p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("DescribeQuorum on standby controller %d: %+v", standby, p)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = endpointControllers
	if d := ask[*kmsg.DescribeClusterResponse](t, seedClient(t, c.Broker(standby).Addr()), dc); d.ErrorCode != 0 || len(d.Brokers) != 3 || d.ControllerID != ctl {
		t.Errorf("DescribeCluster on controller %d: %+v", standby, d)
	}
	v := ask[*kmsg.ApiVersionsResponse](t, direct, kmsg.NewPtrApiVersionsRequest())
	keys := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range v.ApiKeys {
		keys[k.ApiKey] = k
	}
	if keys[int16(kmsg.DescribeQuorum)].MaxVersion != 2 || keys[int16(kmsg.DescribeCluster)].MaxVersion != 2 {
		t.Errorf("the controller's ApiVersions: %+v", v.ApiKeys)
	}
}

// principalClient is a client of node b whose requests carry principal
// User:<id> (WithTestPrincipal maps it from the client id).
func principalClient(t *testing.T, b *Broker, id string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ClientID(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// With an authorizer, DescribeQuorum needs DESCRIBE on the cluster and
// UnregisterBroker ALTER, checked on the broker the client reaches before
// it forwards anything, as Kafka's KafkaApis and ControllerApis check them.
func TestClusterQuorumAPIsAuthorized(t *testing.T) {
	c := newAuthzTestCluster(t)
	ctl := c.Controller()
	other := ctl%3 + 1
	alice := principalClient(t, c.Broker(other), "alice")
	if r := ask[*kmsg.DescribeQuorumResponse](t, alice, describeQuorumReq()); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("DescribeQuorum without DESCRIBE on the cluster: %+v", r)
	}
	if r := ask[*kmsg.UnregisterBrokerResponse](t, alice, unregisterReq(other)); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("UnregisterBroker without ALTER on the cluster: %+v", r)
	}
	acl := kmsg.NewPtrCreateACLsRequest()
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow
	acl.Creations = append(acl.Creations, cr)
	if r := ask[*kmsg.CreateACLsResponse](t, principalClient(t, c.Broker(ctl), "admin"), acl); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 {
		t.Fatalf("granting DESCRIBE on the cluster: %+v", r)
	}
	c.await("alice's DESCRIBE on the cluster on every node", func(*Broker) bool {
		r := ask[*kmsg.DescribeQuorumResponse](t, alice, describeQuorumReq())
		return r.ErrorCode == 0 && len(r.Topics) == 1 && r.Topics[0].Partitions[0].LeaderID == ctl
	})
	if r := ask[*kmsg.UnregisterBrokerResponse](t, alice, unregisterReq(other)); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("UnregisterBroker with DESCRIBE only: %+v", r)
	}
	if brokerEpochOn(c.Broker(ctl), other) == 0 {
		t.Errorf("broker %d unregistered by a principal without ALTER", other)
	}
}

// newAuthzTestCluster is three nodes with an authorizer whose super users
// are the nodes themselves (ANONYMOUS) and admin; clients made with
// principalClient as alice or admin are those principals.
func newAuthzTestCluster(t *testing.T) *TestCluster {
	t.Helper()
	return NewTestCluster(t, 3, WithAuthorizer("User:ANONYMOUS;User:admin"), WithTestPrincipal(func(id string) string {
		if id == "alice" || id == "admin" {
			return "User:" + id
		}
		return anonymousPrincipal // the nodes themselves
	}))
}
