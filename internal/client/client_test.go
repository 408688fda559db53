package client

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newClient(t testing.TB, c *kfake.Cluster, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{SeedBrokers: c.ListenAddrs()}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMetadata(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "orders"), kfake.ClusterID("kc1"))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)

	md, err := cl.Metadata(ctx, "orders", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("brokers = %v, want 3", md.Brokers)
	}
	if md.ClusterID != "kc1" {
		t.Errorf("cluster id = %q", md.ClusterID)
	}
	if _, ok := md.Brokers[md.ControllerID]; !ok {
		t.Errorf("controller %d not among brokers", md.ControllerID)
	}
	orders := md.Topics["orders"]
	if orders.Err != nil || len(orders.Partitions) != 4 || orders.ID == [16]byte{} {
		t.Fatalf("orders = %+v", orders)
	}
	for i, p := range orders.Partitions {
		if p.ID != int32(i) || p.Leader != c.LeaderFor("orders", p.ID) || p.LeaderEpoch < 0 {
			t.Errorf("partition %d = %+v, kfake leader %d", i, p, c.LeaderFor("orders", p.ID))
		}
	}
	if err := md.Topics["missing"].Err; !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("missing topic err = %v", err)
	}

	all, err := cl.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all.Topics["orders"]; !ok || len(all.Topics) != 1 {
		t.Errorf("all topics = %v", all.Topics)
	}
}

// countKey counts the requests of one API key the cluster receives.
func countKey(c *kfake.Cluster, key kmsg.Key) *atomic.Int32 {
	var n atomic.Int32
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

func TestMetadataCachedAndCollapsed(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "a", "b"))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	n := countKey(c, kmsg.Metadata)

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := cl.Metadata(ctx, "a"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Errorf("50 concurrent Metadata calls sent %d requests, want 1", got)
	}
	if _, err := cl.Metadata(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("cached Metadata call sent a request (total %d)", got)
	}
	cl.InvalidateMetadata("a")
	if _, err := cl.Metadata(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got < 2 {
		t.Errorf("Metadata after InvalidateMetadata sent no request")
	}
}

func TestMetadataFollowsLeaderMove(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "moving"))
	cl := newClient(t, c, func(cfg *Config) { cfg.MetadataMaxAge = 50 * time.Millisecond })
	ctx := testCtx(t)

	md, err := cl.Metadata(ctx, "moving")
	if err != nil {
		t.Fatal(err)
	}
	old := md.Topics["moving"].Partitions[0]
	target := (old.Leader + 1) % 3
	if err := c.MoveTopicPartition("moving", 0, target); err != nil {
		t.Fatal(err)
	}

	// On demand, after an invalidation.
	cl.InvalidateMetadata("moving")
	md, err = cl.Metadata(ctx, "moving")
	if err != nil {
		t.Fatal(err)
	}
	if p := md.Topics["moving"].Partitions[0]; p.Leader != target || p.LeaderEpoch <= old.LeaderEpoch {
		t.Fatalf("after move: %+v, want leader %d with epoch > %d", p, target, old.LeaderEpoch)
	}

	// On the metadata.max.age.ms tick, with nobody invalidating.
	back := old.Leader
	if err := c.MoveTopicPartition("moving", 0, back); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		cl.meta.mu.Lock()
		leader := cl.meta.topics["moving"].meta.Partitions[0].Leader
		cl.meta.mu.Unlock()
		if leader == back {
			break
		}
		if i == 200 {
			t.Fatalf("periodic refresh never saw leader %d (have %d)", back, leader)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBootstrapSkipsDeadSeeds(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	seeds := append([]string{"127.0.0.1:1", "127.0.0.1:2"}, c.ListenAddrs()...)
	cl := newClient(t, c, func(cfg *Config) { cfg.SeedBrokers = seeds })
	if _, err := cl.Request(testCtx(t), kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatal(err)
	}

	_, err := New(testCtx(t), Config{SeedBrokers: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if !errors.Is(err, ErrNoBrokers) || !IsRetriable(err) {
		t.Fatalf("New with only dead seeds: %v, want retriable ErrNoBrokers", err)
	}
}

func TestPipelining(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "p"))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	const n = 500

	// Async requests complete in the order they were queued, on one connection.
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	wg.Add(n)
	for i := range n {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("p")}}
		cl.RequestBrokerAsync(ctx, 0, req, func(resp kmsg.Response, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
				return
			}
			if len(resp.(*kmsg.MetadataResponse).Topics) != 1 {
				t.Errorf("response %d: %+v", i, resp)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("response %d completed request %d: out of order", i, got)
		}
	}

	// Concurrent sync requests share the connection too.
	var errs atomic.Int32
	for range n {
		wg.Go(func() {
			if _, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrApiVersionsRequest()); err != nil {
				errs.Add(1)
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b, _ := cl.broker(ctx, 0)
	s := &b.lanes[laneDefault]
	s.mu.Lock()
	first := s.cur
	s.mu.Unlock()
	cl.goMu.Lock()
	conns := 0
	for c := range cl.conns {
		if c.brokerID == 0 {
			conns++
		}
	}
	cl.goMu.Unlock()
	if first == nil || conns != 1 {
		t.Errorf("broker 0 has %d connections, want 1 pipelined connection", conns)
	}
}

func TestReconnectAfterDrop(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "r"))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	if _, err := cl.RequestBroker(ctx, 1, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatal(err)
	}
	// The broker drops the connection instead of answering.
	c.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, errors.New("drop"), true
	})
	_, err := cl.RequestBroker(ctx, 1, kmsg.NewPtrApiVersionsRequest())
	if !errors.Is(err, ErrConnectionClosed) || !IsRetriable(err) {
		t.Fatalf("dropped request: %v, want retriable ErrConnectionClosed", err)
	}
	if _, err := cl.RequestBroker(ctx, 1, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

func TestReconnectBackoff(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	cl := newClient(t, c, func(cfg *Config) {
		cfg.ReconnectBackoff = time.Hour // a failed dial must not be retried early
		cfg.ReconnectBackoffMax = time.Hour
	})
	b := cl.newBroker(42, "127.0.0.1:1")
	ctx := testCtx(t)
	if _, err := b.acquire(ctx, laneDefault, false); !errors.Is(err, ErrDial) {
		t.Fatalf("dial to closed port: %v", err)
	}
	if _, err := b.acquire(ctx, laneDefault, true); !errors.Is(err, errBackingOff) {
		t.Fatalf("second dial inside backoff: %v, want errBackingOff", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(short, laneDefault, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting dial inside backoff: %v, want the ctx deadline", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	cl := newClient(t, c, func(cfg *Config) { cfg.RequestTimeout = 200 * time.Millisecond })
	ctx := testCtx(t)
	// Handled with neither response nor error: kfake never answers.
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, nil, true
	})
	_, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrDescribeConfigsRequest())
	if !errors.Is(err, ErrRequestTimeout) || !IsRetriable(err) {
		t.Fatalf("unanswered request: %v, want retriable ErrRequestTimeout", err)
	}
	if _, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatalf("after a timeout: %v", err)
	}
}

func TestContextCancelDoesNotKillConnection(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := cl.RequestBroker(short, 0, kmsg.NewPtrDescribeConfigsRequest()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the caller's deadline", err)
	}
	close(release)
	if _, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatal(err)
	}
}

func TestVersionNegotiation(t *testing.T) {
	// Kafka 2.3 serves ApiVersions up to v2 and Metadata up to v8: the client
	// must fall back from its ApiVersions v5 and cap every request.
	c := newCluster(t, kfake.NumBrokers(1), kfake.MaxVersions(kversion.V2_3_0()), kfake.SeedTopics(1, "v"))
	var apiVersions, metadata []int16
	var mu sync.Mutex
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		switch req.Key() {
		case int16(kmsg.ApiVersions):
			apiVersions = append(apiVersions, req.GetVersion())
		case int16(kmsg.Metadata):
			metadata = append(metadata, req.GetVersion())
		}
		return nil, nil, false
	})
	cl := newClient(t, c, nil)
	md, err := cl.Metadata(testCtx(t), "v")
	if err != nil {
		t.Fatal(err)
	}
	if md.Topics["v"].Err != nil || md.Topics["v"].ID != [16]byte{} {
		t.Errorf("topic via Metadata v8: %+v (no topic ids before v10)", md.Topics["v"])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(apiVersions) < 2 || apiVersions[0] != kmsg.NewPtrApiVersionsRequest().MaxVersion() || apiVersions[1] != 2 {
		t.Errorf("ApiVersions versions sent = %v, want [max, 2, ...]", apiVersions)
	}
	for _, v := range metadata {
		if v != 8 {
			t.Errorf("Metadata sent at v%d, want v8", v)
		}
	}
}

func TestUnsupportedAPI(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.MaxVersions(kversion.V0_10_0()))
	cl := newClient(t, c, nil)
	_, err := cl.RequestBroker(testCtx(t), 0, kmsg.NewPtrCreateTopicsRequest())
	if !errors.Is(err, ErrUnsupportedAPI) || IsRetriable(err) {
		t.Fatalf("CreateTopics against Kafka 0.10.0: %v, want ErrUnsupportedAPI", err)
	}
}

// A broker listing Produce only up to v2 (message sets v0/v1, Kafka 0.10)
// from v0, as Kafka 4.0 lists it (KAFKA-18659): the client refuses rather
// than send record batch v2 in a request that cannot carry it, as Kafka
// 4.0's clients do.
func TestProduceNeedsV3(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.MaxVersions(kversion.V0_10_0()), kfake.SeedTopics(1, "p"))
	var sent []int16
	var mu sync.Mutex
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		switch req.Key() {
		case int16(kmsg.ApiVersions):
			// kfake lists only the versions it serves (Produce v3+,
			// none here); answer as Kafka 0.10.0 did.
			resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
			kversion.V0_10_0().EachMaxKeyVersion(func(k, v int16) {
				resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MaxVersion: v})
			})
			return resp, nil, true
		case int16(kmsg.Produce):
			mu.Lock()
			sent = append(sent, req.GetVersion())
			mu.Unlock()
		}
		return nil, nil, false
	})
	cl := newClient(t, c, nil)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 1000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "p", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}}}
	_, err := cl.RequestBroker(testCtx(t), 0, req)
	if !errors.Is(err, ErrUnsupportedAPI) || IsRetriable(err) {
		t.Fatalf("Produce to a broker serving v0-2: %v, want ErrUnsupportedAPI", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 0 {
		t.Fatalf("Produce sent at versions %v", sent)
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "alice", "s3cret"), kfake.SeedTopics(1, "s"))
			cl := newClient(t, c, func(cfg *Config) { cfg.SASL = &SASL{Mechanism: mech, User: "alice", Password: "s3cret"} })
			md, err := cl.Metadata(testCtx(t), "s")
			if err != nil || md.Topics["s"].Err != nil {
				t.Fatalf("authenticated metadata: %v %+v", err, md)
			}

			_, err = New(testCtx(t), Config{SeedBrokers: c.ListenAddrs(), SASL: &SASL{Mechanism: mech, User: "alice", Password: "wrong"}})
			if !errors.Is(err, ErrSASL) || IsRetriable(err) {
				t.Fatalf("wrong password: %v, want non-retriable ErrSASL", err)
			}
		})
	}
}

// produceBatch returns a v2 record batch holding one record, built with kmsg
// and CRC32-C as the format requires.
func produceBatch(value string) []byte {
	rec := kmsg.Record{Value: []byte(value), OffsetDelta: 0}
	recBytes := rec.AppendTo(nil)
	batch := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: recBytes, FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
	}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// produceRequest names the topic by name and id, since Produce v13 uses ids.
func produceRequest(t *testing.T, cl *Client, topic string, acks int16, value string) *kmsg.ProduceRequest {
	md, err := cl.Metadata(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = md.Topics[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = produceBatch(value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestProduceAcksZero(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "z"))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	for i := range 3 {
		resp, err := cl.RequestBroker(ctx, 0, produceRequest(t, cl, "z", 0, "fire-and-forget"))
		if err != nil || resp != nil {
			t.Fatalf("acks=0 produce %d: %v %v, want no response and no error", i, resp, err)
		}
	}
	// The next acknowledged produce on the same connection must be matched to
	// its own response (acks=0 requests consumed correlation ids but got none).
	resp, err := cl.RequestBroker(ctx, 0, produceRequest(t, cl, "z", -1, "acked"))
	if err != nil {
		t.Fatal(err)
	}
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("acks=all produce after three acks=0: code %d offset %d, want offset 3", p.ErrorCode, p.BaseOffset)
	}
}

func TestFindCoordinator(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	for _, g := range []string{"g1", "g2", "g3"} {
		id, err := cl.FindCoordinator(ctx, 0, g)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.CoordinatorFor(g); id != want {
			t.Errorf("coordinator of %s = %d, want %d", g, id, want)
		}
		if _, err := cl.RequestBroker(ctx, id, kmsg.NewPtrApiVersionsRequest()); err != nil {
			t.Errorf("coordinator %d unreachable: %v", id, err)
		}
	}
	// COORDINATOR_NOT_AVAILABLE is retried.
	c.ControlKey(int16(kmsg.FindCoordinator), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.FindCoordinatorRequest)
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		for _, k := range r.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, kmsg.FindCoordinatorResponseCoordinator{Key: k, ErrorCode: kerr.CoordinatorNotAvailable.Code})
		}
		return resp, nil, true
	})
	if _, err := cl.FindCoordinator(ctx, 0, "g4"); err != nil {
		t.Fatalf("after one COORDINATOR_NOT_AVAILABLE: %v", err)
	}
}

func TestCloseLeaksNothing(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "l"))
	before := runtime.NumGoroutine()
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	for id := range int32(3) {
		if _, err := cl.RequestBroker(ctx, id, produceRequest(t, cl, "l", 1, "x")); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.RequestBroker(ctx, id, kmsg.NewPtrApiVersionsRequest()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Metadata(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrApiVersionsRequest()); !errors.Is(err, ErrClosed) {
		t.Errorf("request after Close: %v, want ErrClosed", err)
	}
	if _, err := cl.Metadata(ctx, "other"); !errors.Is(err, ErrClosed) {
		t.Errorf("metadata after Close: %v, want ErrClosed", err)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before New, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClosePendingRequests(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	cl := newClient(t, c, nil)
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, nil, true // never answered
	})
	done := make(chan error, 1)
	cl.RequestBrokerAsync(testCtx(t), 0, kmsg.NewPtrDescribeConfigsRequest(), func(_ kmsg.Response, err error) { done <- err })
	cl.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending request at Close: %v, want ErrClosed", err)
	}
}

func BenchmarkPipelinedRoundTrip(b *testing.B) {
	c := newCluster(b, kfake.NumBrokers(1))
	cl := newClient(b, c, nil)
	ctx := context.Background()
	const window = 64 // requests in flight at once
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		sem <- struct{}{}
		wg.Add(1)
		cl.RequestBrokerAsync(ctx, 0, kmsg.NewPtrApiVersionsRequest(), func(_ kmsg.Response, err error) {
			if err != nil {
				b.Error(err)
			}
			<-sem
			wg.Done()
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func TestThrottle(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	const throttle = 300 * time.Millisecond
	var (
		mu       sync.Mutex
		answered time.Time
		next     time.Time
	)
	c.ControlKey(int16(kmsg.DescribeConfigs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		resp.ThrottleMillis = int32(throttle.Milliseconds())
		mu.Lock()
		answered = time.Now()
		mu.Unlock()
		return resp, nil, true
	})
	if _, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrDescribeConfigsRequest()); err != nil {
		t.Fatal(err)
	}
	c.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		next = time.Now()
		mu.Unlock()
		return nil, nil, false
	})
	if _, err := cl.RequestBroker(ctx, 0, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gap := next.Sub(answered); gap < throttle*9/10 {
		t.Fatalf("next request reached the broker %v after a %v throttle", gap, throttle)
	}
}
