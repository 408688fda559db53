//go:build !unix

package storage

import (
	"io/fs"
	"os"
)

// openOSFile opens a file with os.OpenFile (see openfile_unix.go).
func openOSFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
