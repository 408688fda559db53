package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/testutil/netproxy"
)

// kafkit.peer.address.overrides sends a node's requests to another node
// (c.client: registration, heartbeats, forwarding) and its Raft traffic
// through the address it names: with a proxy per link, blackholing a
// broker's links gets it fenced for want of heartbeats, and healing them
// unfences it.
func TestClusterPeerAddressOverrides(t *testing.T) {
	var mu sync.Mutex
	links := map[[2]int32]*netproxy.Proxy{} // {from, to}
	c := NewTestCluster(t, 3, func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		var over []string
		for to, addr := range cfg.voters() {
			if from := int32(cfg.BrokerID); to != from {
				p := netproxy.Start(t, addr)
				links[[2]int32{from, to}] = p
				over = append(over, fmt.Sprintf("%d@%s", to, p.Addr()))
			}
		}
		if err := cfg.Set(map[string]string{peerOverridesKey: strings.Join(over, ",")}); err != nil {
			t.Fatal(err)
		}
	})
	ctl := c.Controller()
	victim := ctl%3 + 1
	fenced := func() bool {
		f := false
		c.Broker(ctl).cluster.q.View(func(img *metadata.Image) { f = img.Brokers[victim] == nil || img.Brokers[victim].Fenced })
		return f
	}
	for k, p := range links {
		if k[0] == victim || k[1] == victim {
			p.Block(netproxy.Both)
		}
	}
	await(t, fmt.Sprintf("node %d fenced once its links are cut", victim), 10*time.Second, fenced)
	for _, p := range links {
		p.Unblock()
	}
	await(t, fmt.Sprintf("node %d unfenced once healed", victim), 15*time.Second, func() bool { return !fenced() })
}

func await(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
	}
}

// Requests between brokers go to the other broker's endpoint on
// inter.broker.listener.name with that listener's security (here
// SASL_PLAINTEXT, PLAIN as User:broker), as Kafka's replica fetchers,
// marker channel manager and AddPartitionsToTxnManager send theirs; the
// controller listener keeps the rest. acks=all completes (the followers
// fetched) and a transaction spanning partitions led by several nodes
// commits (its markers travel to their leaders), and the brokers logged
// in to one another there.
func TestClusterInterBrokerListener(t *testing.T) {
	var mu sync.Mutex
	logins := map[string]int{} // "listener principal" → logins
	c := NewTestCluster(t, 3, WithListener(ProtocolSASLPlaintext), WithConfig(func(cfg *Config) {
		cfg.SASLEnabledMechanisms = append(cfg.SASLEnabledMechanisms, auth.MechanismPlain)
		if err := cfg.Set(map[string]string{
			"inter.broker.listener.name":           ProtocolSASLPlaintext,
			"sasl.mechanism.inter.broker.protocol": auth.MechanismPlain,
			"listener.name.sasl_plaintext.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required ` +
				`username="broker" password="broker-pw" user_broker="broker-pw";`,
		}); err != nil {
			t.Fatal(err)
		}
		cfg.onPrincipal = func(listener, principal string) {
			mu.Lock()
			logins[listener+" "+principal]++
			mu.Unlock()
		}
	}))
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "ib", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("ib", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for p := range int32(3) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ib", Partition: p, Value: []byte("acks=all")}).FirstErr(); err != nil {
			t.Fatalf("acks=all to ib-%d: %v", p, err)
		}
	}
	tx := clusterClient(t, c, kgo.TransactionalID("tx-ib"), kgo.DefaultProduceTopic("ib"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if err := tx.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("txn")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := logins[ProtocolSASLPlaintext+" User:broker"]; n < 2 {
		t.Fatalf("brokers' logins on the inter-broker listener: %v, want at least the followers'", logins)
	}
}

// With an authorizer, the requests between nodes that arrive on a client
// or inter-broker listener need CLUSTER_ACTION, as in Kafka: the brokers'
// principal (a super user here) replicates and writes markers, another
// principal's WriteTxnMarkers and AlterPartition get
// CLUSTER_AUTHORIZATION_FAILED and write nothing.
func TestClusterInterBrokerRequestsNeedClusterAction(t *testing.T) {
	c := NewTestCluster(t, 3, WithAuthorizer("User:ANONYMOUS;User:node"), WithTestPrincipal(func(clientID string) string {
		if strings.HasPrefix(clientID, "kafkit-node-") {
			return "User:node"
		}
		return "User:" + clientID
	}))
	if err := createTopic(t, clusterClient(t, c, kgo.ClientID("kafkit-node-admin")), "ca", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("ca", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	super := clusterClient(t, c, kgo.ClientID("kafkit-node-producer"), kgo.DefaultProduceTopic("ca"))
	if err := super.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("acks=all with the brokers replicating as User:node: %v", err)
	}
	leader := c.Broker(c.Leader("ca", 0))
	end := leader.topics.partition("ca", 0).log.EndOffset()
	mallory := dialPipe(t, leader)
	mallory.f = kmsg.NewRequestFormatter(kmsg.FormatterClientID("mallory"))
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.Committed = 7, true
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "ca", Partitions: []int32{0}}}
	wm.Markers = append(wm.Markers, m)
	wr := mallory.roundTrip(wm).(*kmsg.WriteTxnMarkersResponse)
	if len(wr.Markers) != 1 || len(wr.Markers[0].Topics) != 1 || len(wr.Markers[0].Topics[0].Partitions) != 1 ||
		wr.Markers[0].Topics[0].Partitions[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("WriteTxnMarkers as User:mallory: %+v, want CLUSTER_AUTHORIZATION_FAILED", wr.Markers)
	}
	if got := leader.topics.partition("ca", 0).log.EndOffset(); got != end {
		t.Fatalf("a refused marker was appended: end %d, was %d", got, end)
	}
	ap := kmsg.NewPtrAlterPartitionRequest()
	ap.BrokerID = leader.nodeID
	if r := mallory.roundTrip(ap).(*kmsg.AlterPartitionResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("AlterPartition as User:mallory: %v, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(r.ErrorCode))
	}
}
