package interceptors_test

import (
	"context"
	"testing"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// TestMetricsConsumerGroupAttribute: with ConsumerGroup set, consumed
// records and commits carry messaging.consumer.group.name (OpenTelemetry's
// messaging conventions); without it they do not.
func TestMetricsConsumerGroupAttribute(t *testing.T) {
	for _, group := range []string{"billing", ""} {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		m, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp, ConsumerGroup: group})
		if err != nil {
			t.Fatal(err)
		}
		m.OnConsume(context.Background(), []*kafkit.Record{{Topic: "t", Partition: 2, Value: []byte("v")}, {Topic: "t", Partition: 2}})
		m.OnCommit(context.Background(), map[kafkit.TopicPartition]int64{{Topic: "t", Partition: 2}: 2}, nil)
		got := collect(t, reader)
		if c := sumBy(t, got["messaging.client.consumed.messages"], "messaging.consumer.group.name"); c[group] != 2 || len(c) != 1 {
			t.Errorf("group %q: consumed by group = %v", group, c)
		}
		if c := sumBy(t, got["kafkit.consumer.commits"], "messaging.consumer.group.name"); c[group] != 1 || len(c) != 1 {
			t.Errorf("group %q: commits by group = %v", group, c)
		}
		mp.Shutdown(context.Background())
	}
}
