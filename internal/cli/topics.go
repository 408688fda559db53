package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

func topicsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "topics", Short: "Create, list, describe, alter and delete topics (like kafka-topics.sh)"}
	cmd.AddCommand(topicsCreateCmd(g), topicsListCmd(g), topicsDescribeCmd(g), topicsAlterCmd(g), topicsDeleteCmd(g))
	return cmd
}

func topicsCreateCmd(g *globals) *cobra.Command {
	var (
		nt                        admin.NewTopic
		configs                   []string
		ifNotExists, validateOnly bool
	)
	cmd := &cobra.Command{
		Use:   "create --topic NAME [--partitions N] [--replication-factor R] [--config k=v]...",
		Short: "Create a topic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if nt.Configs, err = keyValues("--config", configs, false); err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				res, err := adm.CreateTopics(ctx, validateOnly, nt)
				if ifNotExists && errors.Is(err, kerr.TopicAlreadyExists) {
					return nil
				}
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, res[0])
				}
				if g.kafkaTool != "" && strings.ContainsAny(nt.Name, "._") {
					fmt.Fprintln(g.io.Out, "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.")
				}
				if validateOnly {
					_, err = fmt.Fprintf(g.io.Out, "Topic %s is valid; not created (--validate-only).\n", nt.Name)
					return err
				}
				_, err = fmt.Fprintf(g.io.Out, "Created topic %s.\n", nt.Name)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&nt.Name, "topic", "", "topic to create")
	f.Int32Var(&nt.Partitions, "partitions", 0, "number of partitions (default: the broker's num.partitions)")
	f.Int16Var(&nt.ReplicationFactor, "replication-factor", 0, "replicas per partition (default: the broker's default.replication.factor)")
	f.StringArrayVar(&configs, "config", nil, "topic config override key=value (repeatable)")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	f.BoolVar(&validateOnly, "validate-only", false, "only check that the broker would create the topic")
	cmd.MarkFlagRequired("topic")
	return cmd
}

func topicsListCmd(g *globals) *cobra.Command {
	var (
		excludeInternal bool
		patterns        []string
	)
	cmd := &cobra.Command{
		Use:   "list [--topic REGEX]...",
		Short: "List topic names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				names, err := matchTopics(ctx, adm, patterns, excludeInternal, true)
				if len(patterns) == 0 {
					names, err = adm.ListTopics(ctx, !excludeInternal)
				}
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, names)
				}
				for _, n := range names {
					fmt.Fprintln(g.io.Out, n)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics (__consumer_offsets, ...)")
	cmd.Flags().StringArrayVar(&patterns, "topic", nil, "list only topics matching this regular expression (repeatable)")
	return cmd
}

// topicDescription is describe's JSON output: the topic with its config
// overrides.
type topicDescription struct {
	admin.TopicDescription
	ReplicationFactor int
	Configs           map[string]string
}

func topicsDescribeCmd(g *globals) *cobra.Command {
	var (
		patterns                  []string
		excludeInternal, ifExists bool
		filter                    partitionFilter
	)
	cmd := &cobra.Command{
		Use:   "describe [--topic NAME|REGEX]... [--under-replicated-partitions | --unavailable-partitions | ...]",
		Short: "Describe topics: partitions, leaders, replicas, ISR and config overrides (all topics without --topic)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := filter.check(); err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				topics, err := matchTopics(ctx, adm, patterns, excludeInternal, ifExists)
				if err != nil || (len(topics) == 0 && len(patterns) > 0) {
					return err
				}
				ds, err := adm.DescribeTopics(ctx, topics...)
				if err != nil {
					return unknownTopic(err, topics)
				}
				cl, err := adm.DescribeCluster(ctx)
				if err != nil {
					return err
				}
				live := map[int32]bool{}
				for _, b := range cl.Brokers {
					live[b.ID] = true
				}
				var out []topicDescription
				for _, d := range ds {
					if excludeInternal && d.Internal {
						continue
					}
					rcs, err := adm.DescribeConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: d.Name})
					if err != nil {
						return err
					}
					td := topicDescription{TopicDescription: d, ReplicationFactor: d.ReplicationFactor(), Configs: map[string]string{}}
					for _, e := range rcs[0].Overrides() {
						if e.Value != nil {
							td.Configs[e.Name] = *e.Value
						}
					}
					minISR := 1
					for _, e := range rcs[0].Entries {
						if e.Name == "min.insync.replicas" && e.Value != nil {
							minISR, _ = strconv.Atoi(*e.Value)
						}
					}
					if filter.topicsWithOverrides && len(td.Configs) == 0 {
						continue
					}
					if filter.partitionLevel() {
						td.Partitions = slices.DeleteFunc(td.Partitions, func(p admin.PartitionInfo) bool { return !filter.keep(p, minISR, live) })
						if len(td.Partitions) == 0 {
							continue
						}
					}
					out = append(out, td)
				}
				if g.output == "json" {
					return printJSON(g.io.Out, out)
				}
				for _, td := range out {
					writeTopic(g.io.Out, td, !filter.partitionLevel(), !filter.topicsWithOverrides)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&patterns, "topic", nil, "topic to describe, or a regular expression (repeatable; default all)")
	f.BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics")
	f.BoolVar(&ifExists, "if-exists", false, "succeed when no topic matches --topic")
	f.BoolVar(&filter.underReplicated, "under-replicated-partitions", false, "only partitions whose ISR is smaller than their replica set")
	f.BoolVar(&filter.unavailable, "unavailable-partitions", false, "only partitions without a leader, or whose leader is not a live broker")
	f.BoolVar(&filter.underMinISR, "under-min-isr-partitions", false, "only partitions whose ISR is smaller than min.insync.replicas")
	f.BoolVar(&filter.atMinISR, "at-min-isr-partitions", false, "only partitions whose ISR equals min.insync.replicas")
	f.BoolVar(&filter.topicsWithOverrides, "topics-with-overrides", false, "only topics with config overrides, without their partitions")
	return cmd
}

// partitionFilter is describe's kafka-topics.sh filters; at most one is set.
type partitionFilter struct {
	underReplicated, unavailable, underMinISR, atMinISR, topicsWithOverrides bool
}

func (f partitionFilter) check() error {
	n := 0
	for _, b := range []bool{f.underReplicated, f.unavailable, f.underMinISR, f.atMinISR, f.topicsWithOverrides} {
		if b {
			n++
		}
	}
	if n > 1 {
		return errors.New("only one of --under-replicated-partitions, --unavailable-partitions, --under-min-isr-partitions, --at-min-isr-partitions and --topics-with-overrides can be given")
	}
	return nil
}

func (f partitionFilter) partitionLevel() bool {
	return f.underReplicated || f.unavailable || f.underMinISR || f.atMinISR
}

// keep says whether p passes the filter, as kafka-topics.sh decides it.
func (f partitionFilter) keep(p admin.PartitionInfo, minISR int, live map[int32]bool) bool {
	hasLeader := p.Leader >= 0
	switch {
	case f.underReplicated:
		return len(p.ISR) < len(p.Replicas)
	case f.unavailable:
		return !hasLeader || !live[p.Leader]
	case f.underMinISR:
		return !hasLeader || len(p.ISR) < minISR
	case f.atMinISR:
		return len(p.ISR) == minISR
	}
	return true
}

// matchTopics resolves --topic values as kafka-topics.sh does: each is a
// regular expression matched against whole names (a plain name matches
// itself). No value means every topic. Unless ifExists, a value that
// matches nothing fails with errUnknownTopic.
func matchTopics(ctx context.Context, adm *admin.Client, patterns []string, excludeInternal, ifExists bool) ([]string, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	names, err := adm.ListTopics(ctx, !excludeInternal)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pat := range patterns {
		re, err := regexp.Compile("^(?:" + pat + ")$")
		if err != nil {
			return nil, fmt.Errorf("--topic %q: %w", pat, err)
		}
		matched := false
		for _, n := range names {
			if re.MatchString(n) {
				matched = true
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		if !matched && !ifExists {
			return nil, errUnknownTopic(pat)
		}
	}
	return out, nil
}

// writeTopic prints a topic as kafka-topics.sh --describe does: its line
// (unless a partition filter is on) and its partitions' (unless only
// topics are asked for).
func writeTopic(w io.Writer, td topicDescription, topicLine, partitions bool) {
	var cfgs []string
	for _, k := range sortedKeys(td.Configs) {
		cfgs = append(cfgs, k+"="+td.Configs[k])
	}
	if topicLine {
		fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
			td.Name, td.ID, len(td.Partitions), td.ReplicationFactor, strings.Join(cfgs, ","))
	}
	if !partitions {
		return
	}
	for _, p := range td.Partitions {
		fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s",
			td.Name, p.Partition, leaderString(p.Leader), joinInt32(p.Replicas), joinInt32(p.ISR))
		if len(p.OfflineReplicas) > 0 {
			fmt.Fprintf(w, "\tOffline: %s", joinInt32(p.OfflineReplicas))
		}
		fmt.Fprintln(w)
	}
}

func leaderString(id int32) string {
	if id < 0 {
		return "none"
	}
	return fmt.Sprint(id)
}

func topicsAlterCmd(g *globals) *cobra.Command {
	var (
		topic      string
		partitions int32
		ifExists   bool
	)
	cmd := &cobra.Command{
		Use:   "alter --topic NAME|REGEX --partitions N",
		Short: "Raise a topic's partition count (partitions cannot be removed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				names, err := matchTopics(ctx, adm, []string{topic}, false, ifExists)
				if err != nil || len(names) == 0 {
					return err
				}
				totals := map[string]int32{}
				for _, n := range names {
					totals[n] = partitions
				}
				if err := adm.CreatePartitions(ctx, false, totals); err != nil {
					return unknownTopic(err, names)
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Topics": names, "Partitions": partitions})
				}
				for _, n := range names {
					if g.kafkaTool == "" { // kafka-topics.sh prints nothing
						fmt.Fprintf(g.io.Out, "Topic %s now has %d partitions.\n", n, partitions)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic to alter")
	cmd.Flags().Int32Var(&partitions, "partitions", 0, "the new total number of partitions")
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed when no topic matches --topic")
	cmd.MarkFlagRequired("topic")
	cmd.MarkFlagRequired("partitions")
	return cmd
}

func topicsDeleteCmd(g *globals) *cobra.Command {
	var (
		topics   []string
		ifExists bool
	)
	cmd := &cobra.Command{
		Use:   "delete --topic NAME...",
		Short: "Delete topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				names, err := matchTopics(ctx, adm, topics, false, ifExists)
				if err != nil || len(names) == 0 {
					return err
				}
				err = adm.DeleteTopics(ctx, names...)
				if ifExists {
					err = without(err, kerr.UnknownTopicOrPartition)
				}
				if err != nil {
					return unknownTopic(err, names)
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Deleted": names})
				}
				for _, t := range names {
					if g.kafkaTool == "" { // kafka-topics.sh prints nothing
						fmt.Fprintf(g.io.Out, "Deleted topic %s.\n", t)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic to delete, or a regular expression (repeatable)")
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed if the topic does not exist")
	cmd.MarkFlagRequired("topic")
	return cmd
}

// unknownTopic turns UNKNOWN_TOPIC_OR_PARTITION for one of topics into
// errUnknownTopic, which Run prints as Kafka's tools do.
func unknownTopic(err error, topics []string) error {
	var ae *admin.Error
	if errors.As(err, &ae) && errors.Is(ae, kerr.UnknownTopicOrPartition) {
		for _, t := range topics {
			if ae.Resource == t {
				return errUnknownTopic(t)
			}
		}
	}
	return err
}

// without drops the failures matching target from a joined error.
func without(err error, target error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var keep []error
	for _, e := range errs {
		if !errors.Is(e, target) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}
