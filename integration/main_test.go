package integration

import (
	"os"
	"testing"

	"github.com/kafkit/kafkit/internal/testutil"
)

func TestMain(m *testing.M) {
	if topic, ok := os.LookupEnv(kfakeProcessEnv); ok {
		os.Exit(serveKfake(topic))
	}
	code := m.Run()
	testutil.Shutdown()
	if brokerBinDir != "" {
		os.RemoveAll(brokerBinDir)
	}
	os.Exit(code)
}
