package interceptors_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/producer"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

var (
	_ consumer.Interceptor = (*interceptors.Tracing)(nil)
	_ consumer.Interceptor = (*interceptors.Metrics)(nil)
	_ consumer.Interceptor = (*interceptors.Logging)(nil)
)

// sent returns records as a producer with tr would have sent them, with the
// producer span context of each.
func sent(t *testing.T, tr *interceptors.Tracing, n int) ([]*kafkit.Record, []trace.SpanContext) {
	t.Helper()
	var recs []*kafkit.Record
	var scs []trace.SpanContext
	for i := range n {
		r := &kafkit.Record{Topic: "orders", Partition: 1, Key: []byte("k"), Value: []byte("value")}
		ctx := tr.OnSend(context.Background(), r)
		r.Offset = int64(10 + i)
		tr.OnAck(ctx, r, nil)
		recs = append(recs, r)
		scs = append(scs, trace.SpanContextFromContext(ctx))
	}
	return recs, scs
}

func TestTracingConsumerSpansContinueProducerTrace(t *testing.T) {
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	recs, scs := sent(t, tr, 3)
	exp.Reset()

	tr.OnConsume(context.Background(), recs)
	spans := exp.GetSpans()
	if len(spans) != len(recs) {
		t.Fatalf("%d receive spans, want %d", len(spans), len(recs))
	}
	for i, s := range spans {
		if s.Name != "receive orders" || s.SpanKind != trace.SpanKindConsumer {
			t.Errorf("span %d: %q kind %v", i, s.Name, s.SpanKind)
		}
		if s.SpanContext.TraceID() != scs[i].TraceID() || s.Parent.SpanID() != scs[i].SpanID() {
			t.Errorf("span %d: trace %v parent %v, want child of producer span %v/%v", i, s.SpanContext.TraceID(), s.Parent.SpanID(), scs[i].TraceID(), scs[i].SpanID())
		}
		a := attrMap(s.Attributes)
		if a["messaging.operation.type"].AsString() != "receive" || a["messaging.kafka.offset"].AsInt64() != int64(10+i) ||
			a["messaging.destination.partition.id"].AsString() != "1" || a["messaging.kafka.message.key"].AsString() != "k" {
			t.Errorf("span %d attributes %v", i, s.Attributes)
		}
	}

	// Processing one record: a child of its producer span.
	exp.Reset()
	ctx, span := tr.StartProcess(context.Background(), recs[:1])
	if got := trace.SpanContextFromContext(ctx).TraceID(); got != scs[0].TraceID() {
		t.Errorf("handler ctx trace %v, want the producer's %v", got, scs[0].TraceID())
	}
	interceptors.EndProcess(span, errors.New("boom"))
	// A batch: links to every producer span.
	_, span = tr.StartProcess(context.Background(), recs)
	interceptors.EndProcess(span, nil)
	spans = exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d process spans, want 2", len(spans))
	}
	if spans[0].Parent.SpanID() != scs[0].SpanID() || spans[0].Status.Description != "boom" {
		t.Errorf("single process span parent %v status %v", spans[0].Parent.SpanID(), spans[0].Status)
	}
	if len(spans[1].Links) != len(recs) {
		t.Fatalf("batch span has %d links, want %d", len(spans[1].Links), len(recs))
	}
	for i, l := range spans[1].Links {
		if l.SpanContext.SpanID() != scs[i].SpanID() {
			t.Errorf("link %d to %v, want %v", i, l.SpanContext.SpanID(), scs[i].SpanID())
		}
	}
	if n := attrMap(spans[1].Attributes)["messaging.batch.message_count"].AsInt64(); n != int64(len(recs)) {
		t.Errorf("batch count %d", n)
	}
}

func TestTracingConsumeWithoutTraceContext(t *testing.T) {
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	tr.OnConsume(context.Background(), []*kafkit.Record{{Topic: "t", Value: nil}})
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Parent.IsValid() {
		t.Fatalf("spans %v: want one root span", spans)
	}
	if !attrMap(spans[0].Attributes)["messaging.kafka.message.tombstone"].AsBool() {
		t.Error("tombstone not marked")
	}
}

func TestMetricsConsumer(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	m.OnConsume(context.Background(), []*kafkit.Record{
		{Topic: "a", Partition: 0, Key: []byte("kk"), Value: []byte("vvv")},
		{Topic: "a", Partition: 1, Value: []byte("v"), Headers: []kafkit.Header{{Key: "h", Value: []byte("x")}}},
		{Topic: "a", Partition: 1, Value: []byte("vv")},
	})
	m.OnCommit(context.Background(), map[kafkit.TopicPartition]int64{{Topic: "a"}: 1}, nil)
	m.OnCommit(context.Background(), map[kafkit.TopicPartition]int64{{Topic: "a"}: 1}, kerr.RebalanceInProgress)
	lagErr := error(nil)
	reg, err := m.ObserveLag(func(context.Context) (map[kafkit.TopicPartition]int64, error) {
		return map[kafkit.TopicPartition]int64{{Topic: "a", Partition: 0}: 7, {Topic: "a", Partition: 1}: 0}, lagErr
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Unregister() }()

	got := collect(t, reader)
	part := attribute.Key("messaging.destination.partition.id")
	if c := sumBy(t, got["messaging.client.consumed.messages"], part); c["0"] != 1 || c["1"] != 2 {
		t.Errorf("consumed %v", c)
	}
	if b := sumBy(t, got["kafkit.consumer.consumed.bytes"], part); b["0"] != 5 || b["1"] != 5 {
		t.Errorf("bytes %v", b)
	}
	if c := sumBy(t, got["kafkit.consumer.commits"], "error.type"); c[""] != 1 || c[kerr.RebalanceInProgress.Message] != 1 {
		t.Errorf("commits %v", c)
	}
	if c := sumBy(t, got["kafkit.consumer.commit.errors"], "error.type"); len(c) != 1 || c[kerr.RebalanceInProgress.Message] != 1 {
		t.Errorf("commit errors %v", c)
	}
	gauge, ok := got["kafkit.consumer.lag"].(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("lag %T", got["kafkit.consumer.lag"])
	}
	lags := map[string]int64{}
	for _, dp := range gauge.DataPoints {
		v, _ := dp.Attributes.Value(part)
		lags[v.AsString()] = dp.Value
	}
	if lags["0"] != 7 || lags["1"] != 0 || len(lags) != 2 {
		t.Errorf("lag %v", lags)
	}
}

func TestLoggingConsumer(t *testing.T) {
	var buf bytes.Buffer
	l := interceptors.NewLogging(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.OnConsume(context.Background(), []*kafkit.Record{{Topic: "t", Value: []byte("secret")}})
	l.OnCommit(context.Background(), map[kafkit.TopicPartition]int64{{Topic: "t", Partition: 3}: 42}, nil)
	l.OnCommit(context.Background(), map[kafkit.TopicPartition]int64{{Topic: "t", Partition: 3}: 42}, kerr.IllegalGeneration)
	lines := logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("lines %v: want only the failed commit at info level", lines)
	}
	want := map[string]any{"level": "ERROR", "msg": "offset commit failed", "topic": "t", "partition": 3.0, "offset": 42.0, "error": kerr.IllegalGeneration.Error()}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("%s = %v, want %v", k, lines[0][k], v)
		}
	}

	buf.Reset()
	l = interceptors.NewLogging(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.OnConsume(context.Background(), []*kafkit.Record{{Topic: "t", Partition: 1, Offset: 5, Value: []byte("secret")}, {Topic: "t", Partition: 1, Offset: 6}})
	lines = logLines(t, &buf)
	if len(lines) != 1 || lines[0]["count"] != 2.0 || lines[0]["offset"] != 5.0 || bytes.Contains(buf.Bytes(), []byte("secret")) {
		t.Errorf("debug lines %v", lines)
	}
}

// TestThroughConsumer: records produced with Tracing through a Producer and
// read back by a Consumer with Tracing as its interceptor get receive spans
// in the producer's traces, and Metrics counts them.
func TestThroughConsumer(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	p, err := producer.New(producer.Config{BootstrapServers: c.ListenAddrs(), Interceptors: []producer.Interceptor{tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	const n = 3
	for range n {
		if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	sendSpans := map[trace.SpanID]trace.TraceID{}
	for _, s := range exp.GetSpans() {
		sendSpans[s.SpanContext.SpanID()] = s.SpanContext.TraceID()
	}
	exp.Reset()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := consumer.New(ctx, consumer.Config{BootstrapServers: c.ListenAddrs(), AutoOffsetReset: consumer.OffsetResetEarliest,
		Interceptors: []consumer.Interceptor{tr, m}})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	if err := cons.Assign(kafkit.TopicPartition{Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(recs)
	}
	spans := exp.GetSpans()
	if len(spans) != n {
		t.Fatalf("%d receive spans, want %d", len(spans), n)
	}
	for _, s := range spans {
		if tid, ok := sendSpans[s.Parent.SpanID()]; !ok || tid != s.SpanContext.TraceID() {
			t.Errorf("receive span %s: parent %v trace %v is not a send span", s.Name, s.Parent.SpanID(), s.SpanContext.TraceID())
		}
	}
	if got := sumBy(t, collect(t, reader)["messaging.client.consumed.messages"], "messaging.destination.name"); got["t"] != n {
		t.Errorf("consumed %v", got)
	}
}
