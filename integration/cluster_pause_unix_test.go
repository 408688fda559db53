//go:build unix

package integration

import "syscall"

// pause stops node with SIGSTOP: it holds its connections and state but
// runs nothing, as a long GC pause or a stalled VM would.
func (pc *processCluster) pause(node int) {
	pc.t.Helper()
	if err := pc.running[node-1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		pc.t.Fatal(err)
	}
}

// resume continues a paused node (SIGCONT).
func (pc *processCluster) resume(node int) {
	pc.t.Helper()
	if err := pc.running[node-1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		pc.t.Fatal(err)
	}
}
