package cli

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/spf13/cobra"
)

// consoleProducerCmd is kafka-console-producer.sh: lines of stdin become
// records, configured with Kafka's flags and --property reader settings.
func consoleProducerCmd(g *globals) *cobra.Command {
	var (
		o                      produceOpts
		props                  []string
		acks, codec, producerC string
		sync                   bool
		lingerMS, batchSize    int64
	)
	cmd := &cobra.Command{
		Use:    "kafka-console-producer --bootstrap-server HOST:PORT --topic T [--property parse.key=true] ...",
		Short:  "kafka-console-producer.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reader, err := keyValues("--property", props, false)
			if err != nil {
				return err
			}
			if err := o.readerProperties(reader); err != nil {
				return err
			}
			if producerC != "" {
				g.commandConfig = producerC
			}
			o.acks, o.compression = acks, codec
			o.partition, o.progressEvery = kafkit.AnyPartition, 100000
			if cmd.Flags().Changed("timeout") {
				o.properties = append(o.properties, fmt.Sprintf("linger.ms=%d", lingerMS))
			}
			if cmd.Flags().Changed("batch-size") {
				o.properties = append(o.properties, fmt.Sprintf("batch.size=%d", batchSize))
			}
			if sync {
				o.properties = append(o.properties, "linger.ms=0", "max.in.flight.requests.per.connection=1")
			}
			return g.produce(cmd.Context(), o, g.io.In)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "REQUIRED: the topic id to produce messages to")
	f.StringArrayVar(&props, "property", nil, "reader settings: parse.key, key.separator, parse.headers, headers.delimiter, headers.separator, headers.key.separator, null.marker, ignore.error")
	f.StringArrayVar(&o.properties, "producer-property", nil, "producer config key=value")
	f.StringVar(&producerC, "producer.config", "", "producer config properties file")
	f.StringVar(&acks, "request-required-acks", "-1", "the required acks of the producer requests")
	f.StringVar(&codec, "compression-codec", "none", "none, gzip, snappy, lz4 or zstd; gzip when given without a value")
	f.Lookup("compression-codec").NoOptDefVal = "gzip"
	f.BoolVar(&sync, "sync", false, "send each message synchronously")
	f.Int64Var(&lingerMS, "timeout", 1000, "linger.ms: how long a batch waits for more messages")
	f.Int64Var(&batchSize, "batch-size", 16384, "batch.size in bytes")
	cmd.MarkFlagRequired("topic")
	return cmd
}

// readerProperties applies kafka-console-producer.sh's LineMessageReader
// settings (--property) to o, with their Kafka defaults.
func (o *produceOpts) readerProperties(p map[string]string) error {
	o.keySeparator, o.headersDelimiter, o.headersSeparator, o.headerKeySeparator = "\t", "\t", ",", ":"
	for k, v := range p {
		switch k {
		case "parse.key":
			o.parseKey = strings.EqualFold(v, "true")
		case "key.separator":
			o.keySeparator = v
		case "parse.headers":
			o.parseHeaders = strings.EqualFold(v, "true")
		case "headers.delimiter":
			o.headersDelimiter = v
		case "headers.separator":
			o.headersSeparator = v
		case "headers.key.separator":
			o.headerKeySeparator = v
		case "null.marker":
			o.nullMarker = v
		case "ignore.error":
		default:
			return fmt.Errorf("--property %s: unknown reader property (want parse.key, key.separator, parse.headers, headers.delimiter, headers.separator, headers.key.separator, null.marker or ignore.error)", k)
		}
	}
	return nil
}

// consoleConsumerCmd is kafka-console-consumer.sh: records printed with
// Kafka's DefaultMessageFormatter and its --property print.* settings.
func consoleConsumerCmd(g *globals) *cobra.Command {
	var (
		o         consumeOpts
		props     []string
		consumerC string
		timeoutMS int64
	)
	cmd := &cobra.Command{
		Use:    "kafka-console-consumer --bootstrap-server HOST:PORT --topic T [--from-beginning] [--group G] ...",
		Short:  "kafka-console-consumer.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmtProps, err := keyValues("--property", props, false)
			if err != nil {
				return err
			}
			if o.printer, err = messageFormatter(fmtProps); err != nil {
				return err
			}
			if consumerC != "" {
				g.commandConfig = consumerC
			}
			if o.group == "" {
				// --consumer-property group.id=g joins a group too.
				for _, kv := range o.properties {
					if k, v, _ := strings.Cut(kv, "="); k == "group.id" {
						o.group = v
					}
				}
			}
			if o.partition < 0 {
				o.offset = "" // Kafka ignores --offset without --partition's "latest" default
			}
			o.timeout = time.Duration(timeoutMS) * time.Millisecond
			return g.consume(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "the topic to consume on")
	f.StringVar(&o.group, "group", "", "the consumer group id of the consumer")
	f.BoolVar(&o.fromBeginning, "from-beginning", false, "start with the earliest message present in the log rather than the latest")
	f.IntVar(&o.maxMessages, "max-messages", 0, "the maximum number of messages to consume before exiting")
	f.Int32Var(&o.partition, "partition", -1, "the partition to consume from")
	f.StringVar(&o.offset, "offset", "latest", "the offset to consume from (a non-negative number), or 'earliest' or 'latest'")
	f.StringArrayVar(&props, "property", nil, "formatter settings: print.timestamp, print.key, print.offset, print.partition, print.headers, print.value, key.separator, line.separator, headers.separator, null.literal")
	f.StringArrayVar(&o.properties, "consumer-property", nil, "consumer config key=value")
	f.StringVar(&consumerC, "consumer.config", "", "consumer config properties file")
	f.StringVar(&o.isolationLevel, "isolation-level", "read_uncommitted", "read_committed or read_uncommitted")
	f.Int64Var(&timeoutMS, "timeout-ms", 0, "exit if no message is available for consumption for this long")
	cmd.MarkFlagRequired("topic")
	return cmd
}

// messageFormatter builds Kafka's DefaultMessageFormatter from its
// --property settings: timestamp, partition, offset, headers and key, each
// followed by key.separator, then the value and line.separator.
func messageFormatter(p map[string]string) (func(*bufio.Writer, *kafkit.Record), error) {
	flag := func(k string, def bool) (bool, error) {
		v, ok := p[k]
		if !ok {
			return def, nil
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("--property %s: want true or false, got %q", k, v)
		}
		return b, nil
	}
	str := func(k, def string) string {
		if v, ok := p[k]; ok {
			return unescape(v)
		}
		return def
	}
	var (
		on  = map[string]bool{}
		err error
	)
	for _, k := range []string{"print.timestamp", "print.partition", "print.offset", "print.headers", "print.key", "print.value"} {
		if on[k], err = flag(k, k == "print.value"); err != nil {
			return nil, err
		}
	}
	sep, lineSep, hdrSep, null := str("key.separator", "\t"), str("line.separator", "\n"), str("headers.separator", ","), str("null.literal", "null")
	bytesOr := func(b []byte) string {
		if b == nil {
			return null
		}
		return string(b)
	}
	var fields []func(*bufio.Writer, *kafkit.Record)
	if on["print.timestamp"] {
		fields = append(fields, func(w *bufio.Writer, r *kafkit.Record) {
			kind := "CreateTime"
			if r.TimestampType == kafkit.LogAppendTime {
				kind = "LogAppendTime"
			}
			fmt.Fprintf(w, "%s:%d", kind, r.Timestamp.UnixMilli())
		})
	}
	if on["print.partition"] {
		fields = append(fields, func(w *bufio.Writer, r *kafkit.Record) { fmt.Fprintf(w, "Partition:%d", r.Partition) })
	}
	if on["print.offset"] {
		fields = append(fields, func(w *bufio.Writer, r *kafkit.Record) { fmt.Fprintf(w, "Offset:%d", r.Offset) })
	}
	if on["print.headers"] {
		fields = append(fields, func(w *bufio.Writer, r *kafkit.Record) {
			if len(r.Headers) == 0 {
				w.WriteString("NO_HEADERS")
			}
			for i, h := range r.Headers {
				if i > 0 {
					w.WriteString(hdrSep)
				}
				w.WriteString(h.Key + ":" + bytesOr(h.Value))
			}
		})
	}
	if on["print.key"] {
		fields = append(fields, func(w *bufio.Writer, r *kafkit.Record) { w.WriteString(bytesOr(r.Key)) })
	}
	printValue := on["print.value"]
	return func(w *bufio.Writer, r *kafkit.Record) {
		for i, f := range fields {
			f(w, r)
			if i < len(fields)-1 || printValue {
				w.WriteString(sep)
			}
		}
		if printValue {
			w.WriteString(bytesOr(r.Value))
			w.WriteString(lineSep)
		}
	}, nil
}

// unescape reads the \t, \n and \\ that shells pass through literally.
func unescape(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\r`, "\r", `\\`, `\`).Replace(s)
}
