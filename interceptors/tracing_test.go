package interceptors_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/producer"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

var (
	_ producer.Interceptor = (*interceptors.Tracing)(nil)
	_ producer.Interceptor = (*interceptors.Metrics)(nil)
	_ producer.Interceptor = (*interceptors.Logging)(nil)
)

func newTracerProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func headerCount(hs []kafkit.Header, key string) int {
	n := 0
	for _, h := range hs {
		if h.Key == key {
			n++
		}
	}
	return n
}

func TestTracingSpanPerRecordAndPropagation(t *testing.T) {
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp, ClientID: "svc-1"})

	parentCtx, parent := tp.Tracer("app").Start(context.Background(), "handle request")
	const records = 5
	for i := range records {
		r := &kafkit.Record{Topic: "orders", Partition: kafkit.AnyPartition, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
		ctx := tr.OnSend(parentCtx, r)
		if headerCount(r.Headers, "traceparent") != 1 {
			t.Fatalf("record %d headers %v: want one traceparent", i, r.Headers)
		}
		sent := trace.SpanContextFromContext(ctx)

		// What a consumer sees: the producer span as remote parent.
		remote := trace.SpanContextFromContext(interceptors.ExtractContext(context.Background(), r.Headers))
		if !remote.IsRemote() || remote.TraceID() != parent.SpanContext().TraceID() || remote.SpanID() != sent.SpanID() {
			t.Fatalf("extracted %v, want remote child of trace %v with span %v", remote, parent.SpanContext().TraceID(), sent.SpanID())
		}

		r.Partition, r.Offset = 3, int64(40+i)
		tr.OnAck(ctx, r, nil)
	}
	parent.End()

	spans := exp.GetSpans()
	if len(spans) != records+1 {
		t.Fatalf("%d spans, want %d producer spans and the parent", len(spans), records)
	}
	ids := map[trace.SpanID]bool{}
	for i, s := range spans[:records] {
		ids[s.SpanContext.SpanID()] = true
		if s.Name != "send orders" || s.SpanKind != trace.SpanKindProducer {
			t.Errorf("span %d: name %q kind %v, want \"send orders\" producer", i, s.Name, s.SpanKind)
		}
		if s.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d: parent %v, want %v", i, s.Parent.SpanID(), parent.SpanContext().SpanID())
		}
		a := attrMap(s.Attributes)
		for k, want := range map[attribute.Key]attribute.Value{
			"messaging.system":                   attribute.StringValue("kafka"),
			"messaging.destination.name":         attribute.StringValue("orders"),
			"messaging.operation.type":           attribute.StringValue("send"),
			"messaging.client.id":                attribute.StringValue("svc-1"),
			"messaging.kafka.message.key":        attribute.StringValue(fmt.Sprintf("k%d", i)),
			"messaging.destination.partition.id": attribute.StringValue("3"),
			"messaging.kafka.offset":             attribute.IntValue(40 + i),
		} {
			if got, ok := a[k]; !ok || got != want {
				t.Errorf("span %d: %s = %v (set %v), want %v", i, k, got.String(), ok, want.String())
			}
		}
		if s.Status.Code == codes.Error {
			t.Errorf("span %d: error status on success", i)
		}
	}
	if len(ids) != records {
		t.Errorf("%d distinct span IDs, want %d", len(ids), records)
	}
}

func TestTracingFailure(t *testing.T) {
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	r := &kafkit.Record{Topic: "t", Partition: 1, Key: []byte{0xff, 0xfe}} // binary key, null value
	ctx := tr.OnSend(context.Background(), r)
	tr.OnAck(ctx, r, fmt.Errorf("produce t[1]: %w", kerr.NotLeaderForPartition))

	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Status.Code != codes.Error {
		t.Errorf("status %v, want Error", s.Status)
	}
	a := attrMap(s.Attributes)
	if got := a["error.type"].AsString(); got != "NOT_LEADER_FOR_PARTITION" { // kerr's name for code 6
		t.Errorf("error.type = %q, want NOT_LEADER_FOR_PARTITION", got)
	}
	if !a["messaging.kafka.message.tombstone"].AsBool() {
		t.Error("null value not marked as tombstone")
	}
	if _, ok := a["messaging.kafka.message.key"]; ok {
		t.Error("binary key recorded as a string")
	}
	if _, ok := a["messaging.kafka.offset"]; ok {
		t.Error("offset recorded for a failed record")
	}
	if len(s.Events) == 0 || s.Events[0].Name != "exception" {
		t.Errorf("events %v, want the recorded error", s.Events)
	}

	// A plain Go error gets its type name.
	r2 := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition}
	tr.OnAck(tr.OnSend(context.Background(), r2), r2, context.DeadlineExceeded)
	if got := attrMap(exp.GetSpans()[1].Attributes)["error.type"].AsString(); got == "" {
		t.Error("no error.type for a Go error")
	}
}

func TestTracingOnAckLeavesForeignSpans(t *testing.T) {
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	ctx, span := tp.Tracer("app").Start(context.Background(), "caller's")
	// OnAck with a context that did not come from OnSend must not end the
	// caller's span.
	tr.OnAck(ctx, &kafkit.Record{Topic: "t"}, errors.New("x"))
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans ended, want 0", n)
	}
	span.End()
}

func TestTracingReplacesExistingTraceparent(t *testing.T) {
	tp, _ := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	stale := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	shared := make([]kafkit.Header, 0, 8) // spare capacity other records share
	shared = append(shared, kafkit.Header{Key: "traceparent", Value: []byte(stale)}, kafkit.Header{Key: "app", Value: []byte("x")})
	r := &kafkit.Record{Topic: "t", Headers: shared}
	ctx := tr.OnSend(context.Background(), r)
	defer tr.OnAck(ctx, r, nil)

	if headerCount(r.Headers, "traceparent") != 1 || headerCount(r.Headers, "app") != 1 {
		t.Fatalf("headers %v: want one traceparent and the app header", r.Headers)
	}
	got := trace.SpanContextFromContext(interceptors.ExtractContext(context.Background(), r.Headers))
	if got.TraceID().String() == "0af7651916cd43dd8448eb211c80319c" {
		t.Error("stale traceparent still read: the record started a new trace")
	}
	if string(shared[0].Value) != stale || len(shared) != 2 {
		t.Errorf("shared headers changed to %v", shared)
	}
}

func TestExtractContextConsumerContinuesTrace(t *testing.T) {
	tp, exp := newTracerProvider(t)
	tr := interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp})
	r := &kafkit.Record{Topic: "t", Partition: 0}
	sendCtx := tr.OnSend(context.Background(), r)
	tr.OnAck(sendCtx, r, nil)

	_, consume := tp.Tracer("consumer").Start(interceptors.ExtractContext(context.Background(), r.Headers), "process t", trace.WithSpanKind(trace.SpanKindConsumer))
	consume.End()
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	prod, cons := spans[0], spans[1]
	if cons.SpanContext.TraceID() != prod.SpanContext.TraceID() || cons.Parent.SpanID() != prod.SpanContext.SpanID() {
		t.Errorf("consumer span trace %v parent %v, want trace %v parent %v",
			cons.SpanContext.TraceID(), cons.Parent.SpanID(), prod.SpanContext.TraceID(), prod.SpanContext.SpanID())
	}
	// No trace context: ctx unchanged.
	if sc := trace.SpanContextFromContext(interceptors.ExtractContext(context.Background(), nil)); sc.IsValid() {
		t.Errorf("extracted %v from no headers", sc)
	}
}

func TestTracingInChain(t *testing.T) {
	tp, exp := newTracerProvider(t)
	chain := producer.ChainInterceptors(interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp}), interceptors.NewLogging(nil))
	r := &kafkit.Record{Topic: "t", Partition: 2}
	chain.OnAck(chain.OnSend(context.Background(), r), r, nil)
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("%d spans, want 1", n)
	}
}
