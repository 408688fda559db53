package metadata

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// One port serves Raft (preamble consumed) and Kafka (bytes intact).
func TestMuxSplitsRaftFromKafka(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(ln, true)
	defer m.Close()

	raftConn, err := streamLayer{Listener: m.Raft()}.Dial(raft.ServerAddress(ln.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raftConn.Close()
	raftConn.Write([]byte("vote"))
	kafkaConn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer kafkaConn.Close()
	kafkaConn.Write([]byte{0, 0, 0, 4, 'k', 'a', 'f', 'k'})

	read := func(l net.Listener, n int) string {
		t.Helper()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, n)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		return string(buf)
	}
	if got := read(m.Raft(), 4); got != "vote" {
		t.Errorf("raft side read %q, want the bytes after the preamble", got)
	}
	if got := read(m.Other(), 8); got != "\x00\x00\x00\x04kafk" {
		t.Errorf("kafka side read %q, want the frame intact", got)
	}
	m.Close()
	if _, err := m.Other().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v", err)
	}
}
