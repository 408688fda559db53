//go:build !unix

package integration

// pause needs SIGSTOP, which only Unix has.
func (pc *processCluster) pause(int) { pc.t.Skip("pausing a process needs SIGSTOP (Unix)") }

func (pc *processCluster) resume(int) {}
