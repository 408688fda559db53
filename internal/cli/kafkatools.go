package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Kafka's shell tools that kafkit answers to, under their own names: a link
// named kafka-topics.sh (or kafka-topics) to the kafkit binary behaves as
// that tool, busybox-style, and `kafkit kafka-topics ...` does the same.
// Tools kafkit already has a command for are rewritten into that command
// (their action flags become its subcommands); the others are commands of
// their own, named as the tool.
var kafkaTools = []string{
	"kafka-topics", "kafka-console-producer", "kafka-console-consumer", "kafka-consumer-groups",
	"kafka-configs", "kafka-get-offsets", "kafka-delete-records", "kafka-broker-api-versions",
	"kafka-producer-perf-test", "kafka-consumer-perf-test", "kafka-acls",
	"kafka-leader-election", "kafka-reassign-partitions", "kafka-server-start", "kafka-server-stop",
	"kafka-storage", "kafka-share-groups", "kafka-metadata-quorum", "kafka-cluster",
	"kafka-features",
}

// actionCommands maps a kafkit command that Kafka's tools drive with an
// action flag (kafka-topics.sh --create ...) to those flags' subcommands.
var actionCommands = map[string]struct {
	tool    string
	actions []string // flag name = subcommand name
}{
	"topics":       {"kafka-topics", []string{"create", "list", "describe", "alter", "delete"}},
	"groups":       {"kafka-consumer-groups", []string{"list", "describe", "delete", "reset-offsets", "delete-offsets"}},
	"configs":      {"kafka-configs", []string{"describe", "alter"}},
	"acls":         {"kafka-acls", []string{"add", "remove", "list"}},
	"share-groups": {"kafka-share-groups", []string{"list", "describe", "delete", "reset-offsets", "delete-offsets"}},
}

// toolName is the Kafka tool a program name stands for ("" if none):
// kafka-topics.sh, kafka-topics and kafka-topics.bat all are kafka-topics.
func toolName(argv0 string) string {
	name := filepath.Base(argv0)
	for _, ext := range []string{".exe", ".sh", ".bat", ".cmd"} {
		name = strings.TrimSuffix(name, ext)
	}
	if slices.Contains(kafkaTools, name) {
		return name
	}
	return ""
}

// Main runs kafkit as its command line asks: argv[0] names a Kafka tool
// when kafkit is invoked through a link (see `kafkit tools link`).
func Main(ctx context.Context, argv []string, io IO) int {
	args := argv[1:]
	if tool := toolName(argv[0]); tool != "" {
		args = append([]string{tool}, args...)
	}
	return Run(ctx, args, io)
}

// commandIndex finds the command word in args (the first argument that is
// neither a flag nor the value of a root flag), or -1.
func commandIndex(root *cobra.Command, args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return i
		}
		if strings.Contains(a, "=") {
			continue
		}
		var f *pflag.Flag
		if strings.HasPrefix(a, "--") {
			f = root.PersistentFlags().Lookup(a[2:])
		} else if len(a) == 2 {
			f = root.PersistentFlags().ShorthandLookup(a[1:])
		}
		if f != nil && f.NoOptDefVal == "" {
			i++ // the flag's value
		}
	}
	return -1
}

// rewriteActions turns Kafka's action-as-flag form (`topics --create
// --topic t`) into kafkit's subcommand form (`topics create --topic t`).
// Arguments already in subcommand form, or for other commands, are
// returned as they are.
func rewriteActions(root *cobra.Command, args []string) ([]string, error) {
	i := commandIndex(root, args)
	if i < 0 {
		return args, nil
	}
	ac, ok := actionCommands[args[i]]
	if !ok {
		return args, nil
	}
	if j := commandIndex(root, args[i+1:]); j >= 0 && slices.Contains(ac.actions, args[i+1+j]) {
		return args, nil // already a subcommand
	}
	var found []int
	for j := i + 1; j < len(args); j++ {
		if name, ok := strings.CutPrefix(args[j], "--"); ok && slices.Contains(ac.actions, name) {
			found = append(found, j)
		}
	}
	if len(found) != 1 {
		if len(found) == 0 && slices.ContainsFunc(args[i+1:], func(a string) bool { return a == "--help" || a == "-h" }) {
			return args, nil
		}
		return nil, fmt.Errorf("command must include exactly one action: --%s", strings.Join(ac.actions, ", --"))
	}
	out := slices.Concat(args[:i+1], []string{strings.TrimPrefix(args[found[0]], "--")}, args[i+1:found[0]], args[found[0]+1:])
	return out, nil
}

// toolAliasCmd is a Kafka tool that kafkit already does as one of its
// commands: it rewrites its arguments into that command and runs it.
func toolAliasCmd(g *globals, tool, command string) *cobra.Command {
	return &cobra.Command{
		Use:                tool,
		Short:              fmt.Sprintf("%s.sh, as Kafka ships it (kafkit %s with --action flags)", tool, command),
		Hidden:             true,
		DisableFlagParsing: true, // the command it becomes parses them
		RunE: func(cmd *cobra.Command, args []string) error {
			subG := &globals{io: g.io, kafkaTool: tool}
			sub := newRoot(subG)
			args, err := rewriteActions(sub, append([]string{command}, args...))
			if err != nil {
				return err
			}
			sub.SetArgs(args)
			sub.SetIn(g.io.In)
			sub.SetOut(g.io.Out)
			sub.SetErr(g.io.Err)
			err = sub.ExecuteContext(cmd.Context())
			if err != nil && tool == "kafka-topics" {
				// kafka-topics.sh reports failures on stdout, in its words.
				fmt.Fprintln(g.io.Out, "Error while executing topic command : "+subG.explain(err))
				return errReported
			}
			return err
		},
	}
}

// errReported is a failure the command has already printed: Run only
// exits 1.
var errReported = errors.New("reported")

func toolsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tools", Short: "Kafka's shell tools (kafka-topics.sh, ...) answered by kafkit"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the Kafka tools kafkit answers to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range kafkaTools {
				fmt.Fprintln(cmd.OutOrStdout(), t+".sh")
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "link DIR",
		Short: "Create links named as Kafka's tools (kafka-topics.sh, kafka-topics, ...) to this binary in DIR; then export PATH=DIR:$PATH",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			return linkTools(args[0], self, cmd.OutOrStdout())
		},
	})
	return cmd
}

// linkTools creates DIR/kafka-x.sh and DIR/kafka-x for every tool, each a
// symbolic link to target (a copy where the system refuses links),
// replacing links left by an earlier run; a hard link where the system
// refuses symbolic ones (Windows without developer mode).
func linkTools(dir, target string, out interface{ Write([]byte) (int, error) }) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, t := range kafkaTools {
		for _, name := range []string{t + ".sh", t} {
			path := filepath.Join(dir, name)
			if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink == 0 {
				errs = append(errs, fmt.Errorf("%s exists and is not a link; left alone", path))
				continue
			}
			os.Remove(path)
			if err := os.Symlink(target, path); err != nil {
				if lerr := os.Link(target, path); lerr != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "Linked %d Kafka tools in %s to %s. Put them first on your PATH:\n  export PATH=%s:$PATH\n",
		len(kafkaTools), dir, target, dir)
	return nil
}
