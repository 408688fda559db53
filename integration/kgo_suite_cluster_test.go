package integration

import (
	"os"
	"strings"
	"testing"
)

// TestFranzGoSuiteCluster runs franz-go's kgo test suite against a
// three-node cluster of cmd/broker processes (KGO_SEEDS with all three,
// topics with replication factor 3: KGO_TEST_RF=3), opt-in like
// TestFranzGoSuite:
//
//	KAFKIT_KGO_SUITE=1 go test -run TestFranzGoSuiteCluster -v ./integration/
func TestFranzGoSuiteCluster(t *testing.T) {
	if os.Getenv("KAFKIT_KGO_SUITE") == "" {
		t.Skip("set KAFKIT_KGO_SUITE=1 to run franz-go's kgo tests against a three-node cluster")
	}
	pc := startProcessCluster(t, 3)
	pc.metadata(3)
	runKgoSuite(t, strings.Join(pc.addrs, ","), "KGO_TEST_RF=3")
}
