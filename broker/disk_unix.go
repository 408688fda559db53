//go:build linux || darwin || freebsd || netbsd || dragonfly

package broker

import "syscall"

// diskSpace returns the size of the file system holding dir and the bytes
// an unprivileged writer may still use (DescribeLogDirs v4). Statfs_t's
// field types differ by platform, hence the conversions.
func diskSpace(dir string) (total, usable int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1, err
	}
	bsize := int64(st.Bsize)
	return int64(st.Blocks) * bsize, int64(st.Bavail) * bsize, nil
}
