package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
)

func shareGroupsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "share-groups", Short: "List, describe, reset offsets of and delete share groups (like kafka-share-groups.sh)"}
	cmd.AddCommand(shareGroupsListCmd(g), shareGroupsDescribeCmd(g), shareGroupsResetCmd(g), shareGroupsDeleteCmd(g), shareGroupsDeleteOffsetsCmd(g))
	return cmd
}

func shareGroupsListCmd(g *globals) *cobra.Command {
	return listGroupsCmd(g, "List share groups", (*admin.Client).ListShareGroups)
}

// shareGroupNames is --group, or every share group with --all-groups.
func shareGroupNames(ctx context.Context, adm *admin.Client, groups []string, all bool) ([]string, error) {
	if all == (len(groups) > 0) {
		return nil, errors.New("give exactly one of --group or --all-groups")
	}
	if !all {
		return groups, nil
	}
	listed, err := adm.ListShareGroups(ctx)
	var out []string
	for _, l := range listed {
		out = append(out, l.Group)
	}
	return out, err
}

// shareGroupOffsets is describe --offsets' JSON output.
type shareGroupOffsets struct {
	Group   string
	Offsets []shareOffsetRow
}

type shareOffsetRow struct {
	kafkit.TopicPartition
	admin.ShareOffset
}

func shareGroupsDescribeCmd(g *globals) *cobra.Command {
	var (
		groups                             []string
		members, offsets, state, allGroups bool
	)
	cmd := &cobra.Command{
		Use:   "describe (--group G... | --all-groups) [--offsets | --members | --state]",
		Short: "Show a share group's start offsets and lag per partition (the default, or --offsets), its members with --members, its state with --state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, b := range []bool{members, offsets, state} {
				if b {
					n++
				}
			}
			if n > 1 {
				return errors.New("give at most one of --offsets, --members and --state")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				names, err := shareGroupNames(ctx, adm, groups, allGroups)
				if err != nil {
					return err
				}
				if members || state {
					ds, err := adm.DescribeShareGroups(ctx, names...)
					if err != nil {
						return err
					}
					if g.output == "json" {
						return printJSON(g.io.Out, ds)
					}
					if state {
						t := newTable(g.io.Out, "GROUP", "STATE", "#MEMBERS")
						for _, d := range ds {
							t.row(d.Group, d.State, len(d.Members))
						}
						return t.flush()
					}
					t := newTable(g.io.Out, "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT")
					for _, d := range ds {
						for _, m := range d.Members {
							t.row(d.Group, m.MemberID, m.Host, m.ClientID, len(m.Assignment), shareAssignmentString(m.Assignment))
						}
					}
					return t.flush()
				}
				var out []shareGroupOffsets
				for _, name := range names {
					offs, err := adm.ShareGroupOffsets(ctx, name)
					if err != nil {
						return err
					}
					so := shareGroupOffsets{Group: name}
					for _, tp := range slices.SortedFunc(maps.Keys(offs), func(a, b kafkit.TopicPartition) int {
						return strings.Compare(a.Topic, b.Topic)*2 + int(a.Partition-b.Partition)
					}) {
						so.Offsets = append(so.Offsets, shareOffsetRow{tp, offs[tp]})
					}
					out = append(out, so)
				}
				if g.output == "json" {
					return printJSON(g.io.Out, out)
				}
				t := newTable(g.io.Out, "GROUP", "TOPIC", "PARTITION", "START-OFFSET", "LAG")
				for _, so := range out {
					for _, r := range so.Offsets {
						t.row(so.Group, r.Topic, r.Partition, orDash(r.StartOffset), orDash(r.Lag))
					}
				}
				return t.flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&groups, "group", nil, "share group to describe (repeatable)")
	f.BoolVar(&allGroups, "all-groups", false, "describe every share group")
	f.BoolVar(&offsets, "offsets", false, "start offsets and lag per partition (the default)")
	f.BoolVar(&members, "members", false, "the members and the partitions each fetches from")
	f.BoolVar(&state, "state", false, "the group's state and member count")
	return cmd
}

// shareAssignmentString is kafka-share-groups.sh's topic:partitions list: "t:0,1;u:0".
func shareAssignmentString(tps []kafkit.TopicPartition) string {
	by := map[string][]string{}
	for _, tp := range tps {
		by[tp.Topic] = append(by[tp.Topic], fmt.Sprint(tp.Partition))
	}
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, t+":"+strings.Join(by[t], ","))
	}
	return dashIfEmpty(strings.Join(parts, ";"))
}

func shareGroupsResetCmd(g *globals) *cobra.Command {
	var (
		group string
		rf    resetFlags
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets --group G (--topic T[:P,...]... | --all-topics) (--to-earliest | --to-latest | --to-datetime D | --to-offset N | --shift-by N) [--execute]",
		Short: "Move a share group's start offsets (the group must have no members); shows the plan only (a dry run) unless --execute",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := rf.spec(cmd)
			if err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				var tps []kafkit.TopicPartition
				if rf.allTopics {
					offs, err := adm.ShareGroupOffsets(ctx, group)
					if err != nil {
						return err
					}
					if len(offs) == 0 {
						return fmt.Errorf("share group '%s' has no offsets; name the topics with --topic", group)
					}
					tps = slices.Collect(maps.Keys(offs))
				} else if tps, err = resetPartitions(ctx, adm, group, rf.topics); err != nil {
					return err
				}
				plan, err := adm.ResetShareGroupOffsets(ctx, group, spec, tps, rf.execute)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Group": group, "Executed": rf.execute, "Offsets": plan})
				}
				t := newTable(g.io.Out, "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET")
				for _, r := range plan {
					t.row(group, r.Topic, r.Partition, r.Target)
				}
				return rf.done(g, t)
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the share group")
	rf.bind(cmd, "start offsets")
	cmd.MarkFlagRequired("group")
	return cmd
}

func shareGroupsDeleteCmd(g *globals) *cobra.Command {
	return deleteGroupsCmd(g, "share", "Delete share groups that have no members, with their state", shareGroupNames)
}

func shareGroupsDeleteOffsetsCmd(g *globals) *cobra.Command {
	var (
		group  string
		topics []string
	)
	cmd := &cobra.Command{
		Use:   "delete-offsets --group G --topic T...",
		Short: "Delete a share group's state for whole topics (the group must have no members)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(topics) == 0 {
				return errors.New("give at least one --topic")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				if err := adm.DeleteShareGroupOffsets(ctx, group, topics...); err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Group": group, "Deleted": topics})
				}
				t := newTable(g.io.Out, "TOPIC", "STATUS")
				for _, topic := range topics {
					t.row(topic, "Successful")
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the share group")
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic whose state to delete (repeatable)")
	cmd.MarkFlagRequired("group")
	return cmd
}
