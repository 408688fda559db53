package interceptors

import (
	"context"
	"log/slog"

	"github.com/kafkit/kafkit"
)

// OnConsume logs, at debug level, how many records a Poll returned per
// topic and partition, with the first offset; record contents are never
// logged.
func (l *Logging) OnConsume(ctx context.Context, records []*kafkit.Record) {
	if !l.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	type span struct {
		first int64
		n     int
	}
	per := make(map[kafkit.TopicPartition]*span)
	var order []kafkit.TopicPartition
	for _, r := range records {
		tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if s, ok := per[tp]; ok {
			s.n++
			continue
		}
		per[tp] = &span{first: r.Offset, n: 1}
		order = append(order, tp)
	}
	for _, tp := range order {
		s := per[tp]
		l.logger.LogAttrs(ctx, slog.LevelDebug, "records consumed",
			slog.String("topic", tp.Topic), slog.Int("partition", int(tp.Partition)),
			slog.Int64("offset", s.first), slog.Int("count", s.n))
	}
}

// OnCommit logs a failed commit at error level, one line per partition it
// covered (with the offset it tried to commit), and a successful one at
// debug level.
func (l *Logging) OnCommit(ctx context.Context, offsets map[kafkit.TopicPartition]int64, err error) {
	level, msg := slog.LevelDebug, "offsets committed"
	if err != nil {
		level, msg = slog.LevelError, "offset commit failed"
	}
	if !l.logger.Enabled(ctx, level) {
		return
	}
	for tp, off := range offsets {
		attrs := []slog.Attr{slog.String("topic", tp.Topic), slog.Int("partition", int(tp.Partition)), slog.Int64("offset", off)}
		if err != nil {
			attrs = append(attrs, slog.Any("error", err))
		}
		l.logger.LogAttrs(ctx, level, msg, attrs...)
	}
}
