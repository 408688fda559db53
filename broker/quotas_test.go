package broker

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

func alterQuota(entity []kmsg.AlterClientQuotasRequestEntryEntity, key string, value float64, remove bool) *kmsg.AlterClientQuotasRequest {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.SetVersion(1)
	e := kmsg.NewAlterClientQuotasRequestEntry()
	e.Entity = entity
	e.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: key, Value: value, Remove: remove}}
	req.Entries = append(req.Entries, e)
	return req
}

// TestClientQuotasDurable: quotas set over the wire survive a restart,
// invalid ones are refused with Kafka's message, and changing or reading
// them needs ALTER_CONFIGS / DESCRIBE_CONFIGS on the cluster.
func TestClientQuotasDurable(t *testing.T) {
	dir := t.TempDir()
	start := func() *Broker {
		return NewTest(t, OnDisk(), WithConfig(func(c *Config) { c.DataDir = dir }), WithAuthorizer("User:admin"),
			WithTestPrincipal(func(id string) string { return "User:" + id }))
	}
	b := start()
	alice := []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "user", Name: kmsg.StringPtr("alice")}}
	defaultClient := []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id"}}
	for _, req := range []*kmsg.AlterClientQuotasRequest{
		alterQuota(alice, "producer_byte_rate", 1024, false),
		alterQuota(defaultClient, "consumer_byte_rate", 2048, false),
	} {
		if r := sendAs(t, b, "admin", req).(*kmsg.AlterClientQuotasResponse); r.Entries[0].ErrorCode != 0 {
			t.Fatalf("alter: %v %v", kerr.ErrorForCode(r.Entries[0].ErrorCode), r.Entries[0].ErrorMessage)
		}
	}
	bad := sendAs(t, b, "admin", alterQuota(alice, "producer_byte_rate", 1.5, false)).(*kmsg.AlterClientQuotasResponse)
	if e := bad.Entries[0]; e.ErrorCode != kerr.InvalidRequest.Code || *e.ErrorMessage != "producer_byte_rate cannot be a fractional value." {
		t.Errorf("fractional rate: %v %v", kerr.ErrorForCode(e.ErrorCode), e.ErrorMessage)
	}
	if r := sendAs(t, b, "alice", alterQuota(alice, "producer_byte_rate", 1, false)).(*kmsg.AlterClientQuotasResponse); r.Entries[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice altering quotas: %v", kerr.ErrorForCode(r.Entries[0].ErrorCode))
	}
	describe := kmsg.NewPtrDescribeClientQuotasRequest()
	describe.SetVersion(1)
	if r := sendAs(t, b, "alice", describe).(*kmsg.DescribeClientQuotasResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice describing quotas: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b = start()
	r := sendAs(t, b, "admin", describe).(*kmsg.DescribeClientQuotasResponse)
	if r.ErrorCode != 0 || len(r.Entries) != 2 {
		t.Fatalf("after a restart: %v, %+v", kerr.ErrorForCode(r.ErrorCode), r.Entries)
	}
	for _, e := range r.Entries {
		want := map[string]float64{"user": 1024, "client-id": 2048}[e.Entity[0].Type]
		if len(e.Values) != 1 || e.Values[0].Value != want {
			t.Errorf("%s: %+v", e.Entity[0].Type, e.Values)
		}
	}
}

// TestThrottledConnectionMuted is KIP-219 on the wire: a Produce over its
// producer_byte_rate is answered at once with its throttle time, and the
// connection reads nothing more until that time has passed.
func TestThrottledConnectionMuted(t *testing.T) {
	b := NewTest(t)
	client := []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: kmsg.StringPtr("slow")}}
	if r := sendAs(t, b, "admin", alterQuota(client, "producer_byte_rate", 32<<10, false)).(*kmsg.AlterClientQuotasResponse); r.Entries[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Entries[0].ErrorCode))
	}
	roundTrip := wireConn(t, b, "slow")
	// 384 KiB: 38 KiB/s over the first 10 s, about 2 s of throttle.
	pr, _ := roundTrip(produceRequest(t, "muted", 384<<10))
	throttle := time.Duration(pr.(*kmsg.ProduceResponse).ThrottleMillis) * time.Millisecond
	if throttle <= 0 {
		t.Fatalf("384 KiB against 32 KiB/s: no throttle time")
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "test", "1"
	if _, took := roundTrip(av); took < throttle*9/10 {
		t.Errorf("the next request was answered after %v, inside the %v throttle", took, throttle)
	}
}

// TestConnectionCreationRate: over its ip's connection_creation_rate a new
// connection is not served and is closed after the throttle time.
func TestConnectionCreationRate(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.QuotaWindowNum = 2 }))
	ip := []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "ip", Name: kmsg.StringPtr("127.0.0.1")}}
	if r := sendAs(t, b, "admin", alterQuota(ip, "connection_creation_rate", 5, false)).(*kmsg.AlterClientQuotasResponse); r.Entries[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Entries[0].ErrorCode))
	}
	var served []bool
	for range 8 {
		nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		av := kmsg.NewPtrApiVersionsRequest()
		if _, err := nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, av, 1)); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		_, err = io.ReadFull(nc, size[:])
		served = append(served, err == nil)
		nc.Close()
	}
	// 5/s, measured over at least one 1 s window: the first five quick
	// connections are served, the sixth is not.
	if !slices.Equal(served[:6], []bool{true, true, true, true, true, false}) {
		t.Errorf("served %v at 5 connections/s", served)
	}
}

// wireConn dials b and returns a function that sends a request with
// clientID and returns its response and how long it took.
func wireConn(t *testing.T, b *Broker, clientID string) func(kmsg.Request) (kmsg.Response, time.Duration) {
	nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	return func(req kmsg.Request) (kmsg.Response, time.Duration) {
		start := time.Now()
		if _, err := nc.Write(f.AppendRequest(nil, req, 1)); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(nc, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(nc, body); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		resp := req.ResponseKind()
		body = body[4:]
		if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
			body = body[1:]
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		return resp, took
	}
}

// produceRequest is a v9 acks=1 Produce of one record of size bytes.
func produceRequest(t *testing.T, topic string, size int) *kmsg.ProduceRequest {
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	produce.Acks, produce.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	bl.Append(time.Now().UnixMilli(), nil, make([]byte, size), nil)
	var err error
	if rp.Records, err = bl.Finish(recordbatch.NoProducer()); err != nil {
		t.Fatal(err)
	}
	rt.Partitions = append(rt.Partitions, rp)
	produce.Topics = append(produce.Topics, rt)
	return produce
}

// TestConsumerByteRateQuota: a consumer's Fetch is capped to what its
// consumer_byte_rate lets through over the quota windows, and a Fetch over
// the quota is answered empty with its throttle time, as Kafka's.
func TestConsumerByteRateQuota(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.QuotaWindowNum = 2 }))
	client := []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: kmsg.StringPtr("reader")}}
	if r := sendAs(t, b, "admin", alterQuota(client, "consumer_byte_rate", 64<<10, false)).(*kmsg.AlterClientQuotasResponse); r.Entries[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Entries[0].ErrorCode))
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.SetVersion(4)
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "limited", 1, 1
	create.Topics = append(create.Topics, ct)
	if r := sendAs(t, b, "admin", create).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	produce := wireConn(t, b, "writer")
	for range 8 {
		if pr, _ := produce(produceRequest(t, "limited", 16<<10)); pr.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(pr.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode))
		}
	}
	fetch := func(offset int64) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.MaxBytes, req.MaxWaitMillis = 50<<20, 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "limited"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, 50<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	read := wireConn(t, b, "reader")
	first, _ := read(fetch(0))
	fr := first.(*kmsg.FetchResponse)
	if fr.ThrottleMillis != 0 || len(fr.Topics) != 1 {
		t.Fatalf("first fetch: throttle %d, %d topics", fr.ThrottleMillis, len(fr.Topics))
	}
	// 64 KiB/s over one window of 1 s: 64 KiB, here four 16 KiB batches
	// and their overhead, less than the eight stored.
	if n := len(fr.Topics[0].Partitions[0].RecordBatches); n == 0 || n > 64<<10+16<<10 {
		t.Errorf("first fetch returned %d bytes, want at most what the quota allows", n)
	}
	second, _ := read(fetch(3))
	fr = second.(*kmsg.FetchResponse)
	if fr.ThrottleMillis <= 0 || len(fr.Topics) != 0 {
		t.Errorf("second fetch over the quota: throttle %d, %d topics; want a throttle and an empty answer", fr.ThrottleMillis, len(fr.Topics))
	}
}
