package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// lockFileName is the lock file Kafka keeps in each log directory.
const lockFileName = ".lock"

// errDirLocked: another broker (process or Broker value) holds the data
// directory.
var errDirLocked = errors.New("data directory in use")

// lockDataDir takes an exclusive lock on <dir>/.lock, as Kafka's LogManager
// does, so a second broker on the same directory refuses to start instead
// of corrupting the logs. The lock lasts until the returned file is closed
// (or the process ends). Where the platform offers no lock (tryLock returns
// errors.ErrUnsupported) it warns and returns the open file unlocked.
func lockDataDir(dir string, log *slog.Logger) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	switch err := tryLock(f); {
	case err == nil:
		return f, nil
	case errors.Is(err, errors.ErrUnsupported):
		log.Warn("this platform has no file lock: a second broker on the same log.dirs would not be refused", "dir", dir)
		return f, nil
	case errors.Is(err, errDirLocked):
		f.Close()
		return nil, fmt.Errorf("Failed to acquire lock on file .lock in %s. A Kafka instance in another process or thread is using this directory: %w", dir, err)
	default:
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
}
