package client

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestForgedResponseTagCount: a broker whose ApiVersions v3 answer claims
// 2^32-1 tagged fields gets its connection dropped at once; decoding the
// answer as kmsg does would keep a core busy for tens of seconds.
func TestForgedResponseTagCount(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				var size [4]byte
				if _, err := io.ReadFull(nc, size[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(nc, req); err != nil || len(req) < 8 {
					return
				}
				// Header v0 (correlation id), then ApiVersions v3+: no
				// error, one API (ApiVersions 0-3) whose tag section
				// claims 2^32-1 tags.
				body := append(append([]byte{}, req[4:8]...), 0, 0, 2, 0, 18, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0x0f)
				binary.BigEndian.PutUint32(size[:], uint32(len(body)))
				nc.Write(append(size[:], body...))
				io.Copy(io.Discard, nc)
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	cl, err := New(ctx, Config{SeedBrokers: []string{ln.Addr().String()}})
	if err == nil {
		cl.Close()
		t.Fatal("a client connected through a forged ApiVersions response")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v: %v", d, err)
	}
	if !strings.Contains(err.Error(), "malformed ApiVersionsResponse") {
		t.Fatalf("error does not say the response was malformed: %v", err)
	}
}
