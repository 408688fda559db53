package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
	"github.com/spf13/cobra"
)

// producerPerfCmd is kafka-producer-perf-test.sh, on kafkit's producer: the
// same flags, payloads, throttle and output lines, so that figures quoted
// from Kafka's tool can be reproduced against any cluster.
func producerPerfCmd(g *globals) *cobra.Command {
	var (
		o          perfOpts
		props      []string
		configFile string
	)
	cmd := &cobra.Command{
		Use:    "kafka-producer-perf-test --topic T --num-records N (--record-size S | --payload-file F | --payload-monotonic) --throughput R [--producer-props k=v ...]",
		Short:  "kafka-producer-perf-test.sh, as Kafka ships it",
		Hidden: true,
		// --producer-props takes several values (k=v k2=v2) as Kafka's
		// argparse4j nargs("+"): the ones after the first arrive as args.
		Args: func(_ *cobra.Command, args []string) error {
			for _, a := range args {
				if !strings.Contains(a, "=") {
					return fmt.Errorf("unrecognized argument %q", a)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if configFile != "" {
				g.commandConfig = configFile
			}
			set, err := keyValues("--producer-props", append(props, args...), false)
			if err != nil {
				return err
			}
			if _, ok := set["client.id"]; !ok {
				set["client.id"] = "perf-producer-client"
			}
			if o.transactionalID != "" {
				set["transactional.id"] = o.transactionalID
			}
			if bs, ok := set["bootstrap.servers"]; ok && !cmd.Flags().Changed("bootstrap-server") {
				g.bootstrap = bs
			}
			cfg, err := clientConfig(g, set, producer.ConfigFromProperties,
				func(c *producer.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
			if err != nil {
				return err
			}
			payloads, err := o.payloads()
			if err != nil {
				return err
			}
			return producerPerf(cmd.Context(), cfg, o, payloads, g.io.Out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "REQUIRED: produce messages to this topic")
	f.Int64Var(&o.numRecords, "num-records", 0, "REQUIRED: number of messages to produce")
	f.IntVar(&o.recordSize, "record-size", 0, "message size in bytes (random capital letters)")
	f.StringVar(&o.payloadFile, "payload-file", "", "file of payloads, split by --payload-delimiter, sent in random order")
	f.BoolVar(&o.monotonic, "payload-monotonic", false, "payload is the record's number as text (1, 2, ...)")
	f.StringVar(&o.delimiter, "payload-delimiter", `\n`, "delimiter of --payload-file")
	f.Float64Var(&o.throughput, "throughput", 0, "REQUIRED: throttle to about this many messages/sec; -1 for no throttle")
	f.StringArrayVar(&props, "producer-props", nil, "producer configs k=v (several may follow the flag)")
	f.StringVar(&configFile, "producer.config", "", "producer config properties file")
	f.BoolVar(&o.printMetrics, "print-metrics", false, "accepted for compatibility; kafkit's producer exposes metrics through OpenTelemetry interceptors")
	f.StringVar(&o.transactionalID, "transactional-id", "", "produce in transactions with this transactional.id")
	f.Int64Var(&o.txnDurationMS, "transaction-duration-ms", 3000, "commit a transaction after this long (with --transactional-id)")
	for _, req := range []string{"topic", "num-records", "throughput"} {
		cmd.MarkFlagRequired(req)
	}
	return cmd
}

type perfOpts struct {
	topic                   string
	numRecords              int64
	recordSize              int
	payloadFile, delimiter  string
	monotonic, printMetrics bool
	throughput              float64
	transactionalID         string
	txnDurationMS           int64
}

// payloads reads --payload-file; nil when payloads are generated.
func (o perfOpts) payloads() ([][]byte, error) {
	set := 0
	for _, b := range []bool{o.recordSize > 0, o.payloadFile != "", o.monotonic} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("give exactly one of --record-size, --payload-file or --payload-monotonic")
	}
	if o.numRecords <= 0 {
		return nil, fmt.Errorf("--num-records must be positive, got %d", o.numRecords)
	}
	if o.payloadFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(o.payloadFile)
	if err != nil {
		return nil, fmt.Errorf("--payload-file: %w", err)
	}
	var out [][]byte
	for p := range bytes.SplitSeq(data, []byte(unescape(o.delimiter))) {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--payload-file %s: no payload", o.payloadFile)
	}
	return out, nil
}

func producerPerf(ctx context.Context, cfg producer.Config, o perfOpts, payloads [][]byte, out io.Writer) error {
	p, err := producer.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	txn := o.transactionalID != ""
	if txn {
		if err := p.InitTransactions(ctx); err != nil {
			return err
		}
	}
	st := newPerfStats(o.numRecords, 5*time.Second, out)
	rng := rand.New(rand.NewPCG(0, 0))
	var payload []byte
	if o.recordSize > 0 {
		payload = make([]byte, o.recordSize)
	}
	var (
		errMu    sync.Mutex // guards firstErr, set from the producer's callbacks
		firstErr error
		txnStart time.Time
		inTxn    bool
	)
	start := time.Now()
	for i := range o.numRecords {
		switch {
		case payloads != nil:
			payload = payloads[rng.IntN(len(payloads))]
		case o.monotonic:
			payload = strconv.AppendInt(payload[:0], i, 10)
		default:
			for j := range payload {
				payload[j] = byte(rng.IntN(26) + 'A')
			}
		}
		if txn && !inTxn {
			if err := p.BeginTransaction(); err != nil {
				return err
			}
			txnStart, inTxn = time.Now(), true
		}
		sent := time.Now()
		size := len(payload)
		err := p.Send(ctx, &kafkit.Record{Topic: o.topic, Partition: kafkit.AnyPartition, Value: bytes.Clone(payload)},
			func(_ *kafkit.Record, err error) {
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				st.record(time.Since(sent), size)
			})
		if err != nil {
			return err
		}
		if txn && time.Since(txnStart) >= time.Duration(o.txnDurationMS)*time.Millisecond {
			if err := p.CommitTransaction(ctx); err != nil {
				return err
			}
			inTxn = false
		}
		if o.throughput > 0 {
			// Kafka's ThroughputThrottler: never ahead of the target rate.
			if ahead := time.Duration(float64(i+1)/o.throughput*float64(time.Second)) - time.Since(start); ahead > 0 {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	if inTxn {
		if err := p.CommitTransaction(ctx); err != nil {
			return err
		}
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	st.printTotal()
	errMu.Lock()
	defer errMu.Unlock()
	return firstErr
}

// perfStats is ProducerPerformance.Stats: windowed progress lines every
// interval and a total line with sampled latency percentiles (at most
// 500,000 samples).
type perfStats struct {
	mu        sync.Mutex // guards everything below; record runs on the producer's goroutines
	out       io.Writer
	interval  time.Duration
	start     time.Time
	sampling  int64
	latencies []int64 // ms
	iteration int64

	count, bytes, totalLatency, maxLatency int64
	window                                 struct {
		start                              time.Time
		count, bytes, totalLatency, maxLat int64
	}
}

func newPerfStats(numRecords int64, interval time.Duration, out io.Writer) *perfStats {
	s := &perfStats{out: out, interval: interval, start: time.Now(), sampling: numRecords / min(numRecords, 500000)}
	s.latencies = make([]int64, 0, numRecords/s.sampling+1)
	s.window.start = s.start
	return s
}

func (s *perfStats) record(latency time.Duration, bytes int) {
	ms := latency.Milliseconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.bytes += int64(bytes)
	s.totalLatency += ms
	s.maxLatency = max(s.maxLatency, ms)
	w := &s.window
	w.count++
	w.bytes += int64(bytes)
	w.totalLatency += ms
	w.maxLat = max(w.maxLat, ms)
	if s.iteration%s.sampling == 0 {
		s.latencies = append(s.latencies, ms)
	}
	s.iteration++
	if now := time.Now(); now.Sub(w.start) >= s.interval {
		elapsed := now.Sub(w.start).Seconds()
		fmt.Fprintf(s.out, "%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.\n",
			w.count, float64(w.count)/elapsed, float64(w.bytes)/elapsed/(1024*1024),
			float64(w.totalLatency)/float64(w.count), float64(w.maxLat))
		*w = struct {
			start                              time.Time
			count, bytes, totalLatency, maxLat int64
		}{start: now}
	}
}

func (s *perfStats) printTotal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := time.Since(s.start).Seconds()
	slices.Sort(s.latencies)
	perc := func(q float64) int64 {
		if len(s.latencies) == 0 {
			return 0
		}
		return s.latencies[int(q*float64(len(s.latencies)))]
	}
	avg := 0.0
	if s.count > 0 {
		avg = float64(s.totalLatency) / float64(s.count)
	}
	fmt.Fprintf(s.out, "%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.\n",
		s.count, float64(s.count)/elapsed, float64(s.bytes)/elapsed/(1024*1024), avg, float64(s.maxLatency),
		perc(0.5), perc(0.95), perc(0.99), perc(0.999))
}

// consumerPerfCmd is kafka-consumer-perf-test.sh, on kafkit's consumer: it
// reads --messages records of --topic in a group and prints Kafka's CSV
// header and row.
func consumerPerfCmd(g *globals) *cobra.Command {
	var (
		topic, group, configFile, dateFormat string
		messages, timeoutMS                  int64
		fromLatest, hideHeader               bool
		fetchSize                            int32
	)
	cmd := &cobra.Command{
		Use:    "kafka-consumer-perf-test --bootstrap-server HOST:PORT --topic T --messages N [--group G]",
		Short:  "kafka-consumer-perf-test.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if messages <= 0 {
				return fmt.Errorf("--messages must be positive, got %d", messages)
			}
			if configFile != "" {
				g.commandConfig = configFile
			}
			if group == "" {
				group = fmt.Sprintf("perf-consumer-%d", rand.IntN(100000))
			}
			reset := consumer.OffsetResetEarliest
			if fromLatest {
				reset = consumer.OffsetResetLatest
			}
			cfg, err := clientConfig(g, map[string]string{
				"group.id":                  group,
				"auto.offset.reset":         reset,
				"enable.auto.commit":        "false",
				"max.partition.fetch.bytes": strconv.Itoa(int(fetchSize)),
				"client.id":                 "perf-consumer-client",
			}, consumer.ConfigFromProperties, func(c *consumer.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
			if err != nil {
				return err
			}
			var joined time.Time
			cfg.OnAssigned = func([]kafkit.TopicPartition) {
				if joined.IsZero() {
					joined = time.Now()
				}
			}
			ctx := cmd.Context()
			c, err := consumer.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer c.Close(context.WithoutCancel(ctx))
			if !hideHeader {
				fmt.Fprintln(g.io.Out, "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
			}
			start := time.Now()
			if err := c.Subscribe(topic); err != nil {
				return err
			}
			var n, nbytes int64
			last := time.Now()
			for n < messages && time.Since(last) <= time.Duration(timeoutMS)*time.Millisecond {
				pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				recs, err := c.Poll(pctx)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if len(recs) > 0 {
					last = time.Now()
				}
				for _, r := range recs {
					n++
					nbytes += int64(len(r.Key) + len(r.Value))
				}
			}
			end := time.Now()
			if n < messages {
				fmt.Fprintf(g.io.Out, "WARNING: Exiting before consuming the expected number of messages: timeout (%d ms) exceeded. You can use the --timeout option to increase the timeout.\n", timeoutMS)
			}
			joinMS := int64(0)
			if !joined.IsZero() {
				joinMS = joined.Sub(start).Milliseconds()
			}
			elapsed := end.Sub(start).Seconds()
			fetchMS := end.Sub(start).Milliseconds() - joinMS
			mb := float64(nbytes) / (1024 * 1024)
			fmt.Fprintf(g.io.Out, "%s, %s, %.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f\n",
				javaDate(start, dateFormat), javaDate(end, dateFormat), mb, mb/elapsed, n, float64(n)/elapsed,
				joinMS, fetchMS, mb/(float64(fetchMS)/1000), float64(n)/(float64(fetchMS)/1000))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "REQUIRED: the topic to consume from")
	f.StringVar(&group, "group", "", "the group id to consume on (default perf-consumer-<random>)")
	f.Int64Var(&messages, "messages", 0, "REQUIRED: the number of messages to consume")
	f.Int64Var(&timeoutMS, "timeout", 10000, "the maximum allowed time in milliseconds between returned records")
	f.BoolVar(&fromLatest, "from-latest", false, "start from the latest offset when the group has no committed offset (default earliest)")
	f.Int32Var(&fetchSize, "fetch-size", 1024*1024, "the amount of data to fetch per partition in a single request")
	f.StringVar(&configFile, "consumer.config", "", "consumer config properties file")
	f.StringVar(&dateFormat, "date-format", "yyyy-MM-dd HH:mm:ss:SSS", "the date format of the time fields (Java SimpleDateFormat letters y M d H m s S)")
	f.BoolVar(&hideHeader, "hide-header", false, "skip the header line")
	f.Bool("print-metrics", false, "accepted for compatibility")
	f.Bool("show-detailed-stats", false, "accepted for compatibility; only the summary row is printed")
	f.Int64("reporting-interval", 5000, "accepted for compatibility")
	f.Int("socket-buffer-size", 2*1024*1024, "accepted for compatibility")
	cmd.MarkFlagRequired("topic")
	cmd.MarkFlagRequired("messages")
	return cmd
}

// javaDate formats t with the SimpleDateFormat letters the perf tools'
// --date-format uses (yyyy MM dd HH mm ss SSS).
func javaDate(t time.Time, f string) string {
	return strings.NewReplacer("yyyy", fmt.Sprintf("%04d", t.Year()), "MM", fmt.Sprintf("%02d", int(t.Month())),
		"dd", fmt.Sprintf("%02d", t.Day()), "HH", fmt.Sprintf("%02d", t.Hour()), "mm", fmt.Sprintf("%02d", t.Minute()),
		"ss", fmt.Sprintf("%02d", t.Second()), "SSS", fmt.Sprintf("%03d", t.Nanosecond()/1e6)).Replace(f)
}
