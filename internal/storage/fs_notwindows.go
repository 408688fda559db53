//go:build !windows

package storage

import "os"

// syncDir fsyncs a directory, which makes the creation, rename and removal of
// its entries durable (on macOS through F_FULLFSYNC, as File.Sync).
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
