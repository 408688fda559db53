package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFranzGoSuiteCluster runs franz-go's kgo test suite against a
// three-node cluster of cmd/broker processes (KGO_SEEDS with all three,
// topics with replication factor 1), opt-in like TestFranzGoSuite:
//
//	KAFKIT_KGO_SUITE=1 go test -run TestFranzGoSuiteCluster -v ./integration/
func TestFranzGoSuiteCluster(t *testing.T) {
	if os.Getenv("KAFKIT_KGO_SUITE") == "" {
		t.Skip("set KAFKIT_KGO_SUITE=1 to run franz-go's kgo tests against a three-node cluster")
	}
	pc := startProcessCluster(t, 3)
	pc.metadata(3)
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "15m", "github.com/twmb/franz-go/pkg/kgo")
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+strings.Join(pc.addrs, ","), "KGO_TEST_RF=1", "KGO_LOG_LEVEL=none")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("franz-go's kgo tests against three nodes: %v", err)
	}
}
