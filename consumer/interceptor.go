package consumer

import (
	"context"

	"github.com/kafkit/kafkit"
)

// Interceptor observes what the consumer hands to the application and what it
// commits, as Java's ConsumerInterceptor does. Implementations are safe for
// concurrent use and must not block: both methods run on the consumer's
// paths (Poll, commits).
type Interceptor interface {
	// OnConsume runs on the goroutine calling Poll, with Poll's ctx, just
	// before Poll returns records (never empty), in the order Poll returns
	// them. It may read or annotate records (a tracing interceptor extracts
	// the producer's span context from their headers) but must not keep
	// them past the call unless it copies them.
	OnConsume(ctx context.Context, records []*kafkit.Record)
	// OnCommit runs once per offset commit (manual, automatic, on revoke or
	// on Close) after the coordinator answered: offsets are the committed
	// next-offsets-to-read, err the outcome (nil on success). ctx is the
	// committing call's context (context.Background for automatic commits).
	OnCommit(ctx context.Context, offsets map[kafkit.TopicPartition]int64, err error)
}

// interceptorChain runs each interceptor in order.
type interceptorChain []Interceptor

func (c interceptorChain) OnConsume(ctx context.Context, records []*kafkit.Record) {
	for _, i := range c {
		i.OnConsume(ctx, records)
	}
}

func (c interceptorChain) OnCommit(ctx context.Context, offsets map[kafkit.TopicPartition]int64, err error) {
	for _, i := range c {
		i.OnCommit(ctx, offsets, err)
	}
}
