package integration

import (
	"os"
	"os/exec"
	"testing"
)

// TestFranzGoSuite runs franz-go's own kgo test suite (the version go.mod
// requires) against cmd/broker: a third-party client's tests, written for
// Apache Kafka, against our broker. It takes a couple of minutes and its
// timing-sensitive tests are not meant for a loaded CI machine, so it is
// opt-in:
//
//	KAFKIT_KGO_SUITE=1 go test -run TestFranzGoSuite -v ./integration/
func TestFranzGoSuite(t *testing.T) {
	if os.Getenv("KAFKIT_KGO_SUITE") == "" {
		t.Skip("set KAFKIT_KGO_SUITE=1 to run franz-go's kgo tests against cmd/broker")
	}
	p := startBrokerProcess(t, t.TempDir())
	runKgoSuite(t, p.addr)
}

// runKgoSuite runs franz-go's kgo tests against seeds, with topics of
// replication factor 1.
func runKgoSuite(t *testing.T, seeds string) {
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "15m", "github.com/twmb/franz-go/pkg/kgo")
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+seeds, "KGO_TEST_RF=1", "KGO_LOG_LEVEL=none")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("franz-go's kgo tests against %s: %v", seeds, err)
	}
}
