package interceptors

import (
	"context"
	"strconv"
	"time"

	"github.com/kafkit/kafkit"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// MetricsConfig configures Metrics; the zero value uses the global meter
// provider.
type MetricsConfig struct {
	// MeterProvider creates the meter; nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// ConsumerGroup is the consumer's group.id: the consumer's points then
	// carry messaging.consumer.group.name, as the semantic conventions ask
	// (the interceptor cannot see the consumer's config).
	ConsumerGroup string
}

// Metrics records, per acknowledged or failed record:
//   - messaging.client.sent.messages: records sent, with error.type on
//     failures (semantic conventions);
//   - messaging.client.operation.duration: seconds from OnSend to OnAck, the
//     ack latency (semantic conventions);
//   - kafkit.producer.sent.bytes: key, value and header bytes of
//     acknowledged records;
//   - kafkit.producer.errors: failed records, by error.type.
//
// Each carries messaging.system, messaging.destination.name and, once
// known, messaging.destination.partition.id.
type Metrics struct {
	sent     metric.Int64Counter
	bytes    metric.Int64Counter
	errors   metric.Int64Counter
	duration metric.Float64Histogram
	consumer *consumerInstruments // consumer_metrics.go
}

// NewMetrics creates the instruments; it fails only if the meter provider
// refuses one.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	var m Metrics
	var err error
	if m.sent, err = meter.Int64Counter("messaging.client.sent.messages",
		metric.WithUnit("{message}"), metric.WithDescription("Records the producer attempted to send.")); err != nil {
		return nil, err
	}
	if m.bytes, err = meter.Int64Counter("kafkit.producer.sent.bytes",
		metric.WithUnit("By"), metric.WithDescription("Key, value and header bytes of acknowledged records.")); err != nil {
		return nil, err
	}
	if m.errors, err = meter.Int64Counter("kafkit.producer.errors",
		metric.WithUnit("{message}"), metric.WithDescription("Records that failed.")); err != nil {
		return nil, err
	}
	if m.duration, err = meter.Float64Histogram("messaging.client.operation.duration",
		metric.WithUnit("s"), metric.WithDescription("Time from send to acknowledgement or failure."),
		// The boundaries the semantic conventions recommend.
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)); err != nil {
		return nil, err
	}
	if m.consumer, err = newConsumerInstruments(meter, cfg.ConsumerGroup); err != nil {
		return nil, err
	}
	return &m, nil
}

// startKey holds the OnSend time in the context OnAck receives.
type startKey struct{}

// OnSend notes when the record was handed to the producer.
func (m *Metrics) OnSend(ctx context.Context, _ *kafkit.Record) context.Context {
	return context.WithValue(ctx, startKey{}, time.Now())
}

// OnAck records the record's outcome.
func (m *Metrics) OnAck(ctx context.Context, r *kafkit.Record, err error) {
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(r.Topic),
	}
	if r.Partition >= 0 {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))))
	}
	if err != nil {
		attrs = append(attrs, errorType(err))
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	m.sent.Add(ctx, 1, set)
	if err != nil {
		m.errors.Add(ctx, 1, set)
	} else {
		m.bytes.Add(ctx, recordBytes(r), set)
	}
	if start, ok := ctx.Value(startKey{}).(time.Time); ok {
		m.duration.Record(ctx, time.Since(start).Seconds(), set)
	}
}

// recordBytes is the payload size of r: key, value, and header keys and
// values, without the batch's framing.
func recordBytes(r *kafkit.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}
