package interceptors

import (
	"context"
	"strconv"

	"github.com/kafkit/kafkit"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// consumerInstruments are Metrics' consumer-side instruments:
//   - messaging.client.consumed.messages: records handed to the application
//     (semantic conventions);
//   - kafkit.consumer.consumed.bytes: their key, value and header bytes;
//   - kafkit.consumer.commits and kafkit.consumer.commit.errors: offset
//     commits, and failed ones by error.type;
//   - kafkit.consumer.lag: per partition, end offset minus position, for
//     consumers registered with ObserveLag.
type consumerInstruments struct {
	meter        metric.Meter
	consumed     metric.Int64Counter
	bytes        metric.Int64Counter
	commits      metric.Int64Counter
	commitErrors metric.Int64Counter
	lag          metric.Int64ObservableGauge
	group        []attribute.KeyValue // messaging.consumer.group.name, when known
}

func newConsumerInstruments(meter metric.Meter, group string) (*consumerInstruments, error) {
	c := &consumerInstruments{meter: meter}
	if group != "" {
		c.group = []attribute.KeyValue{semconv.MessagingConsumerGroupName(group)}
	}
	var err error
	if c.consumed, err = meter.Int64Counter("messaging.client.consumed.messages",
		metric.WithUnit("{message}"), metric.WithDescription("Records the consumer handed to the application.")); err != nil {
		return nil, err
	}
	if c.bytes, err = meter.Int64Counter("kafkit.consumer.consumed.bytes",
		metric.WithUnit("By"), metric.WithDescription("Key, value and header bytes of consumed records.")); err != nil {
		return nil, err
	}
	if c.commits, err = meter.Int64Counter("kafkit.consumer.commits",
		metric.WithUnit("{commit}"), metric.WithDescription("Offset commits, successful or not.")); err != nil {
		return nil, err
	}
	if c.commitErrors, err = meter.Int64Counter("kafkit.consumer.commit.errors",
		metric.WithUnit("{commit}"), metric.WithDescription("Offset commits that failed.")); err != nil {
		return nil, err
	}
	if c.lag, err = meter.Int64ObservableGauge("kafkit.consumer.lag",
		metric.WithUnit("{message}"), metric.WithDescription("End offset minus the consumer's position, per partition.")); err != nil {
		return nil, err
	}
	return c, nil
}

// OnConsume counts the records and their bytes per topic and partition.
func (m *Metrics) OnConsume(ctx context.Context, records []*kafkit.Record) {
	type agg struct{ n, bytes int64 }
	per := make(map[kafkit.TopicPartition]agg)
	for _, r := range records {
		tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		a := per[tp]
		a.n++
		a.bytes += recordBytes(r)
		per[tp] = a
	}
	for tp, a := range per {
		set := metric.WithAttributeSet(m.consumer.partitionSet(tp, "receive"))
		m.consumer.consumed.Add(ctx, a.n, set)
		m.consumer.bytes.Add(ctx, a.bytes, set)
	}
}

// OnCommit counts the commit, and the failure by error.type.
func (m *Metrics) OnCommit(ctx context.Context, _ map[kafkit.TopicPartition]int64, err error) {
	attrs := append([]attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingOperationName("commit")}, m.consumer.group...)
	if err != nil {
		attrs = append(attrs, errorType(err))
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	m.consumer.commits.Add(ctx, 1, set)
	if err != nil {
		m.consumer.commitErrors.Add(ctx, 1, set)
	}
}

// ObserveLag reports kafkit.consumer.lag from lag (a consumer's Lag method)
// at each collection, until the returned registration is unregistered. The
// interceptor cannot see end offsets itself, hence the callback; a failing
// lag call skips that collection.
func (m *Metrics) ObserveLag(lag func(ctx context.Context) (map[kafkit.TopicPartition]int64, error)) (metric.Registration, error) {
	return m.consumer.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		lags, err := lag(ctx)
		if err != nil {
			return nil
		}
		for tp, n := range lags {
			o.ObserveInt64(m.consumer.lag, n, metric.WithAttributeSet(m.consumer.partitionSet(tp, "receive")))
		}
		return nil
	}, m.consumer.lag)
}

func (c *consumerInstruments) partitionSet(tp kafkit.TopicPartition, op string) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName(op),
		semconv.MessagingDestinationName(tp.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(tp.Partition))),
	}, c.group...)...)
}
