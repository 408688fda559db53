package storage

import (
	"fmt"
	"os"
	"syscall"
)

// Chunk is a byte range of one segment file that a Fetch response can carry
// as it is, copied from the file to the socket by the kernel (sendfile).
// File is a duplicate descriptor owned by the Chunk, so the bytes stay
// readable even if retention or compaction removes the segment before the
// response is written; Close releases it.
type Chunk struct {
	File *os.File
	Pos  int64
	Len  int64
}

// Close releases the chunk's descriptor.
func (c Chunk) Close() error {
	if c.File == nil {
		return nil
	}
	return c.File.Close()
}

// ReadChunk locates what Read would return for a fetch at offset, as a
// file range instead of a copy. Like Kafka's FileRecords it may end inside a
// batch when maxBytes cuts one (clients drop a truncated trailing batch), but
// it holds at least the first batch whole when minOne (KIP-74), never spans
// two segments, and stops at the high watermark, or at the last stable
// offset when committed. ok is false when the log's files are not OS files
// (the in-memory mode): the caller then uses Read. A Chunk with Len 0 means
// no data.
func (l *Log) ReadChunk(offset int64, committed bool, maxBytes int32, minOne bool) (c Chunk, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return c, false, ErrClosed
	}
	limit := l.end.Load()
	if committed {
		limit = l.lastStableLocked()
	}
	if start, end := l.start.Load(), l.end.Load(); offset < start || offset > end {
		return c, false, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset >= limit {
		return c, true, nil
	}
	var scratch [batchHeaderLen]byte
	for i := l.segmentFor(offset); i < len(l.segments); i++ {
		s := l.segments[i]
		f, isOS := s.log.(*os.File)
		if !isOS {
			return c, false, nil
		}
		pos, h, found, err := s.locate(offset, scratch[:])
		if err != nil {
			return c, false, err
		}
		if !found {
			continue
		}
		end := s.size
		if limit < s.next {
			// The batch holding limit starts where the range must stop
			// (the last stable offset is always a batch's first offset).
			lpos, _, lfound, err := s.locate(limit, scratch[:])
			if err != nil {
				return c, false, err
			}
			if lfound {
				end = lpos
			}
		}
		n := min(end-pos, int64(max(maxBytes, 0)))
		if n < int64(h.size) {
			if !minOne {
				return c, true, nil
			}
			n = int64(h.size)
		}
		dup, err := dupFile(f)
		if err != nil {
			return c, false, fmt.Errorf("storage: %s: %w", s.logPath, err)
		}
		return Chunk{File: dup, Pos: pos, Len: n}, true, nil
	}
	return c, true, nil
}

// dupFile returns a second descriptor of f's open file.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(orig uintptr) { fd, dupErr = syscall.Dup(int(orig)) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, dupErr
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}
