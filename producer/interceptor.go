package producer

import (
	"context"

	"github.com/kafkit/kafkit"
)

// Interceptor sees each record before it is serialized and partitioned, and
// its outcome. The producer calls OnSend from Send, before anything else
// touches the record; OnSend may change the record (add headers, for
// instance) and returns the context the producer keeps with the record and
// hands to OnAck, so state such as a span can travel from one to the other:
// it should return ctx or a context derived from it, so that interceptors
// chained after it still find theirs. OnAck runs once per record, from the
// goroutine that completes it, when the broker acknowledged it (err nil,
// r.Partition, r.Offset and r.Timestamp filled in) or it failed (err
// non-nil); it must not block, since it delays the records after it.
// Implementations are safe for concurrent use.
type Interceptor interface {
	OnSend(ctx context.Context, r *kafkit.Record) context.Context
	OnAck(ctx context.Context, r *kafkit.Record, err error)
}

// ChainInterceptors returns one Interceptor that runs each of interceptors in
// order, OnSend and OnAck alike (as Java's ProducerInterceptors do). Each
// OnSend receives the context the previous one returned, and every OnAck the
// context the last OnSend returned. Nil entries are skipped.
func ChainInterceptors(interceptors ...Interceptor) Interceptor {
	chain := make(interceptorChain, 0, len(interceptors))
	for _, i := range interceptors {
		if i != nil {
			chain = append(chain, i)
		}
	}
	return chain
}

type interceptorChain []Interceptor

func (c interceptorChain) OnSend(ctx context.Context, r *kafkit.Record) context.Context {
	for _, i := range c {
		ctx = i.OnSend(ctx, r)
	}
	return ctx
}

func (c interceptorChain) OnAck(ctx context.Context, r *kafkit.Record, err error) {
	for _, i := range c {
		i.OnAck(ctx, r, err)
	}
}

// withOnAck returns the callback the producer keeps with a record when it
// has interceptors: icpt's OnAck with ctx, what their OnSend returned for
// the record, then cb (nil: none). One closure per record only for
// producers with interceptors keeps every record's pending small.
func withOnAck(ctx context.Context, icpt Interceptor, cb func(*kafkit.Record, error)) func(*kafkit.Record, error) {
	return func(r *kafkit.Record, err error) {
		icpt.OnAck(ctx, r, err)
		if cb != nil {
			cb(r, err)
		}
	}
}
