package storage

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
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
	m, err := decodeOffsetCheckpoint(b)
	if err != nil {
		return 0, err
	}
	if len(m) != 1 {
		return 0, fmt.Errorf("%d entries in a one-entry checkpoint", len(m))
	}
	var off int64
	for _, off = range m {
	}
	return off, nil
}

// TopicPartition names a partition in a multi-partition checkpoint file.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// encodeOffsetCheckpoint is Kafka's OffsetCheckpointFile: version line 0,
// the entry count, then "<topic> <partition> <offset>" lines (sorted here,
// so that equal maps give equal files).
func encodeOffsetCheckpoint(entries map[TopicPartition]int64) ([]byte, error) {
	keys := make([]TopicPartition, 0, len(entries))
	for tp := range entries {
		if tp.Topic == "" || strings.ContainsFunc(tp.Topic, unicode.IsSpace) || tp.Partition < 0 {
			return nil, fmt.Errorf("storage: %q partition %d cannot be written to a checkpoint file", tp.Topic, tp.Partition)
		}
		keys = append(keys, tp)
	}
	slices.SortFunc(keys, func(a, b TopicPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	b := fmt.Appendf(nil, "0\n%d\n", len(keys))
	for _, tp := range keys {
		b = fmt.Appendf(b, "%s %d %d\n", tp.Topic, tp.Partition, entries[tp])
	}
	return b, nil
}

// decodeOffsetCheckpoint parses Kafka's checkpoint text format as its
// CheckpointFile reads it (an empty file has no entries, fields are
// separated by any whitespace, the count must match), refusing negative
// partitions and offsets and repeated partitions, which Kafka never writes.
func decodeOffsetCheckpoint(b []byte) (map[TopicPartition]int64, error) {
	lines, err := checkpointLines(b)
	if err != nil {
		return nil, err
	}
	m := make(map[TopicPartition]int64, len(lines))
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || off < 0 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		tp := TopicPartition{Topic: f[0], Partition: int32(p)}
		if _, dup := m[tp]; dup {
			return nil, fmt.Errorf("%s-%d appears twice", tp.Topic, tp.Partition)
		}
		m[tp] = off
	}
	return m, nil
}

// WriteOffsetCheckpoint writes a multi-partition checkpoint file (Kafka's
// replication-offset-checkpoint, recovery-point-offset-checkpoint and
// log-start-offset-checkpoint layout: see doc.go) at path, atomically: a
// crash leaves the old file or the new one, never a mix.
func WriteOffsetCheckpoint(fsys FS, path string, entries map[TopicPartition]int64) error {
	b, err := encodeOffsetCheckpoint(entries)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(fsys, path, b); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// ReadOffsetCheckpoint reads a file WriteOffsetCheckpoint (or Kafka) wrote.
// A missing file is an empty map, as Kafka reads it; an unreadable one is
// an error wrapping ErrCorrupt.
func ReadOffsetCheckpoint(fsys FS, path string) (map[TopicPartition]int64, error) {
	b, err := readFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", path, err)
	}
	m, err := decodeOffsetCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return m, nil
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
