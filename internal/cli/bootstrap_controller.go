package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// controllerFlag gives cmd and its subcommands Kafka's
// --bootstrap-controller (KIP-919): the admin client then talks to the
// controllers' CONTROLLER endpoints instead of brokers
// (admin.Config.BootstrapControllers), as kafka-metadata-quorum.sh and
// kafka-cluster.sh do with it. Only one of it and --bootstrap-server may
// be given.
func controllerFlag(g *globals, cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&g.bootstrapController, "bootstrap-controller", "",
		"comma-separated host:port list of the controllers' CONTROLLER endpoints, instead of --bootstrap-server")
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if root := c.Root(); root.PersistentPreRunE != nil {
			if err := root.PersistentPreRunE(c, args); err != nil {
				return err
			}
		}
		if g.bootstrapController != "" && c.Flags().Changed("bootstrap-server") {
			return errors.New("Only one of --bootstrap-server or --bootstrap-controller must be specified")
		}
		return nil
	}
}
