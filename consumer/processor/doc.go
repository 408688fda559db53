// Package processor runs record handlers over a consumer group: the
// framework most services want instead of a hand-written Poll loop.
//
// A Runner subscribes a consumer (consumer.New) to topics and calls a
// Handler (or BatchHandler) for every record, Concurrency handlers at a time.
// Ordering: records of one partition are handled one after another in offset
// order (OrderPartition, the default), or records with the same key are
// (OrderKey: different keys of a partition run in parallel; all null keys of
// a partition share one lane).
//
// Typed adapts a handler of deserialized keys and values
// (consumer.TypedRecord); records that fail to deserialize are permanent
// failures. A handler that panics crashes the program, as any goroutine
// does; recover inside it to turn a panic into an error.
//
// Failures. A handler error is retried MaxAttempts times in all, with
// exponential backoff and jitter (retry.backoff.ms style: RetryBackoff
// doubling up to RetryBackoffMax, bounded also by MaxRetryTime). An error
// wrapped with Permanent skips the retries. A record that still fails is
// produced to its dead-letter topic ("<topic>.DLT" by default, the name
// Spring Kafka's DeadLetterPublishingRecoverer uses) with the original key,
// value and headers plus the kafka_dlt-* headers described at DeadLetter,
// and then counts as handled. If the dead-letter record cannot be produced
// the record is not committed, so it is delivered again.
//
// Offsets. The runner commits itself (enable.auto.commit is forced off):
// for each partition, up to the lowest record not yet finished, so a record
// is never committed before its handler finished (at-least-once). It
// commits every CommitInterval, on revocation and at shutdown. In
// OrderPartition mode only records in flight at a crash or abandonment are
// delivered again; in OrderKey mode also finished records above an
// unfinished one of another key.
//
// Backpressure. A partition with MaxInFlightPerPartition records queued or
// running is paused (consumer.Pause) and resumed once half of them finished.
//
// Rebalances. On revocation the partition's queued records are dropped
// (their new owner reads them), its running handlers get up to
// ShutdownTimeout to finish, and what finished is committed before the
// revocation completes; handlers still running then are abandoned: their
// ctx is cancelled and their outcome ignored. Lost partitions (the
// membership expired) are abandoned at once, without a commit.
//
// Shutdown. When Run's ctx is cancelled the runner stops taking records,
// gives running handlers up to ShutdownTimeout, abandons the rest (as
// above), commits, closes the consumer (which leaves the group) and returns
// once every handler has returned.
//
// Tracing. Each handler's ctx carries the producer's trace context read
// from the record's W3C traceparent header (for a batch, none), so spans the
// handler starts join the producer's trace; with Config.Tracing a "process
// <topic>" span wraps each handler call.
package processor
