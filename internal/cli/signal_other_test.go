//go:build !unix

package cli

import "testing"

// skipSignalTest skips tests that stop a broker with SIGTERM, which only
// unix delivers to another process.
func skipSignalTest(t *testing.T) {
	t.Skip("kafka-server-stop.sh sends SIGTERM, which this platform cannot deliver")
}
