package recordbatch

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
)

// readStream reads all of s through reads of at most size bytes.
func readStream(s *Stream, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// Issue 20: a Stream gives the records a batch compressed, whatever the
// size of the reads: smaller than a codec's block (snappy's xerial blocks
// are then decoded aside and read out in pieces), or larger.
func TestStream(t *testing.T) {
	src := levelBatch(t, None, 0)[HeaderLen:]
	raw := s2.EncodeSnappy(nil, src) // snappy without xerial framing, as librdkafka sends it
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		compressed, err := Compress(c, nil, src)
		if err != nil {
			t.Fatal(err)
		}
		cases := map[string][]byte{c.String(): compressed}
		if c == Snappy {
			cases["snappy-raw"] = raw
		}
		for name, compressed := range cases {
			for _, size := range []int{1, 1000, 64 << 10, 2 * len(src)} {
				s, err := NewStream(c, compressed)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, err := readStream(s, size)
				s.Close()
				if err != nil || !bytes.Equal(got, src) {
					t.Fatalf("%s, reads of %d: %v, records equal: %v", name, size, err, bytes.Equal(got, src))
				}
			}
		}
	}
}

// A stream that is not the codec's fails, at NewStream or at a Read, and
// never returns io.EOF as if the records ended.
func TestStreamCorrupt(t *testing.T) {
	garbage := bytes.Repeat([]byte{0xa5}, 64)
	truncatedXerial := append(bytes.Clone(xerialHeader), 0, 0, 1, 0, 1, 2)
	for _, tc := range []struct {
		c   Codec
		src []byte
	}{{Gzip, garbage}, {Snappy, garbage}, {LZ4, garbage}, {Zstd, garbage}, {Snappy, truncatedXerial}, {Snappy, xerialMagic}, {Codec(7), garbage}} {
		s, err := NewStream(tc.c, tc.src)
		if err == nil {
			_, err = readStream(s, 1000)
			s.Close()
		}
		if err == nil {
			t.Errorf("%s %x: no error", tc.c, tc.src[:8])
		}
	}
	if _, err := NewStream(Codec(7), garbage); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("codec 7: %v", err)
	}
}

// A Stream closed before its end (a batch refused halfway) leaves its
// pooled decoder fit for the next user: a zstd decoder of concurrency 1
// streaming holds its only block decoder, and DecodeAll waited for it
// forever.
func TestStreamClosedEarly(t *testing.T) {
	src := levelBatch(t, None, 0)[HeaderLen:]
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		compressed, err := Compress(c, nil, src)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewStream(c, compressed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		done := make(chan error, 1)
		go func() {
			// Through every pooled decoder, the abandoned one included.
			for range cap(zstdDecoders) + 1 {
				out, err := Decompress(c, compressed)
				if err == nil && !bytes.Equal(out, src) {
					err = errors.New("decompressed other records than were compressed")
				}
				if err != nil {
					done <- err
					return
				}
				s, err := NewStream(c, compressed)
				if err != nil {
					done <- err
					return
				}
				got, err := readStream(s, 4096)
				s.Close()
				if err == nil && !bytes.Equal(got, src) {
					err = errors.New("streamed other records than were compressed")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s after a stream closed early: %v", c, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: decompressing after a stream closed early did not return", c)
		}
	}
}
