package interceptors

import (
	"context"
	"strconv"
	"unicode/utf8"

	"github.com/kafkit/kafkit"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer and meter this package creates.
const instrumentationName = "github.com/kafkit/kafkit/interceptors"

// TracingConfig configures Tracing; the zero value uses the global tracer
// provider and W3C trace context plus baggage.
type TracingConfig struct {
	// TracerProvider creates the tracer; nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Propagator writes trace context into record headers; nil means W3C
	// trace context and baggage, the format ExtractContext reads.
	Propagator propagation.TextMapPropagator
	// ClientID, when set, is recorded as messaging.client.id.
	ClientID string
}

// Tracing starts a producer span per record in OnSend, as a child of the
// span in the Send context, injects its context into the record's headers
// and ends it in OnAck with the partition and offset, or the error. Span
// names and attributes follow the OpenTelemetry messaging semantic
// conventions ("send <topic>", messaging.system=kafka, ...).
type Tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	common     []attribute.KeyValue // attributes every span gets
}

// NewTracing returns a Tracing interceptor.
func NewTracing(cfg TracingConfig) *Tracing {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	prop := cfg.Propagator
	if prop == nil {
		prop = defaultPropagator()
	}
	common := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
	}
	if cfg.ClientID != "" {
		common = append(common, semconv.MessagingClientID(cfg.ClientID))
	}
	return &Tracing{
		tracer:     tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		propagator: prop,
		common:     common,
	}
}

// spanKey finds the span OnSend started in the context OnAck receives; OnAck
// ends only that span, never one the caller put in the context.
type spanKey struct{}

// OnSend starts the record's span and writes its context into r.Headers.
func (t *Tracing) OnSend(ctx context.Context, r *kafkit.Record) context.Context {
	attrs := append(make([]attribute.KeyValue, 0, len(t.common)+4), t.common...)
	attrs = append(attrs, semconv.MessagingDestinationName(r.Topic), semconv.MessagingMessageBodySize(len(r.Value)))
	// The conventions want the key as a string; binary keys are left out
	// rather than recorded garbled.
	if r.Key != nil && utf8.Valid(r.Key) {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(r.Key)))
	}
	if r.Value == nil {
		attrs = append(attrs, semconv.MessagingKafkaMessageTombstone(true))
	}
	if r.Partition >= 0 {
		attrs = append(attrs, partitionAttr(r.Partition))
	}
	ctx, span := t.tracer.Start(ctx, "send "+r.Topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	t.propagator.Inject(ctx, (*HeaderCarrier)(&r.Headers))
	return context.WithValue(ctx, spanKey{}, span)
}

// OnAck ends the record's span: with partition and offset when it was
// acknowledged, with error status and error.type when it failed.
func (t *Tracing) OnAck(ctx context.Context, r *kafkit.Record, err error) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	if r.Partition >= 0 {
		span.SetAttributes(partitionAttr(r.Partition))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(errorType(err))
	} else {
		span.SetAttributes(semconv.MessagingKafkaOffset(int(r.Offset)))
	}
	span.End()
}

func partitionAttr(p int32) attribute.KeyValue {
	return semconv.MessagingDestinationPartitionID(strconv.Itoa(int(p)))
}
