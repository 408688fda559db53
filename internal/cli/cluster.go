package cli

import (
	"context"
	"fmt"

	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
)

func clusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Aliases: []string{"kafka-cluster"}, Short: "Describe the cluster, unregister a broker (like kafka-cluster.sh)"}
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
	cmd.AddCommand(&cobra.Command{
		Use:   "cluster-id",
		Short: "Show the cluster id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				cl, err := adm.DescribeCluster(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.io.Out, "Cluster ID: %s\n", cl.ClusterID)
				return nil
			})
		},
	})
	var id int32
	unregister := &cobra.Command{
		Use:   "unregister --id N",
		Short: "Remove a broker that is gone for good from the cluster's metadata (its leaderships move away)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				if err := adm.UnregisterBroker(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(g.io.Out, "Broker %d is no longer registered.\n", id)
				return nil
			})
		},
	}
	unregister.Flags().Int32VarP(&id, "id", "i", 0, "the id of the broker to unregister")
	unregister.MarkFlagRequired("id")
	cmd.AddCommand(unregister)
	controllerFlag(g, cmd)
	return cmd
}
