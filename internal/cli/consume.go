package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/consumer"
	"github.com/spf13/cobra"
)

type consumeOpts struct {
	topic, group   string
	fromBeginning  bool
	maxMessages    int
	partition      int32
	offset         string
	format         string
	isolationLevel string
	timeout        time.Duration
	properties     []string // --consumer-property key=value
	// printer, if set, prints records instead of format (Kafka's
	// DefaultMessageFormatter for kafka-console-consumer.sh).
	printer func(*bufio.Writer, *kafkit.Record)
}

func consumeCmd(g *globals) *cobra.Command {
	var (
		o         consumeOpts
		timeoutMS int64
	)
	cmd := &cobra.Command{
		Use:   "consume --topic NAME [--group G] [--from-beginning] [--max-messages N]",
		Short: "Print records of a topic (like kafka-console-consumer.sh)",
		Long: `Print records of a topic, one per line: the value by default, or as --format says:
  %t topic  %p partition  %o offset  %k key  %v value  %T timestamp (ms)  %h headers (k=v,...)  %% a percent sign
  \t and \n are a tab and a newline. A newline ends each record.
Ends with "Processed a total of N messages" on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeoutMS < 0 {
				return fmt.Errorf("--timeout-ms must not be negative, got %d", timeoutMS)
			}
			o.timeout = time.Duration(timeoutMS) * time.Millisecond
			if o.group != "" && (o.partition >= 0 || o.offset != "") {
				return errors.New("--partition and --offset cannot be used with --group (a group assigns partitions itself)")
			}
			if o.offset != "" && o.partition < 0 {
				return errors.New("--offset needs --partition")
			}
			if o.offset != "" && o.fromBeginning {
				return errors.New("--offset and --from-beginning cannot be used together")
			}
			return g.consume(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "topic to read")
	f.StringVar(&o.group, "group", "", "consumer group to join; offsets are committed every auto.commit.interval.ms (default 5000, see --consumer-property) and on exit; default: no group")
	f.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the earliest offset when there is no committed one")
	f.IntVar(&o.maxMessages, "max-messages", 0, "exit after this many records (0: no limit)")
	f.Int32Var(&o.partition, "partition", -1, "read only this partition (default: all)")
	f.StringVar(&o.offset, "offset", "", "with --partition: earliest, latest or an offset to start at (default latest)")
	f.StringVar(&o.format, "format", "%v", "output format per record (see above)")
	f.StringVar(&o.isolationLevel, "isolation-level", consumer.ReadUncommitted, "read_uncommitted or read_committed")
	f.Int64Var(&timeoutMS, "timeout-ms", 0, "exit when no record arrives for this long (0: wait forever)")
	f.StringArrayVar(&o.properties, "consumer-property", nil, "consumer property key=value, e.g. auto.commit.interval.ms=1000 (repeatable)")
	cmd.MarkFlagRequired("topic")
	return cmd
}

func (g *globals) consume(ctx context.Context, o consumeOpts) error {
	format := o.printer
	if format == nil {
		var err error
		if format, err = parseFormat(o.format); err != nil {
			return err
		}
	}
	var partitions []kafkit.TopicPartition
	if err := g.withAdminCtx(ctx, func(ctx context.Context, adm *admin.Client) error {
		var err error
		partitions, err = adm.Partitions(ctx, o.topic)
		return unknownTopic(err, []string{o.topic})
	}); err != nil {
		return err
	}
	set := map[string]string{
		"isolation.level": o.isolationLevel,
		// Without a group the reset policy also positions the assigned
		// partitions: no committed offsets exist.
		"auto.offset.reset": consumer.OffsetResetLatest,
		"client.id":         "kafkit-console-consumer",
	}
	for _, kv := range o.properties {
		k, v, err := keyValue("--consumer-property", kv)
		if err != nil {
			return err
		}
		set[k] = v
	}
	if o.fromBeginning || o.offset == "earliest" {
		set["auto.offset.reset"] = consumer.OffsetResetEarliest
	}
	if o.group != "" {
		// As kafka-console-consumer.sh: the consumer's own auto-commit
		// (enable.auto.commit, every auto.commit.interval.ms, both
		// settable in --command-config) commits what was printed, and
		// Close commits the rest, so a killed consumer re-reads at most
		// one interval's records.
		set["group.id"] = o.group
	}
	cfg, err := clientConfig(g, set, consumer.ConfigFromProperties,
		func(c *consumer.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
	if err != nil {
		return err
	}
	if o.maxMessages > 0 {
		cfg.MaxPollRecords = min(o.maxMessages, 500)
	}
	c, err := consumer.New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := g.startConsumer(ctx, c, o, partitions); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return err
	}

	out := bufio.NewWriter(g.io.Out)
	// unprinted holds, per partition, the first record a Poll returned that
	// --max-messages left unprinted: the position to go back to before
	// Close commits, so that only printed records count as consumed.
	unprinted := make(map[kafkit.TopicPartition]int64)
	n, loopErr := 0, error(nil)
	for o.maxMessages == 0 || n < o.maxMessages {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		recs, err := c.Poll(pollCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				break // --timeout-ms passed without a record
			}
			if ctx.Err() == nil {
				loopErr = err
			}
			break
		}
		for _, r := range recs {
			if o.maxMessages > 0 && n == o.maxMessages {
				tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
				if _, ok := unprinted[tp]; !ok {
					unprinted[tp] = r.Offset
				}
				continue
			}
			format(out, r)
			n++
		}
		if err := out.Flush(); err != nil {
			loopErr = err
			break
		}
	}
	// Commit (in Close) and leave even when interrupted: that is what
	// Ctrl-C asks for.
	done, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for tp, offset := range unprinted {
		loopErr = errors.Join(loopErr, c.Seek(done, tp, offset))
	}
	closeErr := c.Close(done)
	fmt.Fprintf(g.io.Err, "Processed a total of %d messages\n", n)
	return errors.Join(loopErr, closeErr)
}

// startConsumer subscribes with a group, or assigns the topic's partitions
// (or --partition) and seeks to --offset.
func (g *globals) startConsumer(ctx context.Context, c *consumer.Consumer, o consumeOpts, partitions []kafkit.TopicPartition) error {
	if o.group != "" {
		return c.Subscribe(o.topic)
	}
	if o.partition >= 0 {
		tp := kafkit.TopicPartition{Topic: o.topic, Partition: o.partition}
		if int(o.partition) >= len(partitions) {
			return fmt.Errorf("--partition %d: topic '%s' has partitions 0 to %d", o.partition, o.topic, len(partitions)-1)
		}
		partitions = []kafkit.TopicPartition{tp}
	}
	if err := c.Assign(partitions...); err != nil {
		return err
	}
	if o.offset == "" || o.offset == "earliest" || o.offset == "latest" {
		return nil // auto.offset.reset positions them
	}
	off, err := strconv.ParseInt(o.offset, 10, 64)
	if err != nil || off < 0 {
		return fmt.Errorf("--offset must be earliest, latest or a non-negative offset, got %q", o.offset)
	}
	return c.Seek(ctx, partitions[0], off)
}

// parseFormat compiles a --format string into a record printer.
func parseFormat(f string) (func(w *bufio.Writer, r *kafkit.Record), error) {
	type part func(w *bufio.Writer, r *kafkit.Record)
	var parts []part
	lit := func(s string) part { return func(w *bufio.Writer, _ *kafkit.Record) { w.WriteString(s) } }
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			parts = append(parts, lit(text.String()))
			text.Reset()
		}
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if (c != '%' && c != '\\') || i == len(f)-1 {
			if c == '%' || c == '\\' {
				return nil, fmt.Errorf("--format: %q ends with a lone %c", f, c)
			}
			text.WriteByte(c)
			continue
		}
		i++
		if c == '\\' {
			switch f[i] {
			case 'n':
				text.WriteByte('\n')
			case 't':
				text.WriteByte('\t')
			case '\\':
				text.WriteByte('\\')
			default:
				return nil, fmt.Errorf("--format: unknown escape \\%c", f[i])
			}
			continue
		}
		var p part
		switch f[i] {
		case '%':
			text.WriteByte('%')
			continue
		case 't':
			p = func(w *bufio.Writer, r *kafkit.Record) { w.WriteString(r.Topic) }
		case 'p':
			p = func(w *bufio.Writer, r *kafkit.Record) { w.WriteString(strconv.Itoa(int(r.Partition))) }
		case 'o':
			p = func(w *bufio.Writer, r *kafkit.Record) { w.WriteString(strconv.FormatInt(r.Offset, 10)) }
		case 'k':
			p = func(w *bufio.Writer, r *kafkit.Record) { w.Write(nullOr(r.Key)) }
		case 'v':
			p = func(w *bufio.Writer, r *kafkit.Record) { w.Write(nullOr(r.Value)) }
		case 'T':
			p = func(w *bufio.Writer, r *kafkit.Record) { w.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10)) }
		case 'h':
			p = func(w *bufio.Writer, r *kafkit.Record) {
				for j, h := range r.Headers {
					if j > 0 {
						w.WriteByte(',')
					}
					w.WriteString(h.Key)
					w.WriteByte('=')
					w.Write(h.Value)
				}
			}
		default:
			return nil, fmt.Errorf("--format: unknown directive %%%c (want %%t %%p %%o %%k %%v %%T %%h or %%%%)", f[i])
		}
		flush()
		parts = append(parts, p)
	}
	flush()
	return func(w *bufio.Writer, r *kafkit.Record) {
		for _, p := range parts {
			p(w, r)
		}
		w.WriteByte('\n')
	}, nil
}

// nullOr prints a null key or value as kafka-console-consumer does.
func nullOr(b []byte) []byte {
	if b == nil {
		return []byte("null")
	}
	return b
}
