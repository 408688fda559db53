package interceptors_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sumBy adds up a counter's points by the value of one attribute ("" when the
// point lacks it).
func sumBy(t *testing.T, agg metricdata.Aggregation, key attribute.Key) map[string]int64 {
	t.Helper()
	sum, ok := agg.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("aggregation %T, want Sum[int64]", agg)
	}
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		v, _ := dp.Attributes.Value(key)
		out[v.AsString()] += dp.Value
		if sys, _ := dp.Attributes.Value("messaging.system"); sys.AsString() != "kafka" {
			t.Errorf("point %v lacks messaging.system=kafka", dp.Attributes)
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}

	send := func(r *kafkit.Record, err error) {
		m.OnAck(m.OnSend(context.Background(), r), r, err)
	}
	// Acked: 3 + 5 + 1+2 = 11 bytes, then 4 bytes in topic b.
	send(&kafkit.Record{Topic: "a", Partition: 0, Key: []byte("key"), Value: []byte("value"), Headers: []kafkit.Header{{Key: "h", Value: []byte("hv")}}}, nil)
	send(&kafkit.Record{Topic: "a", Partition: 1, Value: []byte("four")}, nil)
	send(&kafkit.Record{Topic: "b", Partition: 0, Value: []byte("four")}, nil)
	send(&kafkit.Record{Topic: "a", Partition: 0, Value: []byte("lost")}, kerr.MessageTooLarge)
	send(&kafkit.Record{Topic: "a", Partition: kafkit.AnyPartition, Value: []byte("lost")}, errors.New("closed"))

	got := collect(t, reader)
	if sent := sumBy(t, got["messaging.client.sent.messages"], "messaging.destination.name"); sent["a"] != 4 || sent["b"] != 1 {
		t.Errorf("sent by topic = %v, want a:4 b:1", sent)
	}
	if sent := sumBy(t, got["messaging.client.sent.messages"], "error.type"); sent[""] != 3 || sent["MESSAGE_TOO_LARGE"] != 1 || len(sent) != 3 {
		t.Errorf("sent by error.type = %v, want 3 without, 1 MESSAGE_TOO_LARGE, 1 Go error", sent)
	}
	if b := sumBy(t, got["kafkit.producer.sent.bytes"], "messaging.destination.name"); b["a"] != 15 || b["b"] != 4 {
		t.Errorf("bytes by topic = %v, want a:15 b:4", b)
	}
	if e := sumBy(t, got["kafkit.producer.errors"], "messaging.destination.partition.id"); e["0"] != 1 || e[""] != 1 || len(e) != 2 {
		t.Errorf("errors by partition = %v, want 0:1 and one without a partition", e)
	}
	hist, ok := got["messaging.client.operation.duration"].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("duration aggregation %T, want Histogram[float64]", got["messaging.client.operation.duration"])
	}
	var count uint64
	for _, dp := range hist.DataPoints {
		count += dp.Count
		if dp.Sum < 0 {
			t.Errorf("negative latency sum %v", dp.Sum)
		}
	}
	if count != 5 {
		t.Errorf("latency histogram has %d observations, want 5", count)
	}
}
