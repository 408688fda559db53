package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/producer"
	"github.com/spf13/cobra"
)

type produceOpts struct {
	topic, file       string
	keySeparator      string
	parseKey          bool
	headers           []string
	acks, compression string
	progress          bool
	progressEvery     int
	partition         int32
	properties        []string // --producer-property key=value

	// kafka-console-producer.sh's reader settings (--property).
	parseHeaders                                           bool
	headersDelimiter, headersSeparator, headerKeySeparator string
	nullMarker                                             string
}

func produceCmd(g *globals) *cobra.Command {
	var o produceOpts
	cmd := &cobra.Command{
		Use:   "produce --topic NAME [--file F] [--parse-key] [--header k=v]...",
		Short: "Send each line of stdin (or --file) as a record (like kafka-console-producer.sh)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := g.io.In
			if o.file != "" {
				f, err := os.Open(o.file)
				if err != nil {
					return fmt.Errorf("--file: %w", err)
				}
				defer f.Close()
				in = f
			}
			return g.produce(cmd.Context(), o, in)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "topic to write to")
	f.StringVar(&o.file, "file", "", "read lines from this file instead of stdin")
	f.StringVar(&o.keySeparator, "key-separator", "\t", "separates key from value with --parse-key")
	f.BoolVar(&o.parseKey, "parse-key", false, "each line is key<separator>value")
	f.StringArrayVar(&o.headers, "header", nil, "header key=value added to every record (repeatable)")
	f.StringVar(&o.acks, "acks", "all", "acks: all, -1, 0 or 1")
	f.StringVar(&o.compression, "compression", "none", "compression.type: none, gzip, snappy, lz4, zstd")
	f.Int32Var(&o.partition, "partition", kafkit.AnyPartition, "partition to write to (default: the partitioner chooses)")
	f.StringArrayVar(&o.properties, "producer-property", nil, "producer property key=value, e.g. linger.ms=5 (repeatable)")
	f.BoolVar(&o.progress, "progress", false, "print progress on stderr (default when stderr is a terminal)")
	f.IntVar(&o.progressEvery, "progress-every", 100000, "lines between progress lines")
	cmd.MarkFlagRequired("topic")
	return cmd
}

func (g *globals) produce(ctx context.Context, o produceOpts, in io.Reader) error {
	if o.progressEvery <= 0 {
		return fmt.Errorf("--progress-every must be positive, got %d", o.progressEvery)
	}
	if o.parseKey && o.keySeparator == "" {
		return errors.New("--key-separator must not be empty with --parse-key")
	}
	headers, err := parseHeaders(o.headers)
	if err != nil {
		return err
	}
	// Check the topic first: the producer would wait max.block.ms for it.
	if err := g.withAdminCtx(ctx, func(ctx context.Context, adm *admin.Client) error {
		_, err := adm.DescribeTopics(ctx, o.topic)
		return unknownTopic(err, []string{o.topic})
	}); err != nil {
		return err
	}
	set := map[string]string{
		"acks":             o.acks,
		"compression.type": o.compression,
		"client.id":        "kafkit-console-producer",
	}
	for _, kv := range o.properties {
		k, v, err := keyValue("--producer-property", kv)
		if err != nil {
			return err
		}
		set[k] = v
	}
	cfg, err := clientConfig(g, set, producer.ConfigFromProperties, func(c *producer.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
	if err != nil {
		return err
	}
	p, err := producer.New(cfg)
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex // guards sendErr, set by callbacks on the producer's goroutines
		sendErr error
	)
	onAck := func(_ *kafkit.Record, err error) {
		if err != nil {
			mu.Lock()
			if sendErr == nil {
				sendErr = err
			}
			mu.Unlock()
		}
	}
	progress := o.progress || isTerminal(g.io.Err)
	r := bufio.NewReaderSize(in, 1<<16)
	n := 0
	for {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			p.Close(ctx)
			return fmt.Errorf("reading input: %w", rerr)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) > 0 || rerr == nil {
			rec, err := o.parseLine(line, headers)
			if err != nil {
				p.Close(ctx)
				return fmt.Errorf("line %d: %w", n+1, err)
			}
			if err := p.Send(ctx, rec, onAck); err != nil {
				p.Close(ctx)
				return err
			}
			n++
			if progress && n%o.progressEvery == 0 {
				fmt.Fprintf(g.io.Err, "%d messages sent\n", n)
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := p.Flush(ctx); err != nil {
		p.Close(ctx)
		return err
	}
	if err := p.Close(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if sendErr != nil {
		return sendErr
	}
	if progress {
		fmt.Fprintf(g.io.Err, "Produced a total of %d messages\n", n)
	}
	return nil
}

// parseLine makes a record of one input line: [headers<delim>][key<sep>]value,
// as --parse-key (and kafka-console-producer.sh's parse.headers) ask.
func (o *produceOpts) parseLine(line []byte, headers []kafkit.Header) (*kafkit.Record, error) {
	rec := &kafkit.Record{Topic: o.topic, Partition: o.partition, Value: line, Headers: headers}
	if o.parseHeaders {
		hs, rest, ok := bytes.Cut(line, []byte(o.headersDelimiter))
		if !ok {
			return nil, fmt.Errorf("no headers delimiter %q (parse.headers)", o.headersDelimiter)
		}
		rec.Value = rest
		for h := range strings.SplitSeq(string(hs), o.headersSeparator) {
			k, v, ok := strings.Cut(h, o.headerKeySeparator)
			if !ok {
				return nil, fmt.Errorf("header %q has no key separator %q", h, o.headerKeySeparator)
			}
			rec.Headers = append(rec.Headers, kafkit.Header{Key: k, Value: o.nullable([]byte(v))})
		}
	}
	if o.parseKey {
		k, v, ok := bytes.Cut(rec.Value, []byte(o.keySeparator))
		if !ok {
			return nil, fmt.Errorf("no key separator %q (--parse-key)", o.keySeparator)
		}
		rec.Key, rec.Value = o.nullable(k), v
	}
	rec.Value = o.nullable(rec.Value)
	return rec, nil
}

// nullable is nil for the null.marker, so that it produces a null.
func (o *produceOpts) nullable(b []byte) []byte {
	if o.nullMarker != "" && string(b) == o.nullMarker {
		return nil
	}
	return b
}

func parseHeaders(hs []string) ([]kafkit.Header, error) {
	var out []kafkit.Header
	for _, h := range hs {
		k, v, err := keyValue("--header", h)
		if err != nil {
			return nil, err
		}
		out = append(out, kafkit.Header{Key: k, Value: []byte(v)})
	}
	return out, nil
}

// keyValue splits a key=value flag value.
func keyValue(flag, s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("%s: want key=value, got %q", flag, s)
	}
	return key, value, nil
}

// isTerminal reports whether w is a terminal, where progress lines help.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
