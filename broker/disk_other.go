//go:build !linux && !darwin && !freebsd && !netbsd && !dragonfly && !windows

package broker

import "errors"

// diskSpace is unknown here: DescribeLogDirs answers -1, as Kafka does when
// it cannot tell.
func diskSpace(string) (total, usable int64, err error) {
	return -1, -1, errors.ErrUnsupported
}
