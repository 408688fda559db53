package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// getOffsetsCmd is kafka-get-offsets.sh: one topic:partition:offset line per
// partition for --time (latest, earliest, max-timestamp or a timestamp).
func getOffsetsCmd(g *globals) *cobra.Command {
	var (
		topic, partitions, tps, at string
		excludeInternal            bool
	)
	cmd := &cobra.Command{
		Use:    "kafka-get-offsets --bootstrap-server HOST:PORT [--topic REGEX] [--partitions 0,1] [--time latest|earliest|max-timestamp|MS]",
		Short:  "kafka-get-offsets.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := offsetSpec(at)
			if err != nil {
				return err
			}
			if tps != "" && (topic != "" || partitions != "") {
				return fmt.Errorf("--topic-partitions cannot be used with --topic or --partitions")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				selected, err := selectPartitions(ctx, adm, topic, partitions, tps, excludeInternal)
				if err != nil {
					return err
				}
				offsets, err := adm.ListOffsets(ctx, spec, selected...)
				for _, tp := range selected {
					if o, ok := offsets[tp]; ok && o.Offset >= 0 {
						fmt.Fprintf(g.io.Out, "%s:%d:%d\n", tp.Topic, tp.Partition, o.Offset)
					}
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "the topic to get the offsets for; a regular expression; all topics without it")
	f.StringVar(&partitions, "partitions", "", "comma-separated partition ids (default all)")
	f.StringVar(&tps, "topic-partitions", "", "comma-separated topic-partition patterns: TOPIC_REGEX:PARTITION, TOPIC_REGEX:START-END, TOPIC_REGEX")
	f.StringVar(&at, "time", "latest", "-1 or latest / -2 or earliest / -3 or max-timestamp / a timestamp in ms")
	f.BoolVar(&excludeInternal, "exclude-internal-topics", false, "leave out internal topics")
	return cmd
}

// offsetSpec reads --time as kafka-get-offsets.sh does.
func offsetSpec(s string) (int64, error) {
	switch s {
	case "latest":
		return kafkit.OffsetLatest, nil
	case "earliest":
		return kafkit.OffsetEarliest, nil
	case "max-timestamp":
		return -3, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -3 {
		return 0, fmt.Errorf("--time: malformed time argument %q: use -1 or latest / -2 or earliest / -3 or max-timestamp, or a timestamp in milliseconds", s)
	}
	return n, nil
}

// selectPartitions resolves kafka-get-offsets.sh's topic and partition
// selectors, in topic then partition order.
func selectPartitions(ctx context.Context, adm *admin.Client, topic, partitions, tps string, excludeInternal bool) ([]kafkit.TopicPartition, error) {
	type selector struct {
		topic  *regexp.Regexp
		accept func(int32) bool
	}
	all := func(int32) bool { return true }
	var sels []selector
	compile := func(re string) (*regexp.Regexp, error) {
		if re == "" {
			re = ".*"
		}
		return regexp.Compile("^(?:" + re + ")$")
	}
	if tps == "" {
		re, err := compile(topic)
		if err != nil {
			return nil, fmt.Errorf("--topic: %w", err)
		}
		accept := all
		if partitions != "" {
			ids := map[int32]bool{}
			for p := range strings.SplitSeq(partitions, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
				if err != nil {
					return nil, fmt.Errorf("--partitions: %q is not a partition id", p)
				}
				ids[int32(n)] = true
			}
			accept = func(p int32) bool { return ids[p] }
		}
		sels = append(sels, selector{re, accept})
	}
	for spec := range strings.SplitSeq(tps, ",") {
		if tps == "" {
			break
		}
		name, part, hasPart := strings.Cut(spec, ":")
		re, err := compile(name)
		if err != nil {
			return nil, fmt.Errorf("--topic-partitions %s: %w", spec, err)
		}
		accept := all
		if hasPart {
			lo, hi, isRange := strings.Cut(part, "-")
			a, errA := strconv.ParseInt(lo, 10, 32)
			b, errB := a, error(nil)
			if isRange {
				b, errB = strconv.ParseInt(hi, 10, 32)
				if hi == "" {
					b, errB = 1<<31-1, nil
				} else {
					b-- // END is exclusive
				}
			}
			if errA != nil || errB != nil {
				return nil, fmt.Errorf("--topic-partitions %s: want TOPIC:PARTITION or TOPIC:START-END", spec)
			}
			accept = func(p int32) bool { return int64(p) >= a && int64(p) <= b }
		}
		sels = append(sels, selector{re, accept})
	}
	ds, err := adm.DescribeTopics(ctx)
	if err != nil {
		return nil, err
	}
	var out []kafkit.TopicPartition
	for _, d := range ds {
		if excludeInternal && d.Internal {
			continue
		}
		for _, p := range d.Partitions {
			if slices.ContainsFunc(sels, func(s selector) bool { return s.topic.MatchString(d.Name) && s.accept(p.Partition) }) {
				out = append(out, kafkit.TopicPartition{Topic: d.Name, Partition: p.Partition})
			}
		}
	}
	return out, nil
}

// deleteRecordsCmd is kafka-delete-records.sh: deletes records below the
// offsets of a JSON file, {"partitions":[{"topic":"t","partition":0,"offset":3}],"version":1}.
func deleteRecordsCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:    "kafka-delete-records --bootstrap-server HOST:PORT --offset-json-file FILE",
		Short:  "kafka-delete-records.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var plan struct {
				Partitions []struct {
					Topic     string `json:"topic"`
					Partition *int32 `json:"partition"`
					Offset    *int64 `json:"offset"`
				} `json:"partitions"`
			}
			if err := readJSONFile("--offset-json-file", file, &plan); err != nil {
				return err
			}
			before := map[kafkit.TopicPartition]int64{}
			for _, p := range plan.Partitions {
				if p.Topic == "" || p.Partition == nil || p.Offset == nil {
					return fmt.Errorf("--offset-json-file %s: every partition needs topic, partition and offset", file)
				}
				tp := kafkit.TopicPartition{Topic: p.Topic, Partition: *p.Partition}
				if _, dup := before[tp]; dup {
					return fmt.Errorf("offset json file contains duplicate topic partitions: %s-%d", tp.Topic, tp.Partition)
				}
				before[tp] = *p.Offset
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				fmt.Fprintln(g.io.Out, "Executing records delete operation")
				low, err := adm.DeleteRecords(ctx, before)
				fmt.Fprintln(g.io.Out, "Records delete operation completed:")
				for _, tp := range slices.SortedFunc(maps.Keys(before), compareTP) {
					if lw, ok := low[tp]; ok {
						fmt.Fprintf(g.io.Out, "partition: %s-%d\tlow_watermark: %d\n", tp.Topic, tp.Partition, lw)
					} else {
						fmt.Fprintf(g.io.Out, "partition: %s-%d\terror: %v\n", tp.Topic, tp.Partition, partitionErr(err, tp))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "offset-json-file", "", `REQUIRED: JSON file with the offset per partition: {"partitions":[{"topic":"foo","partition":1,"offset":1}],"version":1}`)
	cmd.MarkFlagRequired("offset-json-file")
	return cmd
}

// partitionErr picks tp's failure out of an admin call's joined error.
func partitionErr(err error, tp kafkit.TopicPartition) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	name := fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)
	for _, e := range errs {
		if ae := (*admin.Error)(nil); errors.As(e, &ae) && ae.Resource == name {
			return ae.Code
		}
	}
	return err
}

// apiVersionsCmd is kafka-broker-api-versions.sh: each broker's supported
// versions of every API, and the newest this client (kafkit, through kmsg)
// can use.
func apiVersionsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "kafka-broker-api-versions --bootstrap-server HOST:PORT",
		Short:  "kafka-broker-api-versions.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				cl, err := adm.DescribeCluster(ctx)
				if err != nil {
					return err
				}
				for _, b := range cl.Brokers {
					rack := "null"
					if b.Rack != "" {
						rack = b.Rack
					}
					fmt.Fprintf(g.io.Out, "%s:%d (id: %d rack: %s) -> ", b.Host, b.Port, b.ID, rack)
					vs, err := adm.APIVersions(ctx, b.ID)
					if err != nil {
						fmt.Fprintf(g.io.Out, "ERROR: %v\n", err)
						continue
					}
					fmt.Fprintf(g.io.Out, "(\n\t%s\n)\n", strings.Join(apiVersionLines(vs), ",\n\t"))
				}
				return nil
			})
		},
	}
}

// apiVersionLines formats versions as Kafka's NodeApiVersions does: by key,
// "Name(key): min to max [usable: v]".
func apiVersionLines(vs []admin.APIVersion) []string {
	vs = slices.SortedFunc(slices.Values(vs), func(a, b admin.APIVersion) int { return int(a.Key) - int(b.Key) })
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		name := kmsg.NameForKey(v.Key)
		if name == "Unknown" || name == "" {
			name = "UNKNOWN"
		}
		line := fmt.Sprintf("%s(%d): %d", name, v.Key, v.Min)
		if v.Max != v.Min {
			line += fmt.Sprintf(" to %d", v.Max)
		}
		if req := kmsg.RequestForKey(v.Key); req != nil {
			switch ours := req.MaxVersion(); {
			case ours < v.Min:
				line += " [unusable: node too new]"
			default:
				line += fmt.Sprintf(" [usable: %d]", min(ours, v.Max))
			}
		}
		out = append(out, line)
	}
	return out
}
