package interceptors_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/producer"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
)

// TestThroughProducer runs the three interceptors inside a real Producer
// against kfake and reads the records back with kgo: the trace context
// arrives in the headers and points at the producer spans, which carry the
// partition and offset the producer reported.
func TestThroughProducer(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)

	tp, exp := newTracerProvider(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	metrics, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p, err := producer.New(producer.Config{
		BootstrapServers: c.ListenAddrs(),
		Interceptors: []producer.Interceptor{
			interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp}),
			metrics,
			interceptors.NewLogging(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })

	const n = 4
	for i := range n {
		r := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Key: []byte{'k', byte('0' + i)}, Value: []byte("v")}
		if err := p.SendSync(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}

	spans := map[trace.SpanID]map[string]string{} // producer span → partition, offset attributes
	for _, s := range exp.GetSpans() {
		a := attrMap(s.Attributes)
		spans[s.SpanContext.SpanID()] = map[string]string{
			"partition": a["messaging.destination.partition.id"].String(),
			"offset":    a["messaging.kafka.offset"].String(),
		}
	}
	if len(spans) != n {
		t.Fatalf("%d spans, want %d", len(spans), n)
	}
	for _, g := range got {
		hs := make([]kafkit.Header, len(g.Headers))
		for i, h := range g.Headers {
			hs[i] = kafkit.Header{Key: h.Key, Value: h.Value}
		}
		sc := trace.SpanContextFromContext(interceptors.ExtractContext(context.Background(), hs))
		a, ok := spans[sc.SpanID()]
		if !ok {
			t.Errorf("record %s/%d/%d: trace context %v names no producer span", g.Key, g.Partition, g.Offset, sc)
			continue
		}
		if want := (map[string]string{"partition": strconv.Itoa(int(g.Partition)), "offset": strconv.FormatInt(g.Offset, 10)}); a["partition"] != want["partition"] || a["offset"] != want["offset"] {
			t.Errorf("record %s: span says %v, broker says %v", g.Key, a, want)
		}
	}

	sent := sumBy(t, collect(t, reader)["messaging.client.sent.messages"], "messaging.destination.name")
	if sent["t"] != n {
		t.Errorf("sent messages = %v, want t:%d", sent, n)
	}
	if acks := bytes.Count(logs.Bytes(), []byte(`"msg":"record acknowledged"`)); acks != n {
		t.Errorf("%d acknowledgements logged, want %d:\n%s", acks, n, logs.String())
	}
}
