package interceptors

import (
	"context"
	"unicode/utf8"

	"github.com/kafkit/kafkit"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// OnConsume records a "receive <topic>" consumer span per record, a child of
// the producer's span read from the record's headers (so it shares the
// producer's trace id), with the record's partition, offset, key and size.
// The span covers delivery only and ends at once: the consumer hands records
// over and cannot see their processing; a processing framework wraps that
// in StartProcess.
func (t *Tracing) OnConsume(ctx context.Context, records []*kafkit.Record) {
	for _, r := range records {
		parent := t.extract(ctx, r)
		attrs := consumerAttrs(r, semconv.MessagingOperationTypeReceive, "receive")
		_, span := t.tracer.Start(parent, "receive "+r.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
		span.End()
	}
}

// OnCommit records a failed commit as an event on the span in ctx, if any:
// commits are per group, not per record, so they get no span of their own.
func (t *Tracing) OnCommit(ctx context.Context, _ map[kafkit.TopicPartition]int64, err error) {
	if err == nil {
		return
	}
	trace.SpanFromContext(ctx).AddEvent("commit failed", trace.WithAttributes(errorType(err)))
}

// StartProcess starts a "process <topic>" consumer span for handling
// records and returns ctx carrying it. For one record the span is a child of
// the producer's span from its headers (same trace); for a batch it is a
// child of ctx with a link to each record's producer span, as the messaging
// conventions prescribe for batch processing. The caller ends the span with
// EndProcess.
func (t *Tracing) StartProcess(ctx context.Context, records []*kafkit.Record) (context.Context, trace.Span) {
	if len(records) == 0 {
		return ctx, trace.SpanFromContext(ctx)
	}
	first := records[0]
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	parent := ctx
	if len(records) == 1 {
		parent = t.extract(ctx, first)
		opts = append(opts, trace.WithAttributes(consumerAttrs(first, semconv.MessagingOperationTypeProcess, "process")...))
	} else {
		links := make([]trace.Link, 0, len(records))
		for _, r := range records {
			if sc := trace.SpanContextFromContext(t.extract(context.Background(), r)); sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
		opts = append(opts, trace.WithLinks(links...), trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(first.Topic),
			partitionAttr(first.Partition),
			semconv.MessagingBatchMessageCount(len(records)),
		))
	}
	return t.tracer.Start(parent, "process "+first.Topic, opts...)
}

// EndProcess ends a span StartProcess returned, marking it failed when err
// is not nil.
func EndProcess(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(errorType(err))
	}
	span.End()
}

// extract reads r's trace context with t's propagator, the one that wrote it.
func (t *Tracing) extract(ctx context.Context, r *kafkit.Record) context.Context {
	c := HeaderCarrier(r.Headers)
	return t.propagator.Extract(ctx, &c)
}

// consumerAttrs are the messaging attributes of one consumed record.
func consumerAttrs(r *kafkit.Record, opType attribute.KeyValue, opName string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		opType,
		semconv.MessagingOperationName(opName),
		semconv.MessagingDestinationName(r.Topic),
		partitionAttr(r.Partition),
		semconv.MessagingKafkaOffset(int(r.Offset)),
		semconv.MessagingMessageBodySize(len(r.Value)),
	}
	if r.Key != nil && utf8.Valid(r.Key) {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(r.Key)))
	}
	if r.Value == nil {
		attrs = append(attrs, semconv.MessagingKafkaMessageTombstone(true))
	}
	return attrs
}
