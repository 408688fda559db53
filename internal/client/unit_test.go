package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestIsRetriable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{kerr.NotLeaderForPartition, true},
		{fmt.Errorf("produce: %w", kerr.LeaderNotAvailable), true},
		{kerr.TopicAuthorizationFailed, false},
		{kerr.OffsetOutOfRange, false},
		{ErrRequestTimeout, true},
		{fmt.Errorf("%w: read: EOF", ErrConnectionClosed), true},
		{fmt.Errorf("%w 1: refused", ErrDial), true},
		{io.EOF, true},
		{syscall.ECONNRESET, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{ErrNoBrokers, true},
		{ErrClosed, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("%w: bad password", ErrSASL), false},
		{ErrUnsupportedAPI, false},
		{errors.New("something else"), false},
	} {
		if got := IsRetriable(tc.err); got != tc.want {
			t.Errorf("IsRetriable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestNewBackoff(t *testing.T) {
	b := NewBackoff(50*time.Millisecond, time.Second)
	prev := time.Duration(0)
	for i := range 20 {
		d := b.NextBackOff()
		if d == backoff.Stop {
			t.Fatalf("backoff gave up at attempt %d", i)
		}
		if d > time.Second*12/10 {
			t.Fatalf("attempt %d: %v beyond max+jitter", i, d)
		}
		if i == 0 && (d < 40*time.Millisecond || d > 60*time.Millisecond) {
			t.Fatalf("first backoff %v, want 50ms ±20%%", d)
		}
		if i == 5 && d <= prev/2 {
			t.Fatalf("backoff did not grow: %v after %v", d, prev)
		}
		prev = d
	}
	if prev < 800*time.Millisecond {
		t.Errorf("after 20 attempts backoff is %v, want about the 1s cap", prev)
	}
	b.Reset()
	if d := b.NextBackOff(); d > 60*time.Millisecond {
		t.Errorf("after Reset: %v, want about 50ms", d)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"ok", Config{SeedBrokers: []string{"a:9092"}}, nil},
		{"no seeds", Config{}, []string{"bootstrap.servers"}},
		{"negative", Config{SeedBrokers: []string{"a:1"}, RequestTimeout: -1, MetadataMaxAge: -1},
			[]string{"request.timeout.ms", "metadata.max.age.ms"}},
		{"sasl", Config{SeedBrokers: []string{"a:1"}, SASL: &SASL{Mechanism: "GSSAPI"}},
			[]string{"sasl.mechanism", "sasl.jaas.config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v does not name %s", err, w)
				}
			}
		})
	}
}

// TestAppendFrame checks that frames coalesced into one write buffer are
// byte for byte the frames AppendRequest builds alone, whether they land in
// the buffer's spare capacity, start an empty buffer, or make it grow.
func TestAppendFrame(t *testing.T) {
	c := &conn{fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("test"))}
	produce := func(n int) *promise {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		tp := kmsg.NewProduceRequestTopicPartition()
		tp.Records = bytes.Repeat([]byte{byte(n)}, n)
		tt := kmsg.NewProduceRequestTopic()
		tt.Topic, tt.Partitions = "t", []kmsg.ProduceRequestTopicPartition{tp}
		req.Topics = []kmsg.ProduceRequestTopic{tt}
		return &promise{req: req, corr: int32(n)}
	}
	for _, tc := range []struct {
		name  string
		cap   int   // of the buffer the writer starts from
		sizes []int // record bytes of each request, in write order
	}{
		{"one frame, empty buffer", 0, []int{100}},
		{"one frame in spare capacity", 1 << 12, []int{100}},
		{"frames in spare capacity", 1 << 12, []int{100, 200, 300}},
		{"second frame grows the buffer", 200, []int{100, 1000}},
		{"every frame grows the buffer", 0, []int{10, 1000, 10000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 0, tc.cap)
			var want []byte
			for _, n := range tc.sizes {
				p := produce(n)
				buf = c.appendFrame(buf, p)
				want = append(want, c.fmt.AppendRequest(nil, p.req, p.corr)...)
			}
			if !bytes.Equal(buf, want) {
				t.Fatalf("coalesced frames differ from frames built alone:\n got %x\nwant %x", buf, want)
			}
		})
	}
}

// TestAppendFrameSizesProduce checks that a produce request of several MiB
// of batches is encoded into a buffer allocated at its size, not one
// grown (and copied) step by step as its batches are appended, whatever the
// client id and transactional id, and with a frame already in the buffer.
func TestAppendFrameSizesProduce(t *testing.T) {
	txn := strings.Repeat("t", 300)
	for _, tc := range []struct {
		name     string
		clientID string
		txnID    *string
		before   int // record bytes of a frame already in the buffer
	}{
		{"empty buffer", "kafkit", nil, 0},
		{"long ids", strings.Repeat("c", 1000), &txn, 0},
		{"after another frame", "kafkit", nil, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(tc.clientID)), idLen: len(tc.clientID)}
			produce := func(topics, partitions, size int) *promise {
				req := kmsg.NewPtrProduceRequest()
				req.SetVersion(9)
				req.TransactionID = tc.txnID
				for i := range topics {
					tt := kmsg.NewProduceRequestTopic()
					tt.Topic = strings.Repeat("x", 200) + strconv.Itoa(i)
					for j := range partitions {
						tp := kmsg.NewProduceRequestTopicPartition()
						tp.Partition = int32(j)
						tp.Records = bytes.Repeat([]byte{byte(j)}, size)
						tt.Partitions = append(tt.Partitions, tp)
					}
					req.Topics = append(req.Topics, tt)
				}
				return &promise{req: req}
			}
			var first []byte
			if tc.before > 0 {
				first = c.appendFrame(nil, produce(1, 1, tc.before))
			}
			big := produce(3, 8, 200<<10)
			want := append(bytes.Clone(first), c.fmt.AppendRequest(nil, big.req, big.corr)...)
			// Bytes, up to twice the frame's: under the race detector
			// slices.Grow allocates its zeroed extension apart. Grown step
			// by step it was 4.5 times.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got := c.appendFrame(first[:len(first):len(first)], big)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(want))*9/4 {
				t.Errorf("encoding a %d-byte produce frame allocated %d bytes, want one buffer of its size", len(want)-len(first), alloc)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the frame differs from the one AppendRequest builds alone")
			}
		})
	}
}
