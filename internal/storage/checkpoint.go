package storage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Names of the per-partition metadata files (see doc.go).
const (
	recoveryPointFile  = "recovery-point-offset-checkpoint"
	logStartOffsetFile = "log-start-offset-checkpoint"
	cleanShutdownFile  = ".kafka_cleanshutdown"
	partitionMetaFile  = "partition.metadata"
)

// encodePartitionMeta is Kafka's partition.metadata: the topic id that
// ties the directory to its topic.
func encodePartitionMeta(topicID [16]byte) []byte {
	return fmt.Appendf(nil, "version: 0\ntopic_id: %s\n", base64.RawURLEncoding.EncodeToString(topicID[:]))
}

// AssignTopicID records the partition's topic id in partition.metadata, as
// Kafka's UnifiedLog.assignTopicId does; a file that holds another id or
// is unreadable is replaced. A new log writes it with its first segment's
// files (Log.createFiles), not at once.
func (l *Log) AssignTopicID(topicID [16]byte) error {
	meta := encodePartitionMeta(topicID)
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.dirPending {
		l.pendingMeta = meta
		return nil
	}
	name := filepath.Join(l.dir, partitionMetaFile)
	if old, err := readFile(l.fsys, name); err == nil && bytes.Equal(old, meta) {
		return nil
	}
	return writeFileAtomic(l.fsys, name, meta)
}

// writeFileAtomic replaces name with data so that a crash leaves either the
// old or the new contents: write a temporary file, fsync it, rename it over
// name, fsync the directory.
func writeFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + extTmp
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(name))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readFile reads a small file whole; a missing file returns fs.ErrNotExist.
func readFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readWhole(f)
}

// Checkpoint files use Kafka's text layout: a version line (0), an entry
// count line (1) and one "<topic> <partition> <offset>" line, the topic and
// partition taken from the directory name "<topic>-<partition>".
func encodeCheckpoint(dir string, offset int64) []byte {
	base := filepath.Base(dir)
	topic, partition := base, "0"
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		if _, err := strconv.Atoi(base[i+1:]); err == nil {
			topic, partition = base[:i], base[i+1:]
		}
	}
	return fmt.Appendf(nil, "0\n1\n%s %s %d\n", topic, partition, offset)
}

func decodeCheckpoint(b []byte) (int64, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "0" || lines[1] != "1" {
		return 0, fmt.Errorf("not a one-entry version-0 checkpoint: %q", b)
	}
	fields := strings.Fields(lines[2])
	if len(fields) != 3 {
		return 0, fmt.Errorf("bad entry line %q", lines[2])
	}
	off, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("bad offset in %q", lines[2])
	}
	return off, nil
}

func writeCheckpoint(fsys FS, dir, name string, offset int64) error {
	return writeFileAtomic(fsys, filepath.Join(dir, name), encodeCheckpoint(dir, offset))
}

// readCheckpoint returns the offset in a checkpoint file, ok=false when the
// file is missing; an unreadable file is an error wrapping ErrCorrupt.
func readCheckpoint(fsys FS, dir, name string) (offset int64, ok bool, err error) {
	b, err := readFile(fsys, filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if offset, err = decodeCheckpoint(bytes.TrimSpace(b)); err != nil {
		return 0, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return offset, true, nil
}
