package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/kafkit/kafkit/producer"
)

// Handler handles one record. ctx is cancelled when the runner abandons the
// record (shutdown or revocation past ShutdownTimeout, lost partitions);
// handlers must return soon after. Returning nil marks the record done; an
// error is retried unless it is Permanent.
type Handler func(ctx context.Context, r *kafkit.Record) error

// BatchHandler handles up to MaxBatchSize records at once: consecutive
// records of one partition (OrderPartition) or of one key in a partition
// (OrderKey), in offset order. An error retries the whole batch, and a batch
// that keeps failing goes to the dead-letter topic record by record.
type BatchHandler func(ctx context.Context, records []*kafkit.Record) error

// Ordering says which records must be handled one after another.
type Ordering int

const (
	// OrderPartition handles each partition's records in offset order,
	// one (or one batch) at a time: at most one handler per partition.
	OrderPartition Ordering = iota
	// OrderKey handles the records of each key of a partition in offset
	// order; different keys run in parallel.
	OrderKey
)

// Config configures a Runner. Zero values mean the defaults noted per field.
type Config struct {
	// Consumer configures the group member. GroupID and BootstrapServers
	// are required. The runner commits itself, so DisableAutoCommit is
	// forced on; OnAssigned, OnRevoked and OnLost run after the runner's
	// own handling of the rebalance.
	Consumer consumer.Config
	// Topics to subscribe to (at least one).
	Topics []string

	// Exactly one of Handler and BatchHandler.
	Handler      Handler
	BatchHandler BatchHandler
	MaxBatchSize int // records per BatchHandler call; default 100

	Concurrency             int      // handlers running at once; default 1
	Ordering                Ordering // default OrderPartition
	MaxInFlightPerPartition int      // queued or running records that pause a partition; default 1000

	MaxAttempts     int           // handler calls per record before dead-lettering; default 3
	RetryBackoff    time.Duration // first wait between attempts; default 100ms
	RetryBackoffMax time.Duration // longest wait; default 10s
	MaxRetryTime    time.Duration // stop retrying after this long; default: no limit beyond MaxAttempts

	// DeadLetterTopic names the dead-letter topic of a topic; default
	// topic + ".DLT".
	DeadLetterTopic func(topic string) string
	// DeadLetterProducer produces dead-letter records and is not closed by
	// the runner; nil: the runner creates one with the consumer's
	// bootstrap servers, TLS and SASL, and closes it when Run returns.
	DeadLetterProducer *producer.Producer

	CommitInterval  time.Duration // time between periodic commits; default 5s (auto.commit.interval.ms)
	ShutdownTimeout time.Duration // how long running handlers may finish on shutdown and revocation; default 30s

	// Tracing, when set, wraps each handler call in a "process <topic>"
	// span (interceptors.Tracing.StartProcess).
	Tracing *interceptors.Tracing
	Logger  *slog.Logger // default: discard
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Consumer.GroupID == "" {
		bad("Consumer.GroupID (group.id) is required")
	}
	if err := c.Consumer.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: consumer: %w", ErrInvalidConfig, err))
	}
	if len(c.Topics) == 0 {
		bad("Topics is empty")
	}
	if (c.Handler == nil) == (c.BatchHandler == nil) {
		bad("exactly one of Handler and BatchHandler must be set")
	}
	if c.Handler != nil && c.MaxBatchSize > 1 {
		bad("MaxBatchSize %d needs BatchHandler", c.MaxBatchSize)
	}
	if c.Ordering != OrderPartition && c.Ordering != OrderKey {
		bad("unknown Ordering %d", c.Ordering)
	}
	for name, v := range map[string]int{"MaxBatchSize": c.MaxBatchSize, "Concurrency": c.Concurrency,
		"MaxInFlightPerPartition": c.MaxInFlightPerPartition, "MaxAttempts": c.MaxAttempts} {
		if v < 0 {
			bad("%s %d is negative", name, v)
		}
	}
	for name, v := range map[string]time.Duration{"RetryBackoff": c.RetryBackoff, "RetryBackoffMax": c.RetryBackoffMax,
		"MaxRetryTime": c.MaxRetryTime, "CommitInterval": c.CommitInterval, "ShutdownTimeout": c.ShutdownTimeout} {
		if v < 0 {
			bad("%s %v is negative", name, v)
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = 100
	}
	if c.Handler != nil {
		h := c.Handler
		c.BatchHandler = func(ctx context.Context, rs []*kafkit.Record) error { return h(ctx, rs[0]) }
		c.MaxBatchSize = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.MaxInFlightPerPartition == 0 {
		c.MaxInFlightPerPartition = 1000
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
	c.RetryBackoffMax = max(c.RetryBackoffMax, c.RetryBackoff)
	if c.DeadLetterTopic == nil {
		c.DeadLetterTopic = func(topic string) string { return topic + ".DLT" }
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 5 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Consumer.DisableAutoCommit = true
	return c
}
