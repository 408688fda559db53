package integration

import (
	"os"
	"testing"

	"github.com/kafkit/kafkit/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Shutdown()
	os.Exit(code)
}
