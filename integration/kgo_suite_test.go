package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/cli"
)

// TestFranzGoSuite runs franz-go's own kgo test suite (the version go.mod
// requires) against cmd/broker: a third-party client's tests, written for
// Apache Kafka, against our broker. It takes a couple of minutes and its
// timing-sensitive tests are not meant for a loaded CI machine, so it is
// opt-in:
//
//	KAFKIT_KGO_SUITE=1 go test -run TestFranzGoSuite -v ./integration/
//
// The broker is set up as franz-go's CI sets up Kafka: PLAINTEXT on one
// port, SASL_PLAINTEXT with SCRAM-SHA-256 on another, and the SCRAM user
// created over PLAINTEXT with kafka-configs' --add-config (here kafkit's,
// which sends AlterUserScramCredentials), so the suite's TestSCRAMAuth and
// TestSCRAMAuthBadCredentials run. KAFKIT_KGO_RUN passes -run to the suite.
func TestFranzGoSuite(t *testing.T) {
	if os.Getenv("KAFKIT_KGO_SUITE") == "" {
		t.Skip("set KAFKIT_KGO_SUITE=1 to run franz-go's kgo tests against cmd/broker")
	}
	bin, err := brokerBinary()
	if err != nil {
		t.Fatalf("building cmd/broker: %v", err)
	}
	dir := t.TempDir()
	saslAddr := freePort(t)
	props := filepath.Join(dir, "server.properties")
	os.WriteFile(props, []byte("listeners=PLAINTEXT://"+freePort(t)+",SASL_PLAINTEXT://"+saslAddr+"\n"+
		"sasl.enabled.mechanisms=SCRAM-SHA-256\n"+
		"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n"+
		"offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n"), 0o600)
	p := startProcess(t, exec.Command(bin, "--config", props, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn", "--http", ""))

	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := cli.Run(ctx, []string{"--bootstrap-server", p.addr, "kafka-configs", "--alter", "--entity-type", "users", "--entity-name", "kgo-scram",
		"--add-config", "SCRAM-SHA-256=[iterations=4096,password=kgo-secret]"}, cli.IO{Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("creating the SCRAM user: %s", errOut.String())
	}

	runKgoSuite(t, p.addr, "KGO_TEST_SCRAM=kgo-scram:kgo-secret:256", "KGO_TEST_SCRAM_SEEDS="+saslAddr)
}

// runKgoSuite runs franz-go's kgo tests against seeds, with topics of
// replication factor 1 and env added; KAFKIT_KGO_RUN picks tests (-run).
func runKgoSuite(t *testing.T, seeds string, env ...string) {
	args := append([]string{"test", "-count=1", "-timeout", "15m"}, suiteRunArgs("KAFKIT_KGO_RUN")...)
	cmd := exec.Command("go", append(args, "github.com/twmb/franz-go/pkg/kgo")...)
	cmd.Env = append(append(os.Environ(), "KGO_SEEDS="+seeds, "KGO_TEST_RF=1", "KGO_LOG_LEVEL=none"), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("franz-go's kgo tests against %s: %v", seeds, err)
	}
}

// suiteRunArgs is the -run (and -v, to see which tests ran) that the env var
// named env asks a third-party suite to narrow to, or nothing.
func suiteRunArgs(env string) []string {
	if run := os.Getenv(env); run != "" {
		return []string{"-run", run, "-v"}
	}
	return nil
}
