package cli

import (
	"context"
	"fmt"

	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
)

func clusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Describe the cluster"}
	cmd.AddCommand(&cobra.Command{
		Use:   "describe",
		Short: "Show the cluster id, the controller and the brokers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				cl, err := adm.DescribeCluster(ctx)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, cl)
				}
				fmt.Fprintf(g.io.Out, "Cluster ID: %s\nController: %d\n\n", cl.ClusterID, cl.ControllerID)
				t := newTable(g.io.Out, "BROKER", "HOST", "PORT", "RACK")
				for _, b := range cl.Brokers {
					t.row(b.ID, b.Host, b.Port, dashIfEmpty(b.Rack))
				}
				return t.flush()
			})
		},
	})
	return cmd
}
