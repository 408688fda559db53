package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/storage"
)

// frame is one encoded response on its way to the socket: encoded bytes,
// and for a zero-copy Fetch, file chunks the writer sends from the segment
// files straight to the socket (sendChunk) between them.
type frame struct {
	segs []frameSeg
	one  [1]frameSeg // the segs of a frame of bytes alone, in the same allocation
	// ready, when not nil, is closed once segs is filled in (a response
	// completed after its handler returned, see reqCtx.await).
	ready chan struct{}
}

// frameSeg is either bytes or a chunk.
type frameSeg struct {
	b     []byte
	chunk storage.Chunk
}

func bytesFrame(b []byte) *frame {
	f := &frame{}
	f.one[0].b = b
	f.segs = f.one[:]
	return f
}

// release closes the chunks' descriptors and recycles the encoded buffer.
func (f *frame) release() {
	for i, s := range f.segs {
		if s.chunk.File != nil {
			s.chunk.Close()
		}
		if i == 0 && cap(s.b) <= maxPooledResp {
			b := s.b[:0]
			respBufs.Put(&b)
		}
	}
}

// chunkMarkers stand in the encoded response where a chunk's bytes go: the
// response is encoded by kmsg with RecordBatches set to a marker, then the
// marker is replaced by the chunk on the way out, and its length prefix by
// the chunk's. A per-process random prefix makes markers impossible to
// confuse with the rest of the (small) encoding; the suffix numbers them.
var markerPrefix = func() [8]byte {
	var p [8]byte
	rand.Read(p[:])
	return p
}()

const markerLen = 12

func chunkMarker(i int) []byte {
	m := make([]byte, markerLen)
	copy(m, markerPrefix[:])
	binary.BigEndian.PutUint32(m[8:], uint32(i))
	return m
}

// pendingChunk is a chunk a handler put in its response behind a marker.
type pendingChunk struct {
	marker []byte
	chunk  storage.Chunk
}

// errNoMarker reports an encoding in which a marker was not found once
// exactly where expected; the caller then falls back to copying.
var errNoMarker = errors.New("chunk marker not found")

// spliceChunks turns the encoded response enc (a frame whose first four
// bytes are the size) into segments with each marker replaced by its chunk.
// flexible says how kmsg encoded the nullable bytes' length: a compact
// uvarint of length+1 (flexible versions) or an int32.
func spliceChunks(enc []byte, chunks []pendingChunk, flexible bool) (*frame, error) {
	markerPrefixed := func(n int64) []byte {
		if flexible {
			return kbin.AppendUvarint(nil, uint32(n+1))
		}
		return kbin.AppendInt32(nil, int32(n))
	}
	oldPrefix := markerPrefixed(markerLen)
	f := &frame{}
	from := 0
	total := int64(0)
	for _, pc := range chunks {
		i := bytes.Index(enc[from:], pc.marker)
		if i < 0 {
			return nil, errNoMarker
		}
		i += from
		if i-len(oldPrefix) < from || !bytes.Equal(enc[i-len(oldPrefix):i], oldPrefix) {
			return nil, errNoMarker
		}
		head := enc[from : i-len(oldPrefix)]
		newPrefix := markerPrefixed(pc.chunk.Len)
		f.segs = append(f.segs, frameSeg{b: head}, frameSeg{b: newPrefix}, frameSeg{chunk: pc.chunk})
		total += int64(len(head)+len(newPrefix)) + pc.chunk.Len
		from = i + markerLen
	}
	f.segs = append(f.segs, frameSeg{b: enc[from:]})
	total += int64(len(enc) - from)
	if total-4 > 1<<31-1 {
		return nil, fmt.Errorf("response of %d bytes is too large to frame", total)
	}
	binary.BigEndian.PutUint32(enc, uint32(total-4))
	return f, nil
}

// copyChunks is the fallback when splicing fails: read every chunk into
// memory in place of its marker and encode again.
func copyChunks(resp kmsg.Response, chunks []pendingChunk) error {
	data := make(map[string][]byte, len(chunks))
	for _, pc := range chunks {
		b := make([]byte, pc.chunk.Len)
		if _, err := pc.chunk.File.ReadAt(b, pc.chunk.Pos); err != nil {
			return err
		}
		data[string(pc.marker)] = b
	}
	fr := resp.(*kmsg.FetchResponse)
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			p := &fr.Topics[i].Partitions[j]
			if b, ok := data[string(p.RecordBatches)]; ok {
				p.RecordBatches = b
			}
		}
	}
	return nil
}

// writeFrame writes f to the socket: bytes through w, chunks by sendChunk
// after flushing w.
func writeFrame(nc net.Conn, w *bufio.Writer, f *frame, copyChunks bool) error {
	for _, s := range f.segs {
		if s.chunk.File == nil {
			if _, err := w.Write(s.b); err != nil {
				return err
			}
			continue
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := sendChunk(nc, s.chunk, copyChunks); err != nil {
			return err
		}
	}
	return nil
}

// sendChunk sends a file chunk (its File positioned at its Pos) through Go's
// net package, which has the kernel copy it where it can: sendfile for TCP
// on Linux, macOS and FreeBSD, TransmitFile on Windows Server. Elsewhere
// (Windows client editions, TLS) net copies through a buffer, as
// copyChunks=true forces here to measure what that costs.
func sendChunk(nc net.Conn, ch storage.Chunk, copyChunks bool) error {
	var dst io.Writer = nc
	if copyChunks {
		dst = struct{ io.Writer }{nc} // hides net.Conn's ReadFrom
	}
	n, err := io.Copy(dst, io.LimitReader(ch.File, ch.Len))
	if err == nil && n < ch.Len {
		err = io.ErrUnexpectedEOF // the file is shorter than the chunk
	}
	return err
}
