//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly && !windows

package broker

import (
	"errors"
	"os"
)

// tryLock: no file lock here; the broker warns that a second broker on the
// same directory would not be refused.
func tryLock(*os.File) error { return errors.ErrUnsupported }
