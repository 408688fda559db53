package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
// advertised as localhost:9092, message.max.bytes 200000000). kafka-go's tests
// dial localhost:9092 themselves, so that port must be free. It downloads
// kafka-go from the Go module proxy and takes several minutes, so it is
// opt-in:
//
//	KAFKIT_KAFKAGO_SUITE=1 go test -run TestKafkaGoSuite -v ./integration/
//
// Tests needing the SASL_PLAINTEXT listener on 9093 (SCRAM users adminscram,
// PLAIN user adminplain) fail until the broker has SASL listeners.
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
	startBrokerProcess(t, t.TempDir(), "--listen", "127.0.0.1:9092",
		"--override", "broker.id=1",
		"--override", "advertised.listeners=PLAINTEXT://localhost:9092",
		"--override", "message.max.bytes=200000000")
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "20m", "-skip", kafkaGoSkip, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "KAFKA_VERSION=3.7.0", "KAFKA_SKIP_NETTEST=1", "GOFLAGS=-mod=mod")
	res, err := cmd.CombinedOutput()
	t.Logf("%s", res)
	if err != nil {
		t.Fatalf("kafka-go's tests against cmd/broker: %v", err)
	}
}
