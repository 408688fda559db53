package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/internal/client"
	internalprops "github.com/kafkit/kafkit/internal/props"
	"github.com/spf13/cobra"
)

// IO is what a run of the CLI reads and writes, and its environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string // KAFKA_BOOTSTRAP; nil reads nothing
}

// defaultBootstrap is what Kafka's tools assume for a local broker.
const defaultBootstrap = "localhost:9092"

// Run executes the command line args and returns the process exit code:
// 0 on success, 1 on any failure, after printing one line saying what went
// wrong on io.Err. ctx cancels the command (Ctrl-C in cmd/kafkit).
func Run(ctx context.Context, args []string, io IO) int {
	g := &globals{io: io}
	root := newRoot(g)
	args, err := rewriteActions(root, args)
	if err != nil {
		fmt.Fprintln(io.Err, "Error: "+err.Error())
		return 1
	}
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(io.Err, "Error: "+g.explain(err))
		}
		return 1
	}
	return 0
}

// globals are the flags every command shares.
type globals struct {
	io        IO
	bootstrap string
	// bootstrapController is --bootstrap-controller of the commands that
	// can talk to the controllers (controllerFlag).
	bootstrapController string
	commandConfig       string
	// clientKeysOnly: --command-config is a server's configuration
	// (add-controller's), of which the client takes the keys it knows,
	// as Kafka's clients ignore the others.
	clientKeysOnly bool
	output         string

	tls                                bool
	tlsCAFile, tlsCertFile, tlsKeyFile string
	tlsInsecure                        bool
	saslMechanism                      string
	saslUser, saslPassword             string

	// brokerList and zookeeper are flags of older Kafka tools: the first is
	// --bootstrap-server's old name, the second is refused with advice.
	brokerList, zookeeper string
	// kafkaTool names the Kafka tool kafkit runs as (kafka-topics, ...),
	// whose output differs from kafkit's own where Kafka's does; "" when
	// run as kafkit.
	kafkaTool string
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "kafkit",
		Short:         "Manage and use a Kafka cluster: topics, produce, consume, consumer groups, configs",
		SilenceErrors: true, // Run prints one line
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "table" && g.output != "json" {
				return fmt.Errorf("--output must be table or json, not %q", g.output)
			}
			if g.zookeeper != "" {
				return errors.New("--zookeeper is not supported: kafkit has no ZooKeeper (as Kafka since 3.x, KRaft); connect to a broker with --bootstrap-server HOST:PORT instead")
			}
			if g.brokerList != "" && !cmd.Flags().Changed("bootstrap-server") {
				g.bootstrap = g.brokerList
			}
			return nil
		},
	}
	def := defaultBootstrap
	if g.io.Getenv != nil && g.io.Getenv("KAFKA_BOOTSTRAP") != "" {
		def = g.io.Getenv("KAFKA_BOOTSTRAP")
	}
	f := root.PersistentFlags()
	f.StringVar(&g.bootstrap, "bootstrap-server", def, "comma-separated host:port list of brokers (env KAFKA_BOOTSTRAP)")
	f.StringVar(&g.commandConfig, "command-config", "", "properties file with client configs (security.protocol, sasl.mechanism, sasl.jaas.config, ...)")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	f.BoolVar(&g.tls, "tls", false, "connect with TLS")
	f.StringVar(&g.tlsCAFile, "tls-ca-file", "", "PEM file of CA certificates to trust (implies --tls)")
	f.StringVar(&g.tlsCertFile, "tls-cert-file", "", "PEM client certificate (implies --tls; needs --tls-key-file)")
	f.StringVar(&g.tlsKeyFile, "tls-key-file", "", "PEM client key")
	f.BoolVar(&g.tlsInsecure, "tls-insecure-skip-verify", false, "do not verify the broker's certificate (implies --tls)")
	f.StringVar(&g.saslMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.StringVar(&g.saslUser, "sasl-username", "", "SASL user")
	f.StringVar(&g.saslPassword, "sasl-password", "", "SASL password")
	f.StringVar(&g.brokerList, "broker-list", "", "old name of --bootstrap-server (kafka-console-producer.sh, perf tools)")
	f.StringVar(&g.zookeeper, "zookeeper", "", "not supported: use --bootstrap-server")
	f.MarkHidden("broker-list")
	f.MarkHidden("zookeeper")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(topicsCmd(g), produceCmd(g), consumeCmd(g), groupsCmd(g), configsCmd(g), clusterCmd(g), aclsCmd(g), consoleCmd(g), toolsCmd())
	for command, ac := range actionCommands {
		root.AddCommand(toolAliasCmd(g, ac.tool, command))
	}
	root.AddCommand(consoleProducerCmd(g), consoleConsumerCmd(g), getOffsetsCmd(g), deleteRecordsCmd(g),
		apiVersionsCmd(g), producerPerfCmd(g), consumerPerfCmd(g), leaderElectionCmd(g),
		reassignPartitionsCmd(g), serverStartCmd(g), serverStopCmd(g), storageCmd(g))
	root.AddCommand(shareGroupsCmd(g), metadataQuorumCmd(g), featuresCmd(g))
	return root
}

// clientConfig loads a producer, consumer or admin Config (load is its
// ConfigFromProperties) from the --command-config properties, with
// bootstrap.servers from --bootstrap-server and the command's own keys
// (set) on top, then lays the TLS and SASL flags over the fields that
// security points to.
func clientConfig[C any](g *globals, set map[string]string, load func(map[string]string) (C, error),
	security func(*C) (**tls.Config, **kafkit.SASL),
) (C, error) {
	props := map[string]string{}
	if g.commandConfig != "" {
		var err error
		if props, err = readProperties(g.commandConfig); err != nil {
			var zero C
			return zero, err
		}
	}
	props["bootstrap.servers"] = g.bootstrap
	if g.bootstrapController != "" {
		delete(props, "bootstrap.servers")
		props["bootstrap.controllers"] = g.bootstrapController
	}
	maps.Copy(props, set)
	cfg, err := load(props)
	if unknown := internalprops.UnknownKeys(err); g.clientKeysOnly && len(unknown) > 0 {
		for _, k := range unknown {
			delete(props, k)
		}
		cfg, err = load(props)
	}
	if err != nil {
		return cfg, err
	}
	t, s := security(&cfg)
	if *t, err = g.tlsConfig(*t); err != nil {
		return cfg, err
	}
	if flags := g.sasl(); flags != nil {
		*s = flags
	}
	return cfg, nil
}

// tlsConfig is the TLS the flags ask for, or base (from --command-config)
// when they ask for none.
func (g *globals) tlsConfig(base *tls.Config) (*tls.Config, error) {
	if !g.tls && g.tlsCAFile == "" && g.tlsCertFile == "" && !g.tlsInsecure {
		return base, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: g.tlsInsecure}
	if g.tlsCAFile != "" {
		pem, err := os.ReadFile(g.tlsCAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca-file: no PEM certificate in %s", g.tlsCAFile)
		}
	}
	if g.tlsCertFile != "" || g.tlsKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(g.tlsCertFile, g.tlsKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// sasl is the SASL the flags ask for, or nil.
func (g *globals) sasl() *kafkit.SASL {
	if g.saslMechanism == "" && g.saslUser == "" {
		return nil
	}
	mech := strings.ToUpper(g.saslMechanism)
	if mech == "" {
		mech = kafkit.SASLPlain
	}
	return &kafkit.SASL{Mechanism: mech, User: g.saslUser, Password: g.saslPassword}
}

// admin connects an admin client.
func (g *globals) admin(ctx context.Context) (*admin.Client, error) {
	cfg, err := clientConfig(g, map[string]string{"client.id": "kafkit-cli"}, admin.ConfigFromProperties,
		func(c *admin.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
	if err != nil {
		return nil, err
	}
	return admin.New(ctx, cfg)
}

// withAdmin runs fn with a connected admin client and closes it.
func (g *globals) withAdmin(cmd *cobra.Command, fn func(ctx context.Context, adm *admin.Client) error) error {
	return g.withAdminCtx(cmd.Context(), fn)
}

func (g *globals) withAdminCtx(ctx context.Context, fn func(ctx context.Context, adm *admin.Client) error) error {
	adm, err := g.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	return fn(ctx, adm)
}

// errUnknownTopic names a topic that does not exist, as Kafka's tools say it.
type errUnknownTopic string

func (e errUnknownTopic) Error() string { return fmt.Sprintf("topic '%s' does not exist", string(e)) }

// explain turns err into the one line the user sees.
func (g *globals) explain(err error) string {
	var unknown errUnknownTopic
	switch {
	case errors.As(err, &unknown) && g.kafkaTool == "kafka-topics":
		return fmt.Sprintf("Topic '%s' does not exist as expected", string(unknown))
	case errors.As(err, &unknown):
		return unknown.Error()
	case errors.Is(err, client.ErrNoBrokers) || errors.Is(err, client.ErrDial):
		// The innermost cause ("connection refused", "i/o timeout", "no
		// such host") is the last part of the chain's message.
		why := err.Error()
		if i := strings.LastIndex(why, ": "); i >= 0 {
			why = why[i+2:]
		}
		return fmt.Sprintf("cannot connect to a Kafka broker at %s (%s); check the host and port (--bootstrap-server or KAFKA_BOOTSTRAP) and that the broker runs, e.g. `go run ./cmd/broker`",
			g.bootstrap, why)
	}
	return oneLine(err)
}

// oneLine joins the lines of a multi-error.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
