package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/cli"
)

// kafkaGoVersion is the segmentio/kafka-go release whose tests
// TestKafkaGoSuite runs.
const kafkaGoVersion = "v0.4.51"

// kafkaGoSkip names the kafka-go tests that cannot pass against any broker:
//   - getOffsets (reader_test.go) builds a ConsumerGroup without Validate, so
//     its connect func is nil and the test binary panics in
//     ConsumerGroup.coordinator;
//   - "consumer group rebalance" writes 24 records round-robin over the 3
//     partitions its scenario creates and then wants 12 from each of two
//     readers, but the one given a single partition holds only 8.
const kafkaGoSkip = "TestReaderConsumerGroup/(consumer_group_commits_on_close|verify_offset_committed|consumer_group_rebalance$)"

// TestKafkaGoSuite runs segmentio/kafka-go's own test suite against
// cmd/broker, set up as kafka-go's CI sets up Kafka 3.7 (broker id 1,
// advertised as localhost:9092, message.max.bytes 200000000, see below).
// kafka-go's tests dial localhost:9092 and 9093 themselves. It downloads
// kafka-go from the Go module proxy and takes several minutes, so it is
// opt-in:
//
//	KAFKIT_KAFKAGO_SUITE=1 go test -run TestKafkaGoSuite -v ./integration/
//
// Ports 9092 and 9093 must be free. KAFKIT_KAFKAGO_RUN passes -run to the
// suite (e.g. KAFKIT_KAFKAGO_RUN=TestReaderReadCompactedMessage).
//
// TestReaderReadCompactedMessage depends on timing with any broker: if a
// cleaner pass (every log.cleaner.backoff.ms, 15 s) starts while it is
// still writing, past about 60% of its 154 batches, what it writes after
// stays below min.cleanable.dirty.ratio and is never compacted, so it
// reads duplicates until its 120 s run out. Its writer takes ~1 s to a
// topic with default segments here, but 5-8 s to its 200-byte segments on
// a loaded machine, as every roll fsyncs before the produce is answered
// (Kafka flushes a rolled segment in the background), so it fails here
// more often than against Kafka.
func TestKafkaGoSuite(t *testing.T) {
	if os.Getenv("KAFKIT_KAFKAGO_SUITE") == "" {
		t.Skip("set KAFKIT_KAFKAGO_SUITE=1 to run segmentio/kafka-go's tests against cmd/broker on localhost:9092")
	}
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/segmentio/kafka-go@"+kafkaGoVersion).Output()
	if err != nil {
		t.Skipf("cannot download kafka-go %s from the module proxy: %v", kafkaGoVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v (%s)", err, out)
	}
	// The module cache is read-only and go test may update go.sum: work on a
	// copy.
	src := filepath.Join(t.TempDir(), "kafka-go")
	if out, err := exec.Command("cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying kafka-go: %v: %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	// kafka-go's CI: PLAINTEXT on 9092, SASL_PLAINTEXT on 9093 with PLAIN
	// user adminplain and SCRAM user adminscram, AclAuthorizer with
	// allow.everyone.if.no.acl.found.
	bin, err := brokerBinary()
	if err != nil {
		t.Fatalf("building cmd/broker: %v", err)
	}
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	os.WriteFile(props, []byte(`broker.id=1
listeners=PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093
advertised.listeners=PLAINTEXT://localhost:9092,SASL_PLAINTEXT://localhost:9093
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_adminplain="admin-secret";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=kafka.security.authorizer.AclAuthorizer
allow.everyone.if.no.acl.found=true
message.max.bytes=200000000
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
`), 0o600)
	p := startProcess(t, exec.Command(bin, "--config", props, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn", "--http", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errOut bytes.Buffer
	if code := cli.Run(ctx, []string{"--bootstrap-server", p.addr, "kafka-configs", "--alter", "--entity-type", "users", "--entity-name", "adminscram",
		"--add-config", "SCRAM-SHA-256=[password=admin-secret-256],SCRAM-SHA-512=[password=admin-secret-512]"}, cli.IO{Out: io.Discard, Err: &errOut}); code != 0 {
		t.Fatalf("creating the SCRAM user: %s", errOut.String())
	}
	args := append([]string{"test", "-count=1", "-timeout", "20m", "-skip", kafkaGoSkip}, suiteRunArgs("KAFKIT_KAFKAGO_RUN")...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "KAFKA_VERSION=3.7.0", "KAFKA_SKIP_NETTEST=1", "GOFLAGS=-mod=mod")
	res, err := cmd.CombinedOutput()
	t.Logf("%s", res)
	if err != nil {
		t.Fatalf("kafka-go's tests against cmd/broker: %v", err)
	}
}
