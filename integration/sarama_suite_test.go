package integration

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/metadata"
)

// saramaKafkaVersion is the Kafka release whose behaviour the broker
// matches, given to sarama's suite as KAFKA_VERSION (its version gates,
// checkKafkaVersion): Kafka 4.0, KRaft only, Produce v3+ with record
// batch v2 only (message formats v0/v1 removed), as README's API table
// says. Sarama's CI runs 4.x in KRaft mode too.
const saramaKafkaVersion = "4.0.0"

// toxiproxyVersion is the toxiproxy server sarama's suite drives (its
// internal/toxiproxy client speaks toxiproxy 2's HTTP API).
const toxiproxyVersion = "v2.5.0"

// saramaSkip names sarama functional tests that cannot run here, whatever
// the broker:
//   - the Java interop tests (functional_java_interop_test.go,
//     functional_consumer_group_java_interop_test.go) run Kafka's Java
//     console clients inside sarama's docker containers (most skip
//     themselves against an existing environment;
//     TestJavaMurmur2PartitionerInterop does not);
//   - TestFuncIdempotentBufferedSequence's one assertion is that
//     `docker compose logs` of the leader has no OutOfOrderSequenceException
//     in Kafka's log4j output (its producer errors are only logged, as
//     "producer error: ..."), which has no counterpart here: the broker
//     answers OUT_OF_ORDER_SEQUENCE_NUMBER without logging it, so any
//     stand-in would pass it vacuously. Run in the suite against this
//     cluster it logged no producer error before reaching that step.
const saramaSkip = "^(TestJava.*|TestFuncJavaInterop.*|TestFuncIdempotentBufferedSequence)$"

// saramaDockerSkip names the tests that stop and start a broker with
// `docker compose stop/start kafka-N` (stopDockerTestBroker), skipped when
// the docker stand-in cannot run (no curl).
const saramaDockerSkip = "|^(TestFuncAdminListConsumerGroupOffsets|TestConsumerFetchFollowerFailover|TestFuncTxnProduceWithBrokerFailure)$"

// TestSaramaFunctionalSuite runs IBM/sarama's own functional tests
// (functional_*_test.go, build tag functional, the version go.mod
// requires) against a five-node cluster of cmd/broker processes set up as
// sarama's docker-compose.yml and entrypoint.sh set up Kafka (the
// distribution's config/server.properties, then the compose file's
// overrides): node ids 1-5, every node broker and controller (all five
// voters), broker.rack = node id, an internal listener for replication
// and a client listener advertised as the toxiproxy proxy in front of it
// (127.0.0.1:29091-29095, proxies kafka1..kafka5, which the suite finds
// already made and drives to cut connections), default, offsets and
// transaction log replication factors 2 (transaction.state.log.min.isr 1,
// the distribution file's), auto.create.topics.enable=false,
// group.initial.rebalance.delay.ms=0. It downloads sarama's module and
// toxiproxy from the Go module proxy and takes five minutes or more, so
// it is opt-in:
//
//	KAFKIT_SARAMA_SUITE=1 go test -run TestSaramaFunctionalSuite -timeout 60m -v ./integration/
//
// KAFKIT_SARAMA_RUN passes -run to the suite, KAFKIT_SARAMA_COUNT -count
// (to repeat a flaky test on one cluster; a test that changes the shared
// topics, as TestFuncConsumerGroupRebalanceAfterAddingPartitions grows
// test.1_to_2, fails on its repeats). Ports 29091-29095 must be
// free. Three tests stop and restart a broker with `docker compose stop`
// and `start kafka-N`: a docker stand-in first on the suite's PATH asks
// this test, over HTTP with curl, to SIGTERM node N and start it again.
// The summary line gives the suite's top-level pass, fail and skip
// counts. As sarama's entrypoint.sh, the nodes start at their software's
// latest feature levels (kafkit's: Kafka 4.2's), so that
// TestFuncAdminUpdateFeatures finds nothing to upgrade past its check of
// an unknown feature; KAFKIT_SARAMA_RELEASE=4.0 formats the cluster at
// that release's levels instead (kafka-storage format --release-version),
// and the test then upgrades metadata.version and share.version.
// TestFuncConsumerGroupCooperative's scaling case fails now and then (3 in
// 85 runs) with "The provided member is not known in the current
// generation": sarama's leader, still fetching its four partitions, sends
// SyncGroup 2.5-6.1 s after its JoinGroup answer (in steps of the 500 ms
// fetch long-poll: its metadata refresh waits for each broker connection's
// lock, which a Fetch holds until answered), and past the test's 6 s
// rebalance timeout the coordinator drops it as Kafka's expirePendingSync
// does (TestSaramaCooperativeLeaderLateSync).
func TestSaramaFunctionalSuite(t *testing.T) {
	if os.Getenv("KAFKIT_SARAMA_SUITE") == "" {
		t.Skip("set KAFKIT_SARAMA_SUITE=1 to run IBM/sarama's functional tests against a five-node cluster behind toxiproxy")
	}
	const nodes = 5
	var lns []net.Listener
	for i := 1; i <= nodes; i++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 29090+i))
		if err != nil {
			t.Skipf("sarama's suite needs port %d free for its proxy kafka%d: %v", 29090+i, i, err)
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		ln.Close()
	}

	src := copyModule(t, "github.com/IBM/sarama@"+saramaModuleVersion(t))
	tmp := t.TempDir()
	gobin := filepath.Join(tmp, "bin")
	if out, err := exec.Command("env", "GOBIN="+gobin, "GOFLAGS=-mod=mod", "go", "install", "github.com/Shopify/toxiproxy/v2/cmd/server@"+toxiproxyVersion).CombinedOutput(); err != nil {
		t.Skipf("cannot build toxiproxy %s from the module proxy: %v: %s", toxiproxyVersion, err, out)
	}
	api := freePort(t)
	host, port, _ := net.SplitHostPort(api)
	tp := exec.Command(filepath.Join(gobin, "server"), "-host", host, "-port", port)
	tp.Stdout, tp.Stderr = nil, nil
	if err := tp.Start(); err != nil {
		t.Fatal(err)
	}
	tpDone := make(chan struct{})
	go func() { tp.Wait(); close(tpDone) }()
	t.Cleanup(func() {
		tp.Process.Kill()
		<-tpDone
	})
	toxiURL := "http://" + api
	waitHTTP(t, toxiURL+"/version", 30*time.Second)

	pc, client := startSaramaCluster(t, nodes)
	for i := 1; i <= nodes; i++ {
		body, _ := json.Marshal(map[string]any{
			"name":     fmt.Sprintf("kafka%d", i),
			"listen":   fmt.Sprintf("127.0.0.1:%d", 29090+i),
			"upstream": client[i-1],
			"enabled":  true,
		})
		resp, err := http.Post(toxiURL+"/proxies", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("creating proxy kafka%d: %s", i, resp.Status)
		}
	}
	waitSaramaBrokers(t, nodes)

	timeout := 50 * time.Minute
	if d, ok := t.Deadline(); ok {
		timeout = max(time.Until(d)-2*time.Minute, time.Minute)
	}
	skipPattern := saramaSkip
	path, err := dockerStandIn(t, pc)
	if err != nil {
		t.Logf("skipping the tests that stop a broker: %v", err)
		skipPattern += saramaDockerSkip
	}
	count := cmp.Or(os.Getenv("KAFKIT_SARAMA_COUNT"), "1")
	args := []string{"test", "-tags", "functional", "-count=" + count, "-v", "-timeout", timeout.String(), "-skip", skipPattern}
	if run := os.Getenv("KAFKIT_SARAMA_RUN"); run != "" {
		args = append(args, "-run", run)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "TOXIPROXY_ADDR="+toxiURL, "KAFKA_VERSION="+saramaKafkaVersion, "GOFLAGS=-mod=mod", "PATH="+path)
	// Streamed, so that a long run shows where it is.
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stdout)
	cmd.Stderr = cmd.Stdout
	err = cmd.Run()
	stopTogether(pc)
	pass, fail, skip := suiteCounts(out.Bytes())
	t.Logf("sarama functional suite: %d passed, %d failed, %d skipped (top-level tests); failed: %s", len(pass), len(fail), len(skip), strings.Join(fail, " "))
	if err != nil {
		t.Fatalf("sarama's functional tests against cmd/broker: %v", err)
	}
}

// dockerStandIn serves `docker compose stop|start kafka-N` for the suite's
// stopDockerTestBroker and startDockerTestBroker: it writes a docker
// script that posts the command to an HTTP server here, which stops node N
// with SIGTERM (as docker compose stop does) or starts it again on its
// data, and returns the PATH that puts the script first.
func dockerStandIn(t *testing.T, pc *processCluster) (string, error) {
	if _, err := exec.LookPath("curl"); err != nil {
		return "", err
	}
	var mu sync.Mutex
	node := func(r *http.Request) (int, bool) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.PathValue("service"), "kafka-"))
		return n, err == nil && n >= 1 && n <= len(pc.running)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /stop/{service}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := node(r)
		if !ok {
			http.Error(w, "no such service", http.StatusNotFound)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p := pc.running[n-1]; p != nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				p.kill()
			}
			pc.running[n-1] = nil
			// docker compose stop returns well after the broker's
			// sockets close (the container is torn down), so toxiproxy
			// has closed the clients' connections to it by then and a
			// client's next request reads EOF, which sarama retries; a
			// request sent before toxiproxy notices is reset instead.
			time.Sleep(time.Second)
		}
	})
	mux.HandleFunc("POST /start/{service}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := node(r)
		if !ok {
			http.Error(w, "no such service", http.StatusNotFound)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if pc.running[n-1] == nil {
			pc.start(n)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	script := `#!/bin/sh
# sarama's suite: docker compose stop|start kafka-N
[ "$1" = compose ] || { echo "docker stand-in: only compose stop|start" >&2; exit 1; }
exec curl -fsS --max-time 120 -X POST "http://` + ln.Addr().String() + `/$2/$3"
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		return "", err
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH"), nil
}

// stopTogether sends SIGTERM to every running node before waiting for
// any: one at a time, the last ones wait for a quorum that is gone.
func stopTogether(pc *processCluster) {
	for _, p := range pc.running {
		if p != nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(30 * time.Second)
	for i, p := range pc.running {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
		case <-deadline:
			p.kill()
		}
		pc.running[i] = nil
	}
}

// saramaModuleVersion is the sarama version go.mod requires.
func saramaModuleVersion(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/IBM/sarama").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/IBM/sarama: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// copyModule downloads module@version and copies it to a temp dir, as the
// module cache is read-only and go test may update go.sum.
func copyModule(t *testing.T, modVersion string) string {
	out, err := exec.Command("go", "mod", "download", "-json", modVersion).Output()
	if err != nil {
		t.Skipf("cannot download %s from the module proxy: %v", modVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v (%s)", err, out)
	}
	src := filepath.Join(t.TempDir(), "module")
	if out, err := exec.Command("cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v: %s", modVersion, err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	return src
}

// startSaramaCluster starts the five nodes, each advertising its client
// listener as 127.0.0.1:2909N (the proxy made after), and returns the
// client listeners' real addresses, the proxies' upstreams.
func startSaramaCluster(t *testing.T, n int) (*processCluster, []string) {
	bin, err := brokerBinary()
	if err != nil {
		t.Fatalf("building cmd/broker: %v", err)
	}
	pc := &processCluster{t: t, bin: bin, running: make([]*brokerProcess, n)}
	var voters, internal, client, ctrl []string
	for i := range n {
		internal = append(internal, freePort(t))
		client = append(client, freePort(t))
		ctrl = append(ctrl, freePort(t))
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, ctrl[i]))
	}
	dir := t.TempDir()
	for i := range n {
		id := i + 1
		// The Kafka distribution's config/server.properties, which
		// sarama's entrypoint.sh starts from, then its docker-compose.yml's
		// KAFKA_CFG_* overrides for kafka-N (replication factors 2, but
		// transaction.state.log.min.isr stays the file's 1).
		props := fmt.Sprintf(`# config/server.properties
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
num.partitions=1
num.recovery.threads.per.data.dir=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
# sarama's docker-compose.yml, kafka-%d
process.roles=broker,controller
node.id=%d
broker.rack=%d
controller.quorum.voters=%s
controller.listener.names=CONTROLLER
listeners=LISTENER_INTERNAL://%s,LISTENER_LOCAL://%s,CONTROLLER://%s
advertised.listeners=LISTENER_INTERNAL://%s,LISTENER_LOCAL://127.0.0.1:%d
inter.broker.listener.name=LISTENER_INTERNAL
listener.security.protocol.map=LISTENER_INTERNAL:PLAINTEXT,LISTENER_LOCAL:PLAINTEXT,CONTROLLER:PLAINTEXT
default.replication.factor=2
offsets.topic.replication.factor=2
transaction.state.log.replication.factor=2
delete.topic.enable=true
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.dirs=%s
broker.heartbeat.interval.ms=200
broker.session.timeout.ms=2000
kafkit.http.listen=
`, id, id, id, strings.Join(voters, ","), internal[i], client[i], ctrl[i], internal[i], 29090+id, filepath.Join(dir, fmt.Sprintf("logs-%d", id)))
		f := filepath.Join(dir, fmt.Sprintf("node%d.properties", id))
		if err := os.WriteFile(f, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		if release := os.Getenv("KAFKIT_SARAMA_RELEASE"); release != "" {
			formatRelease(t, props, release)
		}
		pc.files = append(pc.files, f)
	}
	for i := range n {
		pc.start(i + 1)
	}
	t.Cleanup(func() { stopTogether(pc) })
	return pc, client
}

// waitSaramaBrokers waits until sarama, through the proxies, sees want
// brokers and a controller.
func waitSaramaBrokers(t *testing.T, want int) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	var seeds []string
	for i := 1; i <= want; i++ {
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", 29090+i))
	}
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		c, err := sarama.NewClient(seeds, cfg)
		if err != nil {
			last = err
			continue
		}
		n := len(c.Brokers())
		_, err = c.Controller()
		c.Close()
		if n == want && err == nil {
			return
		}
		last = fmt.Errorf("%d brokers, controller: %v", n, err)
	}
	t.Fatalf("sarama did not see %d brokers through the proxies within 60 s: %v", want, last)
}

// waitHTTP waits until url answers.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer within %v", url, within)
}

var suiteResult = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)

// suiteCounts reads go test -v output for its top-level tests' results.
func suiteCounts(out []byte) (pass, fail, skip []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := suiteResult.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		switch m[1] {
		case "PASS":
			pass = append(pass, m[2])
		case "FAIL":
			fail = append(fail, m[2])
		case "SKIP":
			skip = append(skip, m[2])
		}
	}
	return pass, fail, skip
}

// formatRelease writes the bootstrap levels of a Kafka release into the
// log directory of a node's properties, as kafka-storage format
// --release-version does.
func formatRelease(t *testing.T, props, release string) {
	t.Helper()
	level, err := metadata.ParseReleaseVersion(release)
	if err != nil {
		t.Fatalf("KAFKIT_SARAMA_RELEASE: %v", err)
	}
	p, err := broker.ReadProperties(strings.NewReader(props))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := broker.ConfigFromProperties(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.WriteBootstrap(cfg, nil, metadata.DefaultFeatures(level)); err != nil {
		t.Fatal(err)
	}
}
