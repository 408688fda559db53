package interceptors_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
)

// The interceptors' OpenTelemetry metrics exported to Prometheus through
// otel's Prometheus exporter: a producer or consumer configured with
// Interceptors: []...{m} shows up at /metrics under the semantic
// conventions' names (dots become underscores).
func ExampleMetrics_prometheus() {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	m, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp, ConsumerGroup: "billing"})
	if err != nil {
		panic(err)
	}
	// producer.Config{Interceptors: []producer.Interceptor{m}} and
	// consumer.Config{Interceptors: []consumer.Interceptor{m}} call these.
	r := &kafkit.Record{Topic: "orders", Partition: 0, Value: []byte("v")}
	m.OnAck(m.OnSend(context.Background(), r), r, nil)
	m.OnConsume(context.Background(), []*kafkit.Record{r})

	// http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "messaging_client_") && strings.Contains(line, "messages_total") {
			fmt.Println(line[:strings.Index(line, "{")])
		}
	}
	// Output:
	// messaging_client_consumed_messages_total
	// messaging_client_sent_messages_total
}
