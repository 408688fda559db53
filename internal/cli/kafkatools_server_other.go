//go:build !unix && !windows

package cli

import (
	"os"
	"os/exec"
)

// terminate ends p: this platform has no SIGTERM to send.
func terminate(p *os.Process) error { return p.Kill() }

// detach does nothing where processes have no sessions or groups to leave.
func detach(*exec.Cmd) {}
