//go:build unix

package broker

import "syscall"

// openFileLimit returns RLIMIT_NOFILE's soft limit.
func openFileLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0, false
	}
	return uint64(lim.Cur), true
}
