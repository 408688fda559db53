package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/testutil/netproxy"
)

// processCluster is a cluster of cmd/broker child processes, each started
// from a Kafka-style combined-mode server.properties; with proxies, every
// node reaches every other through a proxy of its own (links), so a test
// can cut or slow down one pair (cluster_faults_test.go).
type processCluster struct {
	t       testing.TB
	bin     string
	files   []string // nodeN.properties, N = index+1
	addrs   []string
	running []*brokerProcess
	// links[{from, to}] carries node from's connections to node to.
	links map[[2]int]*netproxy.Proxy
	// starts counts node starts, naming CPU profiles.
	starts int
	// saslAddrs are the nodes' SASL_PLAINTEXT listeners (SCRAM-SHA-256),
	// with clusterOptions.scram.
	saslAddrs []string
}

// clusterOptions vary a processCluster.
type clusterOptions struct {
	// proxies routes each node's traffic to each other node through a
	// proxy per link (kafkit.peer.address.overrides).
	proxies bool
	// props are more server.properties lines for every node.
	props string
	// scram adds a SASL_PLAINTEXT listener with SCRAM-SHA-256 to every
	// node, as franz-go's CI sets up Kafka for its SCRAM tests.
	scram bool
}

// freePort is an address (127.0.0.1:port) nothing listens on now, for a
// process that must be told its ports before it starts.
func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startProcessCluster(t testing.TB, n int) *processCluster {
	return startClusterWith(t, n, clusterOptions{})
}

func startClusterWith(t testing.TB, n int, o clusterOptions) *processCluster {
	t.Helper()
	bin, err := brokerBinary()
	if err != nil {
		t.Fatalf("building cmd/broker: %v", err)
	}
	pc := &processCluster{t: t, bin: bin, running: make([]*brokerProcess, n), links: map[[2]int]*netproxy.Proxy{}}
	var voters []string
	ctrl := make([]string, n)
	for i := range n {
		pc.addrs = append(pc.addrs, freePort(t))
		ctrl[i] = freePort(t)
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, ctrl[i]))
		if o.scram {
			pc.saslAddrs = append(pc.saslAddrs, freePort(t))
		}
	}
	dir := t.TempDir()
	for i := range n {
		extra := o.props
		var sasl string
		if o.scram {
			sasl = ",SASL_PLAINTEXT://" + pc.saslAddrs[i]
			extra += "sasl.enabled.mechanisms=SCRAM-SHA-256\n" +
				"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
		}
		if o.proxies {
			var over []string
			for j := range n {
				if j != i {
					p := netproxy.Start(t, ctrl[j])
					pc.links[[2]int{i + 1, j + 1}] = p
					over = append(over, fmt.Sprintf("%d@%s", j+1, p.Addr()))
				}
			}
			extra += "kafkit.peer.address.overrides=" + strings.Join(over, ",") + "\n"
		}
		props := fmt.Sprintf(`# Kafka KRaft combined mode (config/server.properties of a three-node cluster)
process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
listeners=PLAINTEXT://%s,CONTROLLER://%s%s
advertised.listeners=PLAINTEXT://%s%s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
log.dirs=%s
num.partitions=1
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
broker.heartbeat.interval.ms=200
broker.session.timeout.ms=2000
group.initial.rebalance.delay.ms=0
kafkit.http.listen=
%s`, i+1, strings.Join(voters, ","), pc.addrs[i], ctrl[i], sasl, pc.addrs[i], sasl, filepath.Join(dir, fmt.Sprintf("logs-%d", i+1)), extra)
		f := filepath.Join(dir, fmt.Sprintf("node%d.properties", i+1))
		if err := os.WriteFile(f, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		pc.files = append(pc.files, f)
	}
	for i := range n {
		pc.start(i + 1)
	}
	return pc
}

// start runs a node. With KAFKIT_CLUSTER_CPUPROFILE=dir each run of a
// node writes its CPU profile (cmd/broker's --cpuprofile) to
// dir/nodeN-R.pprof when it stops with SIGTERM (stopAll); a kill -9 writes
// none.
func (pc *processCluster) start(node int) {
	args := []string{"--config", pc.files[node-1], "--log-level", cmp.Or(os.Getenv("KAFKIT_TEST_LOG_LEVEL"), "warn")}
	if dir := os.Getenv("KAFKIT_CLUSTER_CPUPROFILE"); dir != "" {
		pc.starts++
		args = append(args, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("node%d-%d.pprof", node, pc.starts)))
	}
	pc.running[node-1] = startProcess(pc.t, exec.Command(pc.bin, args...))
}

// stopAll stops every running node with SIGTERM (their CPU profiles are
// written then).
func (pc *processCluster) stopAll() {
	for i, p := range pc.running {
		if p != nil {
			p.stop(pc.t)
			pc.running[i] = nil
		}
	}
}

// cpu is the CPU time the running nodes have used.
func (pc *processCluster) cpu() time.Duration {
	var d time.Duration
	for _, p := range pc.running {
		if p != nil {
			d += processCPU(pc.t, p.cmd.Process.Pid)
		}
	}
	return d
}

// metadata asks the running nodes, in turn, until one answers with want
// brokers.
func (pc *processCluster) metadata(wantBrokers int, topics ...string) *kmsg.MetadataResponse {
	pc.t.Helper()
	var last *kmsg.MetadataResponse
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i, p := range pc.running {
			if p == nil {
				continue
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs[i]))
			if err != nil {
				pc.t.Fatal(err)
			}
			req := kmsg.NewPtrMetadataRequest()
			for _, tp := range topics {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(tp)
				req.Topics = append(req.Topics, rt)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := cl.SeedBrokers()[0].Request(ctx, req)
			cancel()
			cl.Close()
			if err != nil {
				continue
			}
			last = r.(*kmsg.MetadataResponse)
			if len(last.Brokers) == wantBrokers && last.ControllerID >= 0 && (len(topics) == 0 || last.Topics[0].ErrorCode == 0) {
				return last
			}
		}
	}
	pc.t.Fatalf("no node answered with %d brokers and a controller within 20 s; last %+v", wantBrokers, last)
	return nil
}

// createTopicRetrying creates a topic, retrying while the cluster has no
// controller yet; configs are name, value pairs.
func createTopicRetrying(t testing.TB, cl *kgo.Client, name string, partitions int32, rf int16, within time.Duration, configs ...string) error {
	t.Helper()
	var last error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		for i := 0; i+1 < len(configs); i += 2 {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		if err == nil || (last != nil && errors.Is(err, kerr.TopicAlreadyExists)) {
			// An earlier attempt that timed out (the controller killed
			// or slow) may still have created the topic, as in Kafka.
			return nil
		}
		last = err
	}
	return last
}

// The "done when": a three-node cluster of child processes from
// server.properties files; sarama and kgo see three brokers; 12 partitions
// × RF 3 are led 4 per node; kgo produces and consumes through the
// leaders; SIGTERM moves a node's leaderships before it exits; kill -9 of
// the active controller elects another and creation works again within a
// few seconds; the killed node rejoins.
func TestClusterOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three broker processes")
	}
	pc := startProcessCluster(t, 3)
	md := pc.metadata(3)

	scfg := sarama.NewConfig()
	scfg.Version = sarama.V3_9_0_0
	sc, err := sarama.NewClient(pc.addrs, scfg)
	if err != nil {
		t.Fatal(err)
	}
	// Every node's image has the three brokers soon after one has.
	for deadline := time.Now().Add(10 * time.Second); len(sc.Brokers()) != 3 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sc.RefreshMetadata()
	}
	if n := len(sc.Brokers()); n != 3 {
		t.Errorf("sarama sees %d brokers", n)
	}
	sc.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.DefaultProduceTopic("spread"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := createTopicRetrying(t, cl, "spread", 12, 3, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	md = pc.metadata(3, "spread")
	leads := map[int32]int{}
	for _, p := range md.Topics[0].Partitions {
		leads[p.Leader]++
		if len(p.Replicas) != 3 {
			t.Errorf("partition %d replicas %v", p.Partition, p.Replicas)
		}
	}
	if leads[1] != 4 || leads[2] != 4 || leads[3] != 4 {
		t.Errorf("leaders per node %v, want 4 each", leads)
	}
	for p := int32(0); p < 12; p++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Value: []byte{byte(p)}}).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", p, err)
		}
	}
	ccl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.ConsumeTopics("spread"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	got := 0
	for got < 12 && ctx.Err() == nil {
		ccl.PollFetches(ctx).EachRecord(func(*kgo.Record) { got++ })
	}
	cancel()
	ccl.Close()
	if got != 12 {
		t.Errorf("consumed %d of 12", got)
	}

	// SIGTERM a node that is not the controller: it leads nothing once it
	// has exited.
	term := md.ControllerID%3 + 1
	pc.running[term-1].cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pc.running[term-1].done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
	pc.running[term-1] = nil
	md = pc.metadata(2, "spread")
	for _, p := range md.Topics[0].Partitions {
		if p.Leader == term {
			t.Errorf("partition %d still led by node %d, which shut down", p.Partition, term)
		}
	}
	pc.start(int(term))
	pc.metadata(3)

	// kill -9 the active controller.
	ctl := pc.metadata(3).ControllerID
	pc.running[ctl-1].kill()
	pc.running[ctl-1] = nil
	killed := time.Now()
	if err := createTopicRetrying(t, cl, "after-kill", 3, 2, 20*time.Second); err != nil {
		t.Fatalf("creation after the controller's kill: %v", err)
	}
	t.Logf("topic created %v after kill -9 of controller %d", time.Since(killed).Round(time.Millisecond), ctl)
	if md := pc.metadata(2); md.ControllerID == ctl {
		t.Errorf("controller is still the killed node %d", ctl)
	}
	pc.start(int(ctl))
	pc.metadata(3, "after-kill")
}
