package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partitionsJSON is the {"partitions":[{"topic":"t","partition":0}]} file
// Kafka's partition tools read.
type partitionsJSON struct {
	Version    int `json:"version,omitempty"`
	Partitions []struct {
		Topic     string  `json:"topic"`
		Partition *int32  `json:"partition"`
		Replicas  []int32 `json:"replicas,omitempty"`
	} `json:"partitions"`
}

// readJSONFile reads the JSON file a flag names into v.
func readJSONFile(flag, path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return nil
}

func readPartitionsJSON(flag, path string) (partitionsJSON, error) {
	var pj partitionsJSON
	if err := readJSONFile(flag, path, &pj); err != nil {
		return pj, err
	}
	for _, p := range pj.Partitions {
		if p.Topic == "" || p.Partition == nil {
			return pj, fmt.Errorf("%s %s: every partition needs topic and partition", flag, path)
		}
	}
	return pj, nil
}

func tpString(tp kafkit.TopicPartition) string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

func compareTP(a, b kafkit.TopicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// leaderElectionCmd is kafka-leader-election.sh.
func leaderElectionCmd(g *globals) *cobra.Command {
	var (
		electionType, topic, jsonFile string
		partition                     int32
		all                           bool
	)
	cmd := &cobra.Command{
		Use:    "kafka-leader-election --bootstrap-server HOST:PORT --election-type PREFERRED|UNCLEAN (--all-topic-partitions | --topic T --partition P | --path-to-json-file F)",
		Short:  "kafka-leader-election.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var et int8
			switch strings.ToUpper(electionType) {
			case "PREFERRED":
			case "UNCLEAN":
				et = 1
			default:
				return fmt.Errorf("--election-type: %q is not PREFERRED or UNCLEAN", electionType)
			}
			given := 0
			for _, b := range []bool{all, topic != "", jsonFile != ""} {
				if b {
					given++
				}
			}
			if given != 1 {
				return errors.New("exactly one of --all-topic-partitions, --topic or --path-to-json-file must be given")
			}
			if (topic != "") != cmd.Flags().Changed("partition") {
				return errors.New("--topic and --partition go together")
			}
			var tps []kafkit.TopicPartition
			if topic != "" {
				tps = append(tps, kafkit.TopicPartition{Topic: topic, Partition: partition})
			}
			if jsonFile != "" {
				pj, err := readPartitionsJSON("--path-to-json-file", jsonFile)
				if err != nil {
					return err
				}
				for _, p := range pj.Partitions {
					tps = append(tps, kafkit.TopicPartition{Topic: p.Topic, Partition: *p.Partition})
				}
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				res, err := adm.ElectLeaders(ctx, et, tps...)
				if err != nil {
					return err
				}
				var ok, noop, failed []string
				for _, tp := range slices.SortedFunc(maps.Keys(res), compareTP) {
					switch err := res[tp]; {
					case err == nil:
						ok = append(ok, tpString(tp))
					case errors.Is(err, kerr.ElectionNotNeeded):
						noop = append(noop, tpString(tp))
					default:
						failed = append(failed, fmt.Sprintf("Error completing leader election (%s) for partition: %s: %v", strings.ToUpper(electionType), tpString(tp), err))
					}
				}
				if len(ok) > 0 {
					fmt.Fprintf(g.io.Out, "Successfully completed leader election (%s) for partitions %s\n", strings.ToUpper(electionType), strings.Join(ok, ", "))
				}
				if len(noop) > 0 {
					fmt.Fprintf(g.io.Out, "Valid replica already elected for partitions %s\n", strings.Join(noop, ", "))
				}
				for _, f := range failed {
					fmt.Fprintln(g.io.Out, f)
				}
				if len(failed) > 0 {
					return fmt.Errorf("%d replica(s) could not be elected", len(failed))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&electionType, "election-type", "", "REQUIRED: PREFERRED or UNCLEAN")
	f.StringVar(&topic, "topic", "", "the topic of the partition to elect a leader for")
	f.Int32Var(&partition, "partition", 0, "the partition to elect a leader for (with --topic)")
	f.BoolVar(&all, "all-topic-partitions", false, "every partition of every topic")
	f.StringVar(&jsonFile, "path-to-json-file", "", `JSON file of partitions: {"partitions":[{"topic":"foo","partition":1}]}`)
	cmd.MarkFlagRequired("election-type")
	return cmd
}

// reassignmentJSON formats assignments as kafka-reassign-partitions.sh
// writes them.
func reassignmentJSON(parts map[kafkit.TopicPartition][]int32) string {
	type entry struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Replicas  []int32  `json:"replicas"`
		LogDirs   []string `json:"log_dirs"`
	}
	out := struct {
		Version    int     `json:"version"`
		Partitions []entry `json:"partitions"`
	}{Version: 1, Partitions: []entry{}}
	for _, tp := range slices.SortedFunc(maps.Keys(parts), compareTP) {
		dirs := make([]string, len(parts[tp]))
		for i := range dirs {
			dirs[i] = "any"
		}
		out.Partitions = append(out.Partitions, entry{tp.Topic, tp.Partition, parts[tp], dirs})
	}
	b, _ := json.Marshal(out) // plain values: cannot fail
	return string(b)
}

// currentAssignment is each partition's replica list, from metadata.
func currentAssignment(ctx context.Context, adm *admin.Client, topics ...string) (map[kafkit.TopicPartition][]int32, error) {
	ds, err := adm.DescribeTopics(ctx, topics...)
	if err != nil {
		return nil, unknownTopic(err, topics)
	}
	out := map[kafkit.TopicPartition][]int32{}
	for _, d := range ds {
		for _, p := range d.Partitions {
			out[kafkit.TopicPartition{Topic: d.Name, Partition: p.Partition}] = p.Replicas
		}
	}
	return out, nil
}

func joinTPs(tps []kafkit.TopicPartition, sep string) string {
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tpString(tp)
	}
	return strings.Join(s, sep)
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// reassignPartitionsCmd is kafka-reassign-partitions.sh: --generate,
// --execute, --verify, --list and --cancel. Throttles and log-dir moves are
// not supported.
func reassignPartitionsCmd(g *globals) *cobra.Command {
	var (
		generate, execute, verify, list, cancel bool
		topicsFile, planFile, brokerList        string
	)
	cmd := &cobra.Command{
		Use:    "kafka-reassign-partitions --bootstrap-server HOST:PORT (--generate | --execute | --verify | --list | --cancel) ...",
		Short:  "kafka-reassign-partitions.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, b := range []bool{generate, execute, verify, list, cancel} {
				if b {
					n++
				}
			}
			if n != 1 {
				return errors.New("Command must include exactly one action: --generate, --execute, --verify, --cancel, --list")
			}
			if (execute || verify || cancel) && planFile == "" {
				return errors.New("--reassignment-json-file is required with --execute, --verify and --cancel")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				switch {
				case list:
					return listReassignments(ctx, g, adm)
				case generate:
					return generateReassignment(ctx, g, adm, topicsFile, brokerList)
				}
				pj, err := readPartitionsJSON("--reassignment-json-file", planFile)
				if err != nil {
					return err
				}
				targets := map[kafkit.TopicPartition][]int32{}
				for _, p := range pj.Partitions {
					tp := kafkit.TopicPartition{Topic: p.Topic, Partition: *p.Partition}
					if _, dup := targets[tp]; dup {
						return fmt.Errorf("--reassignment-json-file contains multiple entries for %s", tpString(tp))
					}
					if len(p.Replicas) == 0 && !cancel {
						return fmt.Errorf("--reassignment-json-file: partition %s has no replicas", tpString(tp))
					}
					targets[tp] = p.Replicas
				}
				tps := slices.SortedFunc(maps.Keys(targets), compareTP)
				switch {
				case execute:
					return executeReassignment(ctx, g, adm, targets, tps)
				case verify:
					return verifyReassignment(ctx, g, adm, targets, tps)
				}
				return cancelReassignment(ctx, g, adm, tps)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&generate, "generate", false, "propose an assignment of --topics-to-move-json-file over --broker-list")
	f.BoolVar(&execute, "execute", false, "start the reassignment of --reassignment-json-file")
	f.BoolVar(&verify, "verify", false, "report whether the reassignment of --reassignment-json-file completed")
	f.BoolVar(&list, "list", false, "list the reassignments in progress")
	f.BoolVar(&cancel, "cancel", false, "cancel the reassignments of --reassignment-json-file")
	f.StringVar(&topicsFile, "topics-to-move-json-file", "", `with --generate: {"topics":[{"topic":"foo"}],"version":1}`)
	f.StringVar(&planFile, "reassignment-json-file", "", `{"partitions":[{"topic":"foo","partition":1,"replicas":[1,2,3]}],"version":1}`)
	f.StringVar(&brokerList, "broker-list", "", "with --generate: the broker ids to assign to, as 0,1,2")
	return cmd
}

func listReassignments(ctx context.Context, g *globals, adm *admin.Client) error {
	rs, err := adm.ListPartitionReassignments(ctx)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		fmt.Fprintln(g.io.Out, "No partition reassignments found.")
		return nil
	}
	fmt.Fprintln(g.io.Out, "Current partition reassignments:")
	for _, tp := range slices.SortedFunc(maps.Keys(rs), compareTP) {
		r := rs[tp]
		line := fmt.Sprintf("%s: replicas: %s.", tpString(tp), joinInt32(r.Replicas))
		if len(r.Adding) > 0 {
			line += fmt.Sprintf(" adding: %s.", joinInt32(r.Adding))
		}
		if len(r.Removing) > 0 {
			line += fmt.Sprintf(" removing: %s.", joinInt32(r.Removing))
		}
		fmt.Fprintln(g.io.Out, line)
	}
	return nil
}

// generateReassignment proposes each partition's replicas round-robin over
// the brokers, keeping the replication factor (Kafka's proposal without
// racks).
func generateReassignment(ctx context.Context, g *globals, adm *admin.Client, topicsFile, brokerList string) error {
	if topicsFile == "" || brokerList == "" {
		return errors.New("--generate needs --topics-to-move-json-file and --broker-list")
	}
	var tj struct {
		Topics []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := readJSONFile("--topics-to-move-json-file", topicsFile, &tj); err != nil {
		return err
	}
	var topics []string
	for _, t := range tj.Topics {
		if slices.Contains(topics, t.Topic) {
			return fmt.Errorf("List of topics to reassign contains duplicate entries: %s", t.Topic)
		}
		topics = append(topics, t.Topic)
	}
	var brokers []int32
	for s := range strings.SplitSeq(brokerList, ",") {
		var id int32
		if _, err := fmt.Sscan(strings.TrimSpace(s), &id); err != nil {
			return fmt.Errorf("--broker-list: %q is not a broker id", s)
		}
		if slices.Contains(brokers, id) {
			return fmt.Errorf("Broker list contains duplicate entries: %d", id)
		}
		brokers = append(brokers, id)
	}
	current, err := currentAssignment(ctx, adm, topics...)
	if err != nil {
		return err
	}
	proposed := map[kafkit.TopicPartition][]int32{}
	start := 0
	for _, tp := range slices.SortedFunc(maps.Keys(current), compareTP) {
		rf := len(current[tp])
		if rf > len(brokers) {
			return fmt.Errorf("Replication factor: %d larger than available brokers: %d.", rf, len(brokers))
		}
		rs := make([]int32, rf)
		for i := range rs {
			rs[i] = brokers[(start+i)%len(brokers)]
		}
		proposed[tp] = rs
		start++
	}
	fmt.Fprintf(g.io.Out, "Current partition replica assignment\n%s\n\n", reassignmentJSON(current))
	fmt.Fprintf(g.io.Out, "Proposed partition reassignment configuration\n%s\n", reassignmentJSON(proposed))
	return nil
}

func executeReassignment(ctx context.Context, g *globals, adm *admin.Client, targets map[kafkit.TopicPartition][]int32, tps []kafkit.TopicPartition) error {
	if ongoing, err := adm.ListPartitionReassignments(ctx); err != nil {
		return err
	} else if len(ongoing) > 0 {
		return errors.New("Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new partition assignment in addition to the existing one. The --additional flag can also be used to change the throttle by resubmitting the current reassignment.")
	}
	cl, err := adm.DescribeCluster(ctx)
	if err != nil {
		return err
	}
	for _, tp := range tps {
		for _, id := range targets[tp] {
			if !slices.ContainsFunc(cl.Brokers, func(b admin.Broker) bool { return b.ID == id }) {
				return fmt.Errorf("Unknown broker id %d", id)
			}
		}
	}
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	current, err := currentAssignment(ctx, adm, topics...)
	if err != nil {
		return err
	}
	maps.DeleteFunc(current, func(tp kafkit.TopicPartition, _ []int32) bool { _, ok := targets[tp]; return !ok })
	fmt.Fprintf(g.io.Out, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n", reassignmentJSON(current))
	failed, err := reassign(ctx, adm, targets, tps)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("Error reassigning partition(s):\n%s", strings.Join(failed, "\n"))
	}
	fmt.Fprintf(g.io.Out, "Successfully started partition %s for %s\n", plural(len(tps), "reassignment"), joinTPs(tps, ","))
	return nil
}

func verifyReassignment(ctx context.Context, g *globals, adm *admin.Client, targets map[kafkit.TopicPartition][]int32, tps []kafkit.TopicPartition) error {
	ongoing, err := adm.ListPartitionReassignments(ctx, tps...)
	if err != nil {
		return err
	}
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	current, err := currentAssignment(ctx, adm, topics...)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.io.Out, "Status of partition reassignment:")
	for _, tp := range tps {
		switch _, inProgress := ongoing[tp]; {
		case inProgress:
			fmt.Fprintf(g.io.Out, "Reassignment of partition %s is still in progress.\n", tpString(tp))
		case slices.Equal(current[tp], targets[tp]):
			fmt.Fprintf(g.io.Out, "Reassignment of partition %s is completed.\n", tpString(tp))
		default:
			fmt.Fprintf(g.io.Out, "There is no active reassignment of partition %s, but replica set is %s rather than %s.\n",
				tpString(tp), joinInt32(current[tp]), joinInt32(targets[tp]))
		}
	}
	return nil
}

func cancelReassignment(ctx context.Context, g *globals, adm *admin.Client, tps []kafkit.TopicPartition) error {
	ongoing, err := adm.ListPartitionReassignments(ctx, tps...)
	if err != nil {
		return err
	}
	active := slices.DeleteFunc(slices.Clone(tps), func(tp kafkit.TopicPartition) bool { _, ok := ongoing[tp]; return !ok })
	if len(active) == 0 {
		fmt.Fprintln(g.io.Out, "None of the specified partition reassignments are active.")
		return nil
	}
	cancels := map[kafkit.TopicPartition][]int32{}
	for _, tp := range active {
		cancels[tp] = nil
	}
	failed, err := reassign(ctx, adm, cancels, active)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("Error cancelling partition %s for:\n%s", plural(len(failed), "reassignment"), strings.Join(failed, "\n"))
	}
	fmt.Fprintf(g.io.Out, "Successfully cancelled partition %s for: %s\n", plural(len(active), "reassignment"), joinTPs(active, ","))
	return nil
}

// reassign sends targets (nil replicas cancel) and returns the failures,
// "topic-partition: error", in the order of tps.
func reassign(ctx context.Context, adm *admin.Client, targets map[kafkit.TopicPartition][]int32, tps []kafkit.TopicPartition) ([]string, error) {
	res, err := adm.AlterPartitionReassignments(ctx, targets)
	if err != nil {
		return nil, err
	}
	var failed []string
	for _, tp := range tps {
		if res[tp] != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", tpString(tp), res[tp]))
		}
	}
	return failed, nil
}
