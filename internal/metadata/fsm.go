package metadata

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the metadata image as hashicorp/raft's state machine: each log
// entry is a batch of records, applied in log order; a snapshot is the
// image's records.
type FSM struct {
	mu  sync.RWMutex // guards img; Apply and Restore write, readers read
	img *Image
	// onApply runs on raft's FSM goroutine after each batch is applied,
	// with the lock held for reading: the broker's hook for leadership
	// changes, which arrive as metadata deltas in log order.
	onApply func(offset uint64, records []Record, img *Image)
}

// NewFSM is an FSM over an empty image; onApply may be nil.
func NewFSM(onApply func(offset uint64, records []Record, img *Image)) *FSM {
	return &FSM{img: NewImage(), onApply: onApply}
}

// View runs fn with the current image, which it must not keep or change.
func (f *FSM) View(fn func(*Image)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.img)
}

// Apply applies one committed log entry. It returns the entry's error, if
// any, which raft hands to whoever appended it.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	records, err := DecodeBatch(l.Data)
	f.mu.Lock()
	if aerr := f.img.Apply(l.Index, records); err == nil {
		err = aerr
	}
	f.mu.Unlock()
	if f.onApply != nil {
		f.View(func(img *Image) { f.onApply(l.Index, records, img) })
	}
	return err
}

// Snapshot captures the image as its records; raft writes them out on
// another goroutine while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &snapshot{offset: f.img.Offset, batch: EncodeBatch(f.img.Records()...)}, nil
}

// Restore replaces the image with a snapshot's: offset:uint64 (big endian)
// then one batch.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if len(data) < 8 {
		return fmt.Errorf("%w: snapshot of %d bytes", ErrCorrupt, len(data))
	}
	records, err := DecodeBatch(data[8:])
	if err != nil {
		return fmt.Errorf("metadata snapshot: %w", err)
	}
	img := NewImage()
	if err := img.Apply(binary.BigEndian.Uint64(data), records); err != nil {
		return fmt.Errorf("metadata snapshot: %w", err)
	}
	f.mu.Lock()
	f.img = img
	f.mu.Unlock()
	if f.onApply != nil {
		f.View(func(img *Image) { f.onApply(img.Offset, records, img) })
	}
	return nil
}

type snapshot struct {
	offset uint64
	batch  []byte
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	_, err := sink.Write(binary.BigEndian.AppendUint64(nil, s.offset))
	if err == nil {
		_, err = sink.Write(s.batch)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
