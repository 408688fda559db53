package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// Kafka's production layout as child processes: three controller-only
// nodes (config/kraft/controller.properties) and three broker-only nodes
// (config/kraft/broker.properties), their log dirs formatted first as
// kafka-storage.sh format does. Clients see the three brokers only; kgo
// produces to and consumes from an RF 3 topic; kill -9 of a broker fences
// it after broker.session.timeout.ms and moves its leaderships, and
// restarted it registers again with a new broker epoch; kill -9 of the
// active controller elects another and topic creation works again.
func TestClusterOfControllerOnlyProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six broker processes")
	}
	bin, err := brokerBinary()
	if err != nil {
		t.Fatalf("building cmd/broker: %v", err)
	}
	const controllers, brokers = 3, 3
	pc := &processCluster{t: t, bin: bin, running: make([]*brokerProcess, controllers+brokers)}
	var voters []string
	for i := range controllers + brokers {
		pc.addrs = append(pc.addrs, freePort(t))
		if i < controllers {
			voters = append(voters, fmt.Sprintf("%d@%s", i+1, pc.addrs[i]))
		}
	}
	dir := t.TempDir()
	clusterID := broker.NewClusterID()
	web := freePort(t) // node 1's /metrics
	for i := range controllers + brokers {
		id := i + 1
		props := fmt.Sprintf(`# config/kraft/controller.properties
process.roles=controller
node.id=%d
controller.quorum.voters=%s
listeners=CONTROLLER://%s
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
`, id, strings.Join(voters, ","), pc.addrs[i])
		if id > controllers {
			props = fmt.Sprintf(`# config/kraft/broker.properties
process.roles=broker
node.id=%d
controller.quorum.voters=%s
listeners=PLAINTEXT://%s
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://%s
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
`, id, strings.Join(voters, ","), pc.addrs[i], pc.addrs[i])
		}
		listen := ""
		if id == 1 {
			listen = web
		}
		props += fmt.Sprintf(`num.network.threads=3
num.io.threads=8
log.dirs=%s
num.partitions=1
broker.heartbeat.interval.ms=200
broker.session.timeout.ms=2000
kafkit.http.listen=%s
`, filepath.Join(dir, fmt.Sprintf("logs-%d", id)), listen)
		f := filepath.Join(dir, fmt.Sprintf("node%d.properties", id))
		if err := os.WriteFile(f, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		pc.files = append(pc.files, f)
		// kafka-storage.sh format -t <id> -c nodeN.properties
		kv, err := broker.ReadProperties(strings.NewReader(props))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := broker.ConfigFromProperties(kv)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Fatalf("node %d's properties: %v", id, err)
		}
		if _, err := broker.FormatLogDir(cfg, clusterID); err != nil {
			t.Fatalf("formatting node %d: %v", id, err)
		}
	}
	logs := make([]*nodeLog, controllers+brokers)
	start := func(node int) {
		logs[node-1] = &nodeLog{}
		cmd := exec.Command(pc.bin, "--config", pc.files[node-1], "--log-level", "info")
		cmd.Stderr = logs[node-1]
		pc.running[node-1] = startProcess(t, cmd)
	}
	for id := 1; id <= controllers+brokers; id++ {
		start(id)
	}
	brokerIDs := []int32{4, 5, 6}
	md := pc.metadata(brokers)
	var ids []int32
	for _, b := range md.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, brokerIDs) || !slices.Contains(brokerIDs, md.ControllerID) || md.ClusterID == nil || *md.ClusterID != clusterID {
		t.Errorf("Metadata: brokers %v, controller %d, cluster %v; want brokers %v, one of them as controller, cluster %s", ids, md.ControllerID, md.ClusterID, brokerIDs, clusterID)
	}

	// A controller serves /metrics, and no console: it has no client
	// listener for one.
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/": http.StatusNotFound} {
		resp, err := http.Get("http://" + web + path)
		if err != nil {
			t.Fatalf("controller 1's %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("controller 1's %s: %s, want %d", path, resp.Status, want)
		}
	}

	seeds := pc.addrs[controllers:]
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("split"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := createTopicRetrying(t, cl, "split", 6, 3, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	md = pc.metadata(brokers, "split")
	for _, p := range md.Topics[0].Partitions {
		if len(p.Replicas) != 3 || !slices.Contains(brokerIDs, p.Leader) {
			t.Errorf("partition %d: leader %d, replicas %v", p.Partition, p.Leader, p.Replicas)
		}
	}
	for p := int32(0); p < 6; p++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Value: []byte{byte(p)}}).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", p, err)
		}
	}
	ccl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("split"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	got := 0
	for got < 6 && ctx.Err() == nil {
		ccl.PollFetches(ctx).EachRecord(func(*kgo.Record) { got++ })
	}
	cancel()
	ccl.Close()
	if got != 6 {
		t.Errorf("consumed %d of 6", got)
	}

	// kill -9 of a broker: fenced after the session, leaderships moved.
	victim := int32(5)
	epoch := logs[victim-1].lastEpoch()
	if epoch <= 0 {
		t.Fatalf("broker %d logged no registration", victim)
	}
	led := 0
	for _, p := range md.Topics[0].Partitions {
		if p.Leader == victim {
			led++
		}
	}
	if led == 0 {
		t.Fatalf("broker %d leads nothing: %+v", victim, md.Topics[0].Partitions)
	}
	pc.running[victim-1].kill()
	pc.running[victim-1] = nil
	killed := time.Now()
	md = pc.metadata(brokers-1, "split")
	// The session runs from the broker's last heartbeat, up to
	// broker.heartbeat.interval.ms (200 ms) before the kill.
	if since := time.Since(killed); since < 2*time.Second-200*time.Millisecond {
		t.Errorf("broker %d fenced %v after kill -9, before broker.session.timeout.ms (2 s) from its last heartbeat", victim, since)
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader == victim || !slices.Contains(p.OfflineReplicas, victim) {
			t.Errorf("after broker %d's fencing: partition %d leader %d, offline %v", victim, p.Partition, p.Leader, p.OfflineReplicas)
		}
	}
	start(int(victim))
	// Wait for the registration itself: a node whose image has not yet
	// applied the fencing still lists the broker, so Metadata alone can
	// answer before the restarted broker has registered (seen in CI).
	again := logs[victim-1].lastEpoch()
	for deadline := time.Now().Add(20 * time.Second); again <= epoch && time.Now().Before(deadline); again = logs[victim-1].lastEpoch() {
		time.Sleep(50 * time.Millisecond)
	}
	if again <= epoch {
		t.Errorf("broker %d rejoined with broker epoch %d, had %d", victim, again, epoch)
	}
	pc.metadata(brokers, "split")

	// kill -9 of the active controller: the one that does not answer
	// NOT_CONTROLLER.
	active := activeController(t, pc, controllers)
	pc.running[active-1].kill()
	pc.running[active-1] = nil
	killed = time.Now()
	if err := createTopicRetrying(t, cl, "after-kill", 3, 3, 20*time.Second); err != nil {
		t.Fatalf("creation after kill -9 of controller %d: %v", active, err)
	}
	t.Logf("topic created %v after kill -9 of controller %d", time.Since(killed).Round(time.Millisecond), active)
	if next := activeController(t, pc, controllers); next == active {
		t.Errorf("controller still %d", next)
	}
	pc.metadata(brokers, "after-kill")
}

// activeController is the controller-only node that carries out a
// validate-only CreateTopics sent to it, not answering NOT_CONTROLLER.
func activeController(t *testing.T, pc *processCluster, controllers int) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i := range controllers {
			if pc.running[i] == nil {
				continue
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs[i]))
			if err != nil {
				t.Fatal(err)
			}
			req := kmsg.NewPtrCreateTopicsRequest()
			req.ValidateOnly = true
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "probe", 1, 1
			req.Topics = append(req.Topics, rt)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := cl.SeedBrokers()[0].Request(ctx, req)
			cancel()
			cl.Close()
			if err == nil && resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode == 0 {
				return i + 1
			}
			if err == nil && resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != kerr.NotController.Code {
				t.Fatalf("controller %d: validate-only creation: %v", i+1, kerr.ErrorForCode(resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode))
			}
		}
	}
	t.Fatal("no active controller within 20 s")
	return 0
}

// nodeLog is a node's stderr at level info: it keeps the broker epochs
// the node reports registering with and passes warnings and errors on.
type nodeLog struct {
	mu     sync.Mutex
	buf    []byte
	epochs []int64
}

var registeredRE = regexp.MustCompile(`msg="registered with the controller".* broker_epoch=(\d+)`)

func (l *nodeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf[:i+1])
		l.buf = l.buf[i+1:]
		if m := registeredRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			l.epochs = append(l.epochs, n)
		}
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			os.Stderr.WriteString(line)
		}
	}
}

// lastEpoch is the broker epoch of the node's last registration, 0 for
// none.
func (l *nodeLog) lastEpoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.epochs) == 0 {
		return 0
	}
	return l.epochs[len(l.epochs)-1]
}
