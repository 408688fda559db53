//go:build unix

package brokercmd

import (
	"os"
	"syscall"
	"testing"
)

// stopSelf sends this process the SIGTERM a service manager would.
func stopSelf(t *testing.T) {
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func skipSignalTest(*testing.T) {}
