//go:build windows

package cli

import (
	"os"
	"os/exec"
	"syscall"
)

// terminate ends p: Windows has no SIGTERM to send another process, so it
// is killed, as kafka-server-stop.bat ends Kafka's JVM.
func terminate(p *os.Process) error { return p.Kill() }

// detach starts a -daemon broker in its own process group, away from the
// console's Ctrl-C.
func detach(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
