package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	var excludeInternal bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topic names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				names, err := adm.ListTopics(ctx, !excludeInternal)
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
		topics          []string
		excludeInternal bool
	)
	cmd := &cobra.Command{
		Use:   "describe [--topic NAME]...",
		Short: "Describe topics: partitions, leaders, replicas, ISR and config overrides (all topics without --topic)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				ds, err := adm.DescribeTopics(ctx, topics...)
				if err != nil {
					return unknownTopic(err, topics)
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
					out = append(out, td)
				}
				if g.output == "json" {
					return printJSON(g.io.Out, out)
				}
				for _, td := range out {
					writeTopic(g.io.Out, td)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic to describe (repeatable; default all)")
	cmd.Flags().BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics")
	return cmd
}

// writeTopic prints a topic as kafka-topics.sh --describe does.
func writeTopic(w io.Writer, td topicDescription) {
	var cfgs []string
	for _, k := range sortedKeys(td.Configs) {
		cfgs = append(cfgs, k+"="+td.Configs[k])
	}
	fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
		td.Name, td.ID, len(td.Partitions), td.ReplicationFactor, strings.Join(cfgs, ","))
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
	)
	cmd := &cobra.Command{
		Use:   "alter --topic NAME --partitions N",
		Short: "Raise a topic's partition count (partitions cannot be removed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				if err := adm.CreatePartitions(ctx, false, map[string]int32{topic: partitions}); err != nil {
					return unknownTopic(err, []string{topic})
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Topic": topic, "Partitions": partitions})
				}
				_, err := fmt.Fprintf(g.io.Out, "Topic %s now has %d partitions.\n", topic, partitions)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic to alter")
	cmd.Flags().Int32Var(&partitions, "partitions", 0, "the new total number of partitions")
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
				err := adm.DeleteTopics(ctx, topics...)
				if ifExists {
					err = without(err, kerr.UnknownTopicOrPartition)
				}
				if err != nil {
					return unknownTopic(err, topics)
				}
				for _, t := range topics {
					if g.output == "table" {
						fmt.Fprintf(g.io.Out, "Deleted topic %s.\n", t)
					}
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Deleted": topics})
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic to delete (repeatable)")
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
