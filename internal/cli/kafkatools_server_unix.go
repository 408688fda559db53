//go:build unix

package cli

import (
	"os"
	"os/exec"
	"syscall"
)

// terminate asks p for a controlled shutdown, as kafka-server-stop.sh does.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// detach lets a -daemon broker outlive the shell that started it.
func detach(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
