// Command consumer-service is a consumer-group service built on
// consumer/processor: it handles the records of a topic with 8 handlers at a
// time (in order per key), retries failures, sends records that keep
// failing to "<topic>.DLT", continues each record's trace in the handler,
// and on SIGINT/SIGTERM finishes what is running, commits and leaves the
// group:
//
//	go run ./examples/consumer-service -bootstrap localhost:9092 -topic events -group events-svc
//
// Run several copies with the same -group to share the partitions.
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

	"go.opentelemetry.io/otel/trace"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/consumer/processor"
	"github.com/kafkit/kafkit/interceptors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "consumer-service:", err)
		os.Exit(1)
	}
}

// errMalformed is what the handler returns for records it can never
// handle: Permanent sends them to the dead-letter topic without retrying.
var errMalformed = errors.New("empty value")

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("consumer-service", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", "localhost:9092", "bootstrap.servers, comma-separated")
	topic := fs.String("topic", "events", "topic to consume")
	group := fs.String("group", "events-svc", "group.id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var mu sync.Mutex // serializes writes to out
	handle := func(ctx context.Context, r *kafkit.Record) error {
		if len(r.Value) == 0 {
			return processor.Permanent(errMalformed)
		}
		// ctx carries the producer's trace (from the traceparent
		// header): spans started here, or outgoing calls, join it.
		traceID := trace.SpanContextFromContext(ctx).TraceID()
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(out, "handled %s[%d]@%d key=%s value=%s trace=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value, traceID)
		return err
	}

	runner, err := processor.New(processor.Config{
		Consumer: consumer.Config{
			BootstrapServers: strings.Split(*bootstrap, ","),
			GroupID:          *group,
			AutoOffsetReset:  consumer.OffsetResetEarliest,
			Interceptors:     []consumer.Interceptor{interceptors.NewLogging(logger)},
			Logger:           logger,
		},
		Topics:          []string{*topic},
		Handler:         handle,
		Concurrency:     8,
		Ordering:        processor.OrderKey,
		MaxAttempts:     5,
		ShutdownTimeout: 10 * time.Second,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	return runner.Run(ctx)
}
