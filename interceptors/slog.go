package interceptors

import (
	"context"
	"log/slog"

	"github.com/kafkit/kafkit"
)

// Logging logs each failed record at error level and each acknowledged one
// at debug level, with the topic and partition (and offset) under kafkit's
// fixed attribute keys. Keys and values are never logged: they may hold
// personal data. It logs with the context OnAck receives, so a handler that
// reads trace IDs from it (with Tracing earlier in the chain) can correlate.
type Logging struct {
	logger *slog.Logger
}

// NewLogging returns a Logging interceptor; a nil logger discards.
func NewLogging(logger *slog.Logger) *Logging {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Logging{logger: logger}
}

// OnSend does nothing: Logging reports outcomes only.
func (l *Logging) OnSend(ctx context.Context, _ *kafkit.Record) context.Context { return ctx }

// OnAck logs the record's outcome.
func (l *Logging) OnAck(ctx context.Context, r *kafkit.Record, err error) {
	if err != nil {
		l.logger.LogAttrs(ctx, slog.LevelError, "produce failed",
			slog.String("topic", r.Topic), slog.Int("partition", int(r.Partition)), slog.Any("error", err))
		return
	}
	l.logger.LogAttrs(ctx, slog.LevelDebug, "record acknowledged",
		slog.String("topic", r.Topic), slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
}
