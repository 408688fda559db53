package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
)

func groupsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "List, describe, reset offsets of and delete consumer groups (like kafka-consumer-groups.sh)"}
	cmd.AddCommand(groupsListCmd(g), groupsDescribeCmd(g), groupsResetCmd(g), groupsDeleteCmd(g), groupsDeleteOffsetsCmd(g))
	return cmd
}

func groupsListCmd(g *globals) *cobra.Command {
	return listGroupsCmd(g, "List consumer groups", listConsumerGroups)
}

// listConsumerGroups lists the groups kafka-consumer-groups.sh lists:
// classic and consumer groups, not share groups.
func listConsumerGroups(adm *admin.Client, ctx context.Context) ([]admin.GroupListing, error) {
	all, err := adm.ListGroups(ctx)
	return slices.DeleteFunc(all, func(gr admin.GroupListing) bool { return gr.Type == "share" || gr.ProtocolType == "share" }), err
}

// listGroupsCmd is the list subcommand of groups and share-groups.
func listGroupsCmd(g *globals, short string, list func(*admin.Client, context.Context) ([]admin.GroupListing, error)) *cobra.Command {
	var state bool
	var typ string
	cmd := &cobra.Command{
		Use:   "list [--state] [--type [classic|consumer]]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			showType := cmd.Flags().Changed("type")
			typ = strings.TrimSpace(typ)
			if len(args) == 1 {
				// --type's value after a space, as kafka-consumer-groups.sh
				// takes it (a flag with an optional value needs = here).
				if !showType || typ != "" {
					return fmt.Errorf("unexpected argument %q", args[0])
				}
				typ = args[0]
			}
			switch typ {
			case "", "classic", "consumer":
			default:
				return fmt.Errorf("--type must be classic or consumer, got %q", typ)
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				all, err := list(adm, ctx)
				if err != nil {
					return err
				}
				var groups []admin.GroupListing
				for _, gr := range all {
					if typ == "" || strings.EqualFold(gr.Type, typ) {
						groups = append(groups, gr)
					}
				}
				if g.output == "json" {
					return printJSON(g.io.Out, groups)
				}
				if !state && !showType {
					for _, gr := range groups {
						fmt.Fprintln(g.io.Out, gr.Group)
					}
					return nil
				}
				header := []string{"GROUP"}
				if showType {
					header = append(header, "TYPE")
				}
				if state {
					header = append(header, "STATE")
				}
				t := newTable(g.io.Out, header...)
				for _, gr := range groups {
					row := []any{gr.Group}
					if showType {
						row = append(row, dashIfEmpty(gr.Type))
					}
					if state {
						row = append(row, dashIfEmpty(gr.State))
					}
					t.row(row...)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&state, "state", false, "show each group's state")
	cmd.Flags().StringVar(&typ, "type", "", "show each group's type (classic or consumer); with a value, list only groups of that type")
	cmd.Flags().Lookup("type").NoOptDefVal = " "
	return cmd
}

// groupDescription is describe's JSON output.
type groupDescription struct {
	admin.GroupDescription
	Lag admin.GroupLag
}

func groupsDescribeCmd(g *globals) *cobra.Command {
	var (
		groups                             []string
		members, state, allGroups, verbose bool
	)
	cmd := &cobra.Command{
		Use:   "describe (--group G... | --all-groups) [--members | --state]",
		Short: "Show a group's committed offsets, log end offsets and lag per partition (or its members with --members, its state with --state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if allGroups == (len(groups) > 0) {
				return errors.New("give exactly one of --group or --all-groups")
			}
			if members && state {
				return errors.New("--members and --state cannot be used together")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				if allGroups {
					var err error
					if groups, err = allGroupNames(ctx, adm); err != nil {
						return err
					}
				}
				var out []groupDescription
				for _, name := range groups {
					ds, err := adm.DescribeGroups(ctx, name)
					if err != nil {
						return err
					}
					if ds[0].State == "Dead" {
						return fmt.Errorf("consumer group '%s' does not exist", name)
					}
					lag, err := adm.Lag(ctx, name)
					if err != nil {
						return err
					}
					out = append(out, groupDescription{ds[0], lag})
				}
				if g.output == "json" {
					return printJSON(g.io.Out, out)
				}
				for i, d := range out {
					if i > 0 {
						fmt.Fprintln(g.io.Out)
					}
					if len(d.Members) == 0 {
						fmt.Fprintf(g.io.Out, "Consumer group '%s' has no active members.\n\n", d.Group)
					}
					var err error
					switch {
					case state:
						err = writeState(ctx, g, adm, d, verbose)
					case !members:
						err = writeLag(g, d)
					case len(d.Members) > 0:
						err = writeMembers(g, d, verbose)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&groups, "group", nil, "group to describe (repeatable)")
	f.BoolVar(&allGroups, "all-groups", false, "describe every group")
	f.BoolVar(&members, "members", false, "list the members and how many partitions each has")
	f.BoolVar(&state, "state", false, "show the group's coordinator, assignment strategy, state and member count")
	f.Bool("offsets", true, "show offsets and lag per partition (the default view)")
	f.BoolVar(&verbose, "verbose", false, "with --members: each member's instance id and assignment (and, in a consumer-protocol group, its epoch and target assignment); with --state: a consumer-protocol group's epochs")
	return cmd
}

// allGroupNames lists every group, for --all-groups.
func allGroupNames(ctx context.Context, adm *admin.Client) ([]string, error) {
	ls, err := adm.ListGroups(ctx)
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Group
	}
	return names, err
}

// writeState prints describe --state as kafka-consumer-groups.sh does.
func writeState(ctx context.Context, g *globals, adm *admin.Client, d groupDescription, verbose bool) error {
	coordinator := fmt.Sprintf("(%d)", d.Coordinator)
	if cl, err := adm.DescribeCluster(ctx); err == nil {
		for _, b := range cl.Brokers {
			if b.ID == d.Coordinator {
				coordinator = fmt.Sprintf("%s:%d (%d)", b.Host, b.Port, b.ID)
			}
		}
	}
	if verbose && d.Type == "consumer" {
		t := newTable(g.io.Out, "GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "GROUP-EPOCH", "TARGET-ASSIGNMENT-EPOCH", "#MEMBERS")
		t.row(d.Group, coordinator, dashIfEmpty(d.Protocol), d.State, d.Epoch, d.AssignmentEpoch, len(d.Members))
		return t.flush()
	}
	t := newTable(g.io.Out, "GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
	t.row(d.Group, coordinator, dashIfEmpty(d.Protocol), d.State, len(d.Members))
	return t.flush()
}

func writeLag(g *globals, d groupDescription) error {
	t := newTable(g.io.Out, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
	for _, p := range d.Lag.Partitions {
		t.row(d.Group, p.Topic, p.Partition, orDash(p.CurrentOffset), orDash(p.LogEndOffset), orDash(p.Lag),
			dashIfEmpty(p.MemberID), dashIfEmpty(p.Host), dashIfEmpty(p.ClientID))
	}
	return t.flush()
}

// writeMembers prints describe --members as kafka-consumer-groups.sh does;
// --verbose adds the assignments, and for a consumer-protocol group the
// member epochs and target assignments (Kafka 4's columns).
func writeMembers(g *globals, d groupDescription, verbose bool) error {
	switch {
	case !verbose:
		t := newTable(g.io.Out, "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS")
		for _, m := range d.Members {
			t.row(d.Group, m.MemberID, m.Host, m.ClientID, len(m.Assignment))
		}
		return t.flush()
	case d.Type == "consumer":
		t := newTable(g.io.Out, "GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "CURRENT-EPOCH", "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT")
		for _, m := range d.Members {
			t.row(d.Group, m.MemberID, dashIfEmpty(m.InstanceID), m.Host, m.ClientID, len(m.Assignment),
				m.Epoch, assignmentString(m.Assignment), d.AssignmentEpoch, assignmentString(m.TargetAssignment))
		}
		return t.flush()
	}
	t := newTable(g.io.Out, "GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT")
	for _, m := range d.Members {
		t.row(d.Group, m.MemberID, dashIfEmpty(m.InstanceID), m.Host, m.ClientID, len(m.Assignment), assignmentString(m.Assignment))
	}
	return t.flush()
}

// assignmentString prints partitions as kafka-consumer-groups.sh does:
// topic(0,1),other(2); "-" for none.
func assignmentString(tps []kafkit.TopicPartition) string {
	var b strings.Builder
	for i, tp := range tps {
		switch {
		case i == 0:
			fmt.Fprintf(&b, "%s(%d", tp.Topic, tp.Partition)
		case tps[i-1].Topic != tp.Topic:
			fmt.Fprintf(&b, "),%s(%d", tp.Topic, tp.Partition)
		default:
			fmt.Fprintf(&b, ",%d", tp.Partition)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String() + ")"
}

func groupsResetCmd(g *globals) *cobra.Command {
	var (
		group string
		rf    resetFlags
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets --group G (--topic T[:P,...]... | --all-topics) (--to-earliest | --to-latest | --to-datetime D | --to-offset N | --shift-by N) [--execute]",
		Short: "Move a group's committed offsets; shows the plan only (a dry run) unless --execute",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := rf.spec(cmd)
			if err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				tps, err := resetPartitions(ctx, adm, group, rf.topics)
				if err != nil {
					return err
				}
				plan, err := adm.ResetOffsets(ctx, group, spec, tps, rf.execute)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Group": group, "Executed": rf.execute, "Offsets": plan})
				}
				t := newTable(g.io.Out, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
				for _, r := range plan {
					t.row(group, r.Topic, r.Partition, orDash(r.Current), r.Target)
				}
				return rf.done(g, t)
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the consumer group")
	rf.bind(cmd, "committed offsets")
	cmd.MarkFlagRequired("group")
	return cmd
}

// resetFlags are the flags of reset-offsets, for groups and share groups.
type resetFlags struct {
	topics               []string
	allTopics            bool
	toEarliest, toLatest bool
	toDatetime           string
	toOffset, shiftBy    int64
	execute, dryRun      bool
}

// bind declares the flags; what names the offsets moved.
func (r *resetFlags) bind(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringArrayVar(&r.topics, "topic", nil, "topic to reset, optionally with partitions: t or t:0,2 (repeatable)")
	f.BoolVar(&r.allTopics, "all-topics", false, "reset every topic the group has "+what+" for")
	f.BoolVar(&r.toEarliest, "to-earliest", false, "to the earliest offset")
	f.BoolVar(&r.toLatest, "to-latest", false, "to the latest offset")
	f.StringVar(&r.toDatetime, "to-datetime", "", "to the first offset at or after this time: YYYY-MM-DDTHH:mm:SS.sss, optionally with a zone (Z, +01:00); local time otherwise")
	f.Int64Var(&r.toOffset, "to-offset", 0, "to this offset")
	f.Int64Var(&r.shiftBy, "shift-by", 0, "move the "+what+" by N (negative: back)")
	f.BoolVar(&r.execute, "execute", false, "apply the plan")
	f.BoolVar(&r.dryRun, "dry-run", false, "only show the plan (the default)")
}

// spec checks the flags and returns the one reset they ask for.
func (r *resetFlags) spec(cmd *cobra.Command) (admin.ResetSpec, error) {
	spec, err := resetSpec(cmd, r.toEarliest, r.toLatest, r.toDatetime, r.toOffset, r.shiftBy)
	if err != nil {
		return spec, err
	}
	if r.allTopics == (len(r.topics) > 0) {
		return spec, errors.New("give exactly one of --topic or --all-topics")
	}
	if r.execute && r.dryRun {
		return spec, errors.New("--dry-run and --execute cannot be used together")
	}
	return spec, nil
}

// done prints the plan and, for a dry run, says nothing changed.
func (r *resetFlags) done(g *globals, t *table) error {
	if err := t.flush(); err != nil {
		return err
	}
	if !r.execute {
		fmt.Fprintln(g.io.Err, "Dry run: no offsets were changed. Add --execute to apply this plan.")
	}
	return nil
}

// resetSpec builds the one reset the flags ask for.
func resetSpec(cmd *cobra.Command, toEarliest, toLatest bool, toDatetime string, toOffset, shiftBy int64) (admin.ResetSpec, error) {
	var specs []admin.ResetSpec
	if toEarliest {
		specs = append(specs, admin.ResetSpec{Kind: admin.ResetToEarliest})
	}
	if toLatest {
		specs = append(specs, admin.ResetSpec{Kind: admin.ResetToLatest})
	}
	if toDatetime != "" {
		t, err := parseDatetime(toDatetime)
		if err != nil {
			return admin.ResetSpec{}, err
		}
		specs = append(specs, admin.ResetSpec{Kind: admin.ResetToDatetime, Time: t})
	}
	if cmd.Flags().Changed("to-offset") {
		specs = append(specs, admin.ResetSpec{Kind: admin.ResetToOffset, Offset: toOffset})
	}
	if cmd.Flags().Changed("shift-by") {
		specs = append(specs, admin.ResetSpec{Kind: admin.ResetShiftBy, Offset: shiftBy})
	}
	if len(specs) != 1 {
		return admin.ResetSpec{}, errors.New("give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by")
	}
	return specs[0], nil
}

// parseDatetime reads --to-datetime as kafka-consumer-groups.sh does.
func parseDatetime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--to-datetime: %q is not YYYY-MM-DDTHH:mm:SS.sss (optionally with a zone)", s)
}

// resetPartitions resolves --topic t / t:0,1 (or, with none, --all-topics:
// every partition the group committed) into partitions.
func resetPartitions(ctx context.Context, adm *admin.Client, group string, topics []string) ([]kafkit.TopicPartition, error) {
	if len(topics) == 0 {
		committed, err := adm.GroupOffsets(ctx, group)
		if err != nil {
			return nil, err
		}
		if len(committed) == 0 {
			return nil, fmt.Errorf("group '%s' has no committed offsets; name the topics with --topic", group)
		}
		return slices.Collect(maps.Keys(committed)), nil
	}
	var out []kafkit.TopicPartition
	for _, spec := range topics {
		name, parts, hasParts := strings.Cut(spec, ":")
		all, err := adm.Partitions(ctx, name)
		if err != nil {
			return nil, unknownTopic(err, []string{name})
		}
		if !hasParts {
			out = append(out, all...)
			continue
		}
		for _, p := range strings.Split(parts, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 || int(n) >= len(all) {
				return nil, fmt.Errorf("--topic %s: %q is not a partition of %s (0 to %d)", spec, p, name, len(all)-1)
			}
			out = append(out, kafkit.TopicPartition{Topic: name, Partition: int32(n)})
		}
	}
	return out, nil
}

func groupsDeleteCmd(g *globals) *cobra.Command {
	return deleteGroupsCmd(g, "consumer", "Delete consumer groups that have no members, with their committed offsets",
		func(ctx context.Context, adm *admin.Client, groups []string, all bool) ([]string, error) {
			if all == (len(groups) > 0) {
				return nil, errors.New("give exactly one of --group or --all-groups")
			}
			if all {
				return allGroupNames(ctx, adm)
			}
			return groups, nil
		})
}

// deleteGroupsCmd is the delete subcommand of groups and share-groups: the
// groups names resolves (from --group or --all-groups) are deleted with
// DeleteGroups, and the deletion reported in Kafka's tools' words.
func deleteGroupsCmd(g *globals, kind, short string, names func(ctx context.Context, adm *admin.Client, groups []string, all bool) ([]string, error)) *cobra.Command {
	var (
		groups    []string
		allGroups bool
	)
	cmd := &cobra.Command{
		Use:   "delete (--group G... | --all-groups)",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				deleting, err := names(ctx, adm, groups, allGroups)
				if err != nil {
					return err
				}
				if err := adm.DeleteGroups(ctx, deleting...); err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Deleted": deleting})
				}
				_, err = fmt.Fprintf(g.io.Out, "Deletion of requested %s groups ('%s') was successful.\n", kind, strings.Join(deleting, "', '"))
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&groups, "group", nil, kind+" group to delete (repeatable)")
	cmd.Flags().BoolVar(&allGroups, "all-groups", false, "delete every "+kind+" group without members")
	return cmd
}

func groupsDeleteOffsetsCmd(g *globals) *cobra.Command {
	var (
		group  string
		topics []string
	)
	cmd := &cobra.Command{
		Use:   "delete-offsets --group G --topic T[:P,...]...",
		Short: "Delete a group's committed offsets of some partitions (OffsetDelete); the group must not consume them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				tps, err := resetPartitions(ctx, adm, group, topics)
				if err != nil {
					return err
				}
				if err := adm.DeleteGroupOffsets(ctx, group, tps...); err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Group": group, "Deleted": tps})
				}
				fmt.Fprintf(g.io.Out, "Request succeed for deleting offsets from group %s.\n\n", group)
				t := newTable(g.io.Out, "TOPIC", "PARTITION", "STATUS")
				for _, tp := range tps {
					t.row(tp.Topic, tp.Partition, "Successful")
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the consumer group")
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic whose offsets to delete, optionally with partitions: t or t:0,2 (repeatable)")
	cmd.MarkFlagRequired("group")
	cmd.MarkFlagRequired("topic")
	return cmd
}
