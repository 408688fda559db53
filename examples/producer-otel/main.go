// Command producer-otel is a service-style producer instrumented with
// OpenTelemetry: each record gets a "send <topic>" span (its context travels
// in the record's traceparent header to consumers) and the producer's
// metrics are read at shutdown. Spans and metrics are printed to stdout, so
// the example needs no collector:
//
//	go run ./examples/producer-otel -bootstrap localhost:9092 -topic events
//
// It sends one record per -interval until interrupted (or -count records),
// then flushes and closes the producer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/producer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "producer-otel:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("producer-otel", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", "localhost:9092", "bootstrap.servers, comma-separated")
	topic := fs.String("topic", "events", "topic to produce to")
	count := fs.Int("count", 0, "stop after this many records (0: until interrupted)")
	interval := fs.Duration("interval", time.Second, "time between records")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// Tracing and metrics providers. A real service would export to a
	// collector (OTLP); here spans are printed and metrics read once.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(&printExporter{out: out}))
	defer tp.Shutdown(context.WithoutCancel(ctx))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.WithoutCancel(ctx))
	metrics, err := interceptors.NewMetrics(interceptors.MetricsConfig{MeterProvider: mp})
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	p, err := producer.New(producer.Config{
		BootstrapServers: strings.Split(*bootstrap, ","),
		ClientID:         "producer-otel",
		Interceptors: []producer.Interceptor{
			interceptors.NewTracing(interceptors.TracingConfig{TracerProvider: tp, ClientID: "producer-otel"}),
			metrics,
			interceptors.NewLogging(logger),
		},
		Logger: logger,
	})
	if err != nil {
		return err
	}
	defer func() {
		// Close flushes what is pending; it gets its own deadline since ctx
		// is already cancelled at shutdown.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, p.Close(cctx), printMetrics(cctx, reader, out))
	}()

	tracer := tp.Tracer("producer-otel")
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for i := 0; *count == 0 || i < *count; i++ {
		// The span of the work that produces the record: the producer's
		// span becomes its child, and consumers continue the same trace.
		sctx, span := tracer.Start(ctx, "tick")
		r := &kafkit.Record{Topic: *topic, Partition: kafkit.AnyPartition, Key: fmt.Appendf(nil, "k%d", i%4), Value: fmt.Appendf(nil, "event %d", i)}
		err := p.Send(sctx, r, func(r *kafkit.Record, err error) {
			if err != nil {
				logger.Error("send failed", "topic", r.Topic, "err", err)
			}
		})
		span.End()
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}

// printExporter prints one line per finished span.
type printExporter struct {
	mu  sync.Mutex // serializes writes to out
	out io.Writer
}

func (e *printExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		fmt.Fprintf(e.out, "span %q trace=%s span=%s parent=%s", s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID())
		for _, a := range s.Attributes() {
			fmt.Fprintf(e.out, " %s=%s", a.Key, a.Value.String())
		}
		fmt.Fprintln(e.out)
	}
	return nil
}

func (e *printExporter) Shutdown(context.Context) error { return nil }

// printMetrics prints the counters' totals.
func printMetrics(ctx context.Context, reader *sdkmetric.ManualReader, out io.Writer) error {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				var total int64
				for _, dp := range sum.DataPoints {
					total += dp.Value
				}
				fmt.Fprintf(out, "metric %s %d\n", m.Name, total)
			}
		}
	}
	return nil
}
