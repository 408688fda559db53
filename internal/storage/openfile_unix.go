//go:build unix

package storage

import (
	"io/fs"
	"os"
	"syscall"
)

// openOSFile opens a file as os.OpenFile does, without os.OpenFile's attempt
// to register it with the runtime's poller: for a regular file that attempt
// always fails and costs four fcntl calls and an epoll_ctl, which at start-up
// (several files for each of tens of thousands of partitions) was a fifth
// of the time spent opening files. os.NewFile makes the same blocking
// *os.File the failed attempt leaves.
func openOSFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
