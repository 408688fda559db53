package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the wire protocol by hand-framed kmsg requests, so tests
// can also send what no client would.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

func dial(t *testing.T, b *Broker) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, c.corr)
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatal(err)
	}
	return c.corr
}

// read returns the next response's body after checking its correlation id.
func (c *rawConn) read(corr int32, flexHeader bool) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	buf = buf[4:]
	if flexHeader {
		buf = buf[1:] // empty header tags
	}
	return buf, nil
}

func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	corr := c.send(req)
	body, err := c.read(corr, req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions))
	if err != nil {
		c.t.Fatal(err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// expectClosed checks the broker closed the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

func TestApiVersionsAdvertisesHandlers(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
	resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for key, h := range b.handlers {
		if h == nil {
			continue
		}
		want := [2]int16{h.min, h.max}
		if key == int(kmsg.Produce) {
			want[0] = produceAPIVersionsMin // TestApiVersionsListsProduceFromV0
		}
		if got[int16(key)] != want {
			t.Errorf("%s: advertised %v, want %v", kmsg.NameForKey(int16(key)), got[int16(key)], want)
		}
	}
	if len(got) != len(b.apiKeys()) {
		t.Errorf("advertised %d keys, %d handlers", len(got), len(b.apiKeys()))
	}
}

func TestUnsupportedVersions(t *testing.T) {
	b := NewTest(t)
	// ApiVersions newer than ours: a v0 answer with UNSUPPORTED_VERSION and
	// our ranges (KIP-511), on an open connection.
	c := dial(t, b)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(apiVersionsVersions.max + 1)
	corr := c.send(req)
	body, err := c.read(corr, false)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("v0 fallback: err %v code %d keys %d", err, resp.ErrorCode, len(resp.ApiKeys))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(1)
	if r := c.roundTrip(md).(*kmsg.MetadataResponse); len(r.Brokers) != 1 {
		t.Fatalf("connection unusable after the fallback: %+v", r)
	}

	// Any other API at an unsupported version, or an unknown key: closed.
	c = dial(t, b)
	prod := kmsg.NewPtrProduceRequest()
	prod.SetVersion(2) // message sets v0/v1 are not supported
	c.send(prod)
	c.expectClosed()

	c = dial(t, b)
	frame := []byte{0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 1, 0, 0, 0} // key 32512
	c.nc.Write(frame)
	c.expectClosed()
}

func TestOversizedAndMalformedFramesCloseOnlyThatConnection(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.SocketRequestMaxBytes = 1024 }))
	big := dial(t, b)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30) // claims 1 GiB: must not be allocated
	big.nc.Write(hdr[:])
	big.expectClosed()

	neg := dial(t, b)
	binary.BigEndian.PutUint32(hdr[:], 0xffffffff)
	neg.nc.Write(hdr[:])
	neg.expectClosed()

	garbage := dial(t, b)
	garbage.nc.Write([]byte{0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}) // Metadata v9 with a forged body
	garbage.expectClosed()

	// ApiVersions v3 whose tag section claims 2^32-1 tags: decoding it
	// as kmsg does would spin for tens of seconds before failing.
	tags := dial(t, b)
	tags.nc.Write([]byte{0, 0, 0, 20, 0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0, 2, 'a', 2, 'b', 0xff, 0xff, 0xff, 0xff, 0x0f})
	start := time.Now()
	tags.expectClosed()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("forged tag count: connection closed after %v", d)
	}

	// The broker still serves everyone else.
	ok := dial(t, b)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	if r := ok.roundTrip(md).(*kmsg.MetadataResponse); len(r.Brokers) != 1 {
		t.Fatalf("metadata after bad frames: %+v", r)
	}
}

func TestIdleConnectionsAreReaped(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.ConnectionsMaxIdleMs = 100 }))
	c := dial(t, b)
	c.expectClosed()
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	var corrs []int32
	for i := 0; i < 200; i++ {
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(int16(i % 13))
		corrs = append(corrs, c.send(md))
	}
	for i, corr := range corrs {
		if _, err := c.read(corr, i%13 >= 9); err != nil { // read checks the order
			t.Fatal(err)
		}
	}
}

func TestThousandsOfConnections(t *testing.T) {
	b := NewTest(t)
	n := 2000
	// Each connection costs two descriptors here (client and broker side).
	if limit, ok := openFileLimit(); ok && limit < uint64(2*n+256) {
		if limit < 1024 {
			t.Skipf("RLIMIT_NOFILE is %d: too low to hold many connections", limit)
		}
		n = int(limit-256) / 2
	}
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, b)
	}
	for _, c := range conns {
		req := kmsg.NewPtrApiVersionsRequest()
		c.send(req)
	}
	for _, c := range conns {
		if _, err := c.read(c.corr, false); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCloseAnswersLongPolls(t *testing.T) {
	b := NewTest(t)
	if _, err := b.topics.create(createSpec{name: "t", partitions: 1, replicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, b)
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(11)
	f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 60_000, 1, 1<<20
	f.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
	corr := c.send(f)
	time.Sleep(50 * time.Millisecond) // let the fetch start waiting
	done := make(chan error, 1)
	go func() { done <- b.Close(context.Background()) }()
	body, err := c.read(corr, false)
	if err != nil {
		t.Fatalf("the in-flight fetch got no answer before the close: %v", err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(11)
	if err := resp.ReadFrom(body); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("fetch answer: %v %+v", err, resp)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkNewTest measures how long an embedded test broker takes to be
// ready (the bar: well under 100 ms).
func BenchmarkNewTest(b *testing.B) {
	for b.Loop() {
		NewTest(b)
	}
}
