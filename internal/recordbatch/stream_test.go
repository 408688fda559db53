package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/pierrec/lz4/v4"
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

// lz4Frames writes src as an LZ4 frame with pierrec's writer and the
// options (its defaults: 4 MB blocks and a content checksum, as franz-go
// and sarama write them).
func lz4Frames(t *testing.T, src []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Issue 20: LZ4 frames as Kafka's clients write them are read block by
// block, as Kafka's Lz4BlockInputStream reads them: the descriptor's
// checksum checked, the content size and the content checksum skipped (not
// verified, as by Kafka); frames with block checksums go to pierrec's
// Reader, and so do those whose descriptor does not check out, which it
// refuses.
func TestStreamLZ4Frames(t *testing.T) {
	src := levelBatch(t, None, 0)[HeaderLen:]
	rng := rand.New(rand.NewPCG(1, 2))
	rand := make([]byte, 200<<10) // stored blocks: it does not compress
	for i := range rand {
		rand[i] = byte(rng.IntN(256))
	}
	stored := lz4Frames(t, rand, lz4.BlockSizeOption(lz4.Block64Kb))
	if blocks, _, _, _ := lz4Frame(stored); len(blocks) < 4 || binary.LittleEndian.Uint32(blocks)&lz4Uncompressed == 0 {
		t.Fatal("the random bytes' first block is not stored")
	}
	withSum := lz4Frames(t, src)
	for _, tc := range []struct {
		name   string
		frames []byte
		want   []byte
		fast   bool
	}{
		{"defaults (4MB blocks, content checksum)", withSum, src, true},
		{"64KB blocks, no checksum", lz4Frames(t, src, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)), src, true},
		{"content size", lz4Frames(t, src, lz4.SizeOption(uint64(len(src)))), src, true},
		{"stored blocks", stored, rand, true},
		{"two frames", append(bytes.Clone(withSum), withSum...), append(bytes.Clone(src), src...), true},
		{"wrong content checksum", func() []byte { b := bytes.Clone(withSum); b[len(b)-1] ^= 1; return b }(), src, true},
		{"block checksums", lz4Frames(t, src, lz4.BlockChecksumOption(true)), src, false},
	} {
		_, _, _, fast := lz4Frame(tc.frames)
		if fast != tc.fast {
			t.Errorf("%s: read block by block: %v, want %v", tc.name, fast, tc.fast)
		}
		for _, size := range []int{1000, 128 << 10, 8 << 20} {
			s, err := NewStream(LZ4, tc.frames)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, err := readStream(s, size)
			s.Close()
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("%s, reads of %d: %v, records equal: %v", tc.name, size, err, bytes.Equal(got, tc.want))
			}
		}
	}

	for _, tc := range []struct {
		name   string
		frames []byte
	}{
		{"descriptor checksum", func() []byte { b := bytes.Clone(withSum); b[6] ^= 1; return b }()},
		{"truncated", withSum[:len(withSum)/2]},
		{"no end mark", withSum[:len(withSum)-8]},
		{"garbage after the frame", append(bytes.Clone(withSum), 1, 2, 3, 4, 5, 6, 7, 8)},
		{"block past the end", func() []byte {
			b := bytes.Clone(withSum)
			binary.LittleEndian.PutUint32(b[7:], uint32(len(b)))
			return b
		}()},
	} {
		s, err := NewStream(LZ4, tc.frames)
		if err == nil {
			var got []byte
			got, err = readStream(s, 128<<10)
			s.Close()
			if err == nil && bytes.Equal(got, src) {
				t.Errorf("%s: read the records", tc.name)
				continue
			}
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// The descriptor checksum is xxHash32's (its reference values).
func TestXXH32Small(t *testing.T) {
	for in, want := range map[string]uint32{"": 0x02cc5d05, "a": 0x550d7456, "abc": 0x32d153ff, "message digest": 0x7c948494} {
		if got := xxh32Small([]byte(in)); got != want {
			t.Errorf("xxh32(%q) = %#x, want %#x", in, got, want)
		}
	}
}

// FuzzStream hands arbitrary bytes to a Stream of each codec: reading
// them must end in io.EOF or an error, never a panic or a read past what
// the codec's framing allows.
func FuzzStream(f *testing.F) {
	src := []byte("records records records, and more records of a batch")
	for c := Gzip; c <= Zstd; c++ {
		compressed, err := Compress(c, nil, src)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(c), compressed)
	}
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf) // a content checksum and 4 MB blocks
	w.Write(src)
	w.Close()
	f.Add(uint8(LZ4), buf.Bytes())
	f.Fuzz(func(t *testing.T, codec uint8, data []byte) {
		c := Codec(codec%4 + 1)
		s, err := NewStream(c, data)
		if err != nil {
			return
		}
		defer s.Close()
		_, _ = readStream(s, 1000)
	})
}
