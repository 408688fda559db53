package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/brokercmd"
	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/spf13/cobra"
)

// serverRegistry is where kafka-server-start.sh notes each broker it runs
// (a file named by the process id), so that kafka-server-stop.sh can find
// them as Kafka's script finds java processes running kafka.Kafka.
func serverRegistry() string { return filepath.Join(os.TempDir(), "kafkit-servers") }

// serverStartCmd is kafka-server-start.sh [-daemon] server.properties
// [--override property=value]*: the broker of cmd/broker, configured by
// the file.
func serverStartCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "kafka-server-start [-daemon] server.properties [--override property=value]*",
		Short:              "kafka-server-start.sh, as Kafka ships it",
		Hidden:             true,
		DisableFlagParsing: true, // Kafka's -daemon and positional file
		RunE: func(cmd *cobra.Command, args []string) error {
			daemon := len(args) > 0 && args[0] == "-daemon"
			if daemon {
				args = args[1:]
			}
			if len(args) == 0 || strings.HasPrefix(args[0], "-") {
				return errors.New("USAGE: kafka-server-start.sh [-daemon] server.properties [--override property=value]*")
			}
			runArgs := []string{"--config", args[0]}
			for i := 1; i < len(args); i++ {
				if args[i] != "--override" || i+1 == len(args) {
					return fmt.Errorf("unexpected argument %q: USAGE: kafka-server-start.sh [-daemon] server.properties [--override property=value]*", args[i])
				}
				runArgs = append(runArgs, "--override", args[i+1])
				i++
			}
			if daemon {
				return startDaemon(append([]string{"kafka-server-start"}, args...))
			}
			reg := filepath.Join(serverRegistry(), strconv.Itoa(os.Getpid()))
			if err := os.MkdirAll(serverRegistry(), 0o755); err == nil {
				os.WriteFile(reg, []byte(args[0]+"\n"), 0o644)
				defer os.Remove(reg)
			}
			return brokercmd.Run(runArgs, g.io.Out, g.io.Err)
		},
	}
}

// startDaemon runs kafkit with args in the background, its output in
// $LOG_DIR/kafkaServer.out (LOG_DIR defaults to ./logs, as Kafka's
// scripts put it under the installation).
func startDaemon(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := os.Getenv("LOG_DIR")
	if dir == "" {
		dir = "logs"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(filepath.Join(dir, "kafkaServer.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	c := exec.Command(self, args...)
	c.Stdout, c.Stderr = out, out
	detach(c)
	if err := c.Start(); err != nil {
		return err
	}
	return c.Process.Release()
}

// serverStopCmd is kafka-server-stop.sh: it asks every broker that
// kafka-server-start.sh runs on this machine to shut down (SIGTERM: a
// controlled shutdown).
func serverStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "kafka-server-stop",
		Short:  "kafka-server-stop.sh, as Kafka ships it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, _ := os.ReadDir(serverRegistry())
			stopped := 0
			for _, e := range entries {
				pid, err := strconv.Atoi(e.Name())
				if err != nil {
					continue
				}
				p, err := os.FindProcess(pid)
				if err == nil {
					err = terminate(p)
				}
				if err != nil {
					os.Remove(filepath.Join(serverRegistry(), e.Name())) // gone without cleaning up
					continue
				}
				stopped++
			}
			if stopped == 0 {
				fmt.Fprintln(g.io.Out, "No kafka server to stop")
				return errReported
			}
			return nil
		},
	}
}

// storageCmd is kafka-storage.sh: random-uuid, format and info.
func storageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "kafka-storage", Short: "kafka-storage.sh, as Kafka ships it", Hidden: true}
	cmd.AddCommand(&cobra.Command{
		Use:   "random-uuid",
		Short: "Print a random cluster id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(g.io.Out, broker.NewClusterID())
			return err
		},
	})
	var (
		clusterID, config  string
		ignoreFormatted    bool
		standalone         bool
		noInitial          bool
		initialControllers string
		addSCRAM           []string
		release            string
		featureFlags       []string
	)
	format := &cobra.Command{
		Use:   "format -t CLUSTER_ID -c server.properties [--ignore-formatted] [--add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]']",
		Short: "Write meta.properties into the log directory (a kafkit broker also formats an empty one itself)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := brokerConfigFile(config)
			if err != nil {
				return err
			}
			var users []broker.BootstrapSCRAM
			for _, spec := range addSCRAM {
				u, err := parseAddSCRAM(spec)
				if err != nil {
					return err
				}
				users = append(users, u)
			}
			var initial []broker.InitialVoter
			if initialControllers != "" {
				if initial, err = broker.ParseInitialControllers(initialControllers); err != nil {
					return fmt.Errorf("--initial-controllers: %w", err)
				}
			}
			features, err := formatFeatures(release, featureFlags)
			if err != nil {
				return err
			}
			if dynamic := standalone || initialControllers != "" || noInitial; dynamic && features != nil && features[metadata.MetadataVersionFeature] < metadata.DynamicQuorumMinMetadataVersion {
				// A dynamic quorum is kraft.version 1, which needs 3.9-IV0.
				return fmt.Errorf("kraft.version could not be set to 1 because it depends on metadata.version level %d", metadata.DynamicQuorumMinMetadataVersion)
			}
			voters, err := broker.PlanQuorumFormat(cfg, standalone, initial, noInitial)
			if err != nil {
				return err
			}
			dir, err := broker.FormatLogDir(cfg, clusterID)
			switch {
			case errors.Is(err, broker.ErrAlreadyFormatted) && ignoreFormatted:
				fmt.Fprintln(g.io.Out, "All of the log directories are already formatted.")
				return nil
			case errors.Is(err, broker.ErrAlreadyFormatted):
				return fmt.Errorf("Log directory %s is already formatted. Use --ignore-formatted to ignore this directory and format the others.", dir)
			case err != nil:
				return err
			}
			if err := broker.FormatQuorum(cfg, voters); err != nil {
				return err
			}
			if len(users) > 0 || features != nil {
				if err := broker.WriteBootstrap(cfg, users, features); err != nil {
					return err
				}
			}
			_, err = fmt.Fprintf(g.io.Out, "Formatting %s with cluster.id %s.\n", dir, clusterID)
			return err
		},
	}
	f := format.Flags()
	f.StringVarP(&clusterID, "cluster-id", "t", "", "the cluster id (kafka-storage.sh random-uuid makes one)")
	f.StringVarP(&config, "config", "c", "", "the server.properties file")
	f.BoolVarP(&ignoreFormatted, "ignore-formatted", "g", false, "succeed if the directory is already formatted")
	f.StringArrayVarP(&addSCRAM, "add-scram", "S", nil, "a SCRAM credential the cluster starts with: 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (or salt= and saltedpassword= in base64; iterations=4096 by default)")
	f.StringVarP(&release, "release-version", "r", "", "the release whose metadata.version and feature levels the cluster starts with (4.2, 4.2-IV0, ...; the latest by default)")
	f.StringArrayVar(&featureFlags, "feature", nil, "a feature level the cluster starts with, name=level (over --release-version's)")
	f.BoolVarP(&standalone, "standalone", "s", false, "a dynamic quorum (controller.quorum.bootstrap.servers): this controller starts it as its only voter")
	f.StringVarP(&initialControllers, "initial-controllers", "I", "", "a dynamic quorum's first voters, id@host:port:directory-id,...")
	f.BoolVarP(&noInitial, "no-initial-controllers", "N", false, "a dynamic quorum's controller that kafka-metadata-quorum add-controller adds later")
	format.MarkFlagRequired("cluster-id")
	format.MarkFlagRequired("config")
	cmd.AddCommand(format)
	var infoConfig string
	info := &cobra.Command{
		Use:   "info -c server.properties",
		Short: "Show the log directory and its meta.properties",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := brokerConfigFile(infoConfig)
			if err != nil {
				return err
			}
			meta, err := os.ReadFile(filepath.Join(cfg.DataDir, "meta.properties"))
			if err != nil {
				fmt.Fprintf(g.io.Out, "Found problem:\n  %s is not formatted.\n", cfg.DataDir)
				return errReported
			}
			props, err := broker.ReadProperties(strings.NewReader(string(meta)))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.io.Out, "Found log directory:\n  %s\n\nFound metadata: {cluster.id=%s, node.id=%s, version=%s}\n",
				cfg.DataDir, props["cluster.id"], props["node.id"], props["version"])
			return err
		},
	}
	info.Flags().StringVarP(&infoConfig, "config", "c", "", "the server.properties file")
	info.MarkFlagRequired("config")
	cmd.AddCommand(info)
	return cmd
}

// brokerConfigFile reads a server.properties as the broker does.
func brokerConfigFile(path string) (broker.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return broker.Config{}, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	props, err := broker.ReadProperties(f)
	if err != nil {
		return broker.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg, _, err := broker.ConfigFromProperties(props)
	if err == nil && cfg.DataDir == "" {
		err = fmt.Errorf("%s: no log.dirs", path)
	}
	return cfg, err
}

// parseAddSCRAM parses kafka-storage.sh's --add-scram value:
// MECHANISM=[name=N,password=P] or with salt= and saltedpassword= (base64)
// instead of the password, and iterations=; values may be double-quoted.
func parseAddSCRAM(spec string) (broker.BootstrapSCRAM, error) {
	var u broker.BootstrapSCRAM
	mech, rest, ok := strings.Cut(spec, "=")
	rest = strings.TrimSpace(rest)
	if !ok || !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") {
		return u, fmt.Errorf("--add-scram: want 'SCRAM-SHA-256=[name=alice,password=alice-secret]', got %q", spec)
	}
	u.Mechanism = strings.TrimSpace(mech)
	for _, kv := range strings.Split(rest[1:len(rest)-1], ",") {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		if !ok {
			return u, fmt.Errorf("--add-scram %s: want key=value, got %q", u.Mechanism, kv)
		}
		var err error
		switch k {
		case "name":
			u.User = v
		case "password":
			u.Password = v
		case "iterations":
			var n int64
			n, err = strconv.ParseInt(v, 10, 32)
			u.Iterations = int32(n)
		case "salt":
			u.Salt, err = base64.StdEncoding.DecodeString(v)
		case "saltedpassword":
			u.SaltedPassword, err = base64.StdEncoding.DecodeString(v)
		default:
			return u, fmt.Errorf("--add-scram %s: unknown key %q (name, password, salt, saltedpassword, iterations)", u.Mechanism, k)
		}
		if err != nil {
			return u, fmt.Errorf("--add-scram %s: %s: %w", u.Mechanism, k, err)
		}
	}
	if u.Password == "" && u.SaltedPassword == nil {
		return u, fmt.Errorf("--add-scram %s: password (or salt and saltedpassword) is required", u.Mechanism)
	}
	return u, nil
}
