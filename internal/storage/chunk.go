package storage

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
)

// Chunk is a byte range of one segment file that a Fetch response can carry
// as it is, copied from the file to the socket by the kernel (sendfile).
// File is a descriptor of its own, opened by name under the log's read lock
// (so the name still is the segment) and positioned at Pos: the bytes stay
// readable even if retention or compaction removes the segment before the
// response is written (on Windows the removal waits for Close instead), and
// its file position is its own, which Go's net package needs to send it with
// sendfile on every platform. It does not count against the log's open-file
// cache. Close releases it.
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
// file range instead of a copy: whole batches up to maxBytes (at least the
// first when minOne, KIP-74), never spanning two segments, stopping at the
// high watermark, or at the last stable offset when committed. ok is false
// when the log's files are not OS files (the in-memory mode) or a descriptor
// for the chunk cannot be opened: the caller then uses Read. A Chunk with Len
// 0 means no data, unless the range was shorter than copyBelow bytes: those
// are read and appended to dst (the returned slice) instead, as a
// descriptor opened, positioned, sent from and closed costs several system
// calls where a read costs one (a consumer reading records as they arrive
// fetches a batch or two at a time).
func (l *Log) ReadChunk(offset int64, committed bool, maxBytes int32, minOne bool, copyBelow int64, dst []byte) (c Chunk, _ []byte, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return c, dst, false, ErrClosed
	}
	limit := l.readLimitLocked(committed)
	if start, end := l.start.Load(), l.end.Load(); offset < start || offset > end {
		return c, dst, false, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset >= limit {
		return c, dst, true, nil
	}
	for i := l.segmentFor(offset); i < len(l.segments); i++ {
		s := l.segments[i]
		if !isOSFile(s.log) {
			return c, dst, false, nil
		}
		b, found, err := s.findBatch(offset, nil)
		if err != nil {
			return c, dst, false, err
		}
		if !found {
			continue
		}
		pos := b.pos
		end := s.size
		if limit < s.next {
			// The batch holding limit starts where the range must stop
			// (the last stable offset is always a batch's first offset).
			lb, lfound, err := s.findBatch(limit, nil)
			if err != nil {
				return c, dst, false, err
			}
			if lfound {
				end = lb.pos
			}
		}
		n := min(end-pos, int64(max(maxBytes, 0)))
		if n < int64(b.size) {
			if !minOne {
				return c, dst, true, nil
			}
			n = int64(b.size)
		} else if pos+n < end {
			// maxBytes cuts the range: end it on a batch boundary, as whole
			// batches save the client fetching the cut one twice.
			if n, err = s.wholeBatchesUpTo(pos, int64(b.size), pos+n); err != nil {
				return c, dst, false, err
			}
		}
		if n < copyBelow {
			dst = slices.Grow(dst, int(n))
			if _, err := s.log.ReadAt(dst[len(dst):len(dst)+int(n)], pos); err != nil {
				return c, dst, false, fmt.Errorf("storage: read %s at %d: %w", s.logPath, pos, err)
			}
			return c, dst[:len(dst)+int(n)], true, nil
		}
		f, err := openChunkFile(s.logPath, pos)
		if err != nil {
			// Out of descriptors, most likely: Read serves the fetch
			// through the log's open files instead, or reports what is
			// really wrong.
			return c, dst, false, nil
		}
		return Chunk{File: f, Pos: pos, Len: n}, dst, true, nil
	}
	return c, dst, true, nil
}

// wholeBatchesUpTo returns how many bytes from pos (where a batch of
// firstSize bytes starts) hold whole batches ending at or before cut: the
// offset index gives the last batch start at or before cut, then a short
// header walk from there finds the last whole batch. Caller holds Log.mu.
func (s *segment) wholeBatchesUpTo(pos, firstSize, cut int64) (int64, error) {
	b := pos + firstSize // always a boundary
	i := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].pos) > cut }) - 1
	if i >= 0 && int64(s.index[i].pos) > b {
		b = int64(s.index[i].pos)
	}
	var hdr [logOverhead]byte
	for b+logOverhead <= cut {
		if _, err := s.log.ReadAt(hdr[:], b); err != nil {
			return 0, fmt.Errorf("storage: read %s at %d: %w", s.logPath, b, err)
		}
		size := int64(int32(binary.BigEndian.Uint32(hdr[offBatchLength:]))) + logOverhead
		if size < batchHeaderLen || b+size > cut {
			break
		}
		b += size
	}
	return b - pos, nil
}

// openChunkFile opens a read-only descriptor of name positioned at pos.
func openChunkFile(name string, pos int64) (*os.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
