package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kafkit/kafkit/admin"
)

// metadataQuorumCmd is kafka-metadata-quorum.sh's describe: the KRaft
// metadata quorum's leader, epoch, high watermark and the voters' and
// observers' logs, printed as Kafka's tool prints them. With
// --bootstrap-server a broker forwards the request to the active
// controller; with --bootstrap-controller the admin client finds the
// active controller itself (DescribeCluster of the controllers).
func metadataQuorumCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "metadata-quorum",
		Aliases: []string{"kafka-metadata-quorum"},
		Short:   "Describe the KRaft metadata quorum (like kafka-metadata-quorum.sh)",
	}
	var status, replication, human bool
	describe := &cobra.Command{
		Use:   "describe (--status | --replication [--human-readable])",
		Short: "The quorum's leader, epoch and high watermark (--status) or each member's log (--replication)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case status && replication:
				return errors.New("Only one of --status or --replication should be specified with describe sub-command")
			case !status && !replication:
				return errors.New("One of --status or --replication must be specified with describe sub-command")
			case status && human:
				return errors.New("The option --human-readable is only supported along with --replication")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				q, err := adm.DescribeMetadataQuorum(ctx)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, q)
				}
				if replication {
					return printQuorumReplication(g.io.Out, q, human, time.Now())
				}
				cl, err := adm.DescribeCluster(ctx)
				if err != nil {
					return err
				}
				return printQuorumStatus(g.io.Out, cl.ClusterID, q)
			})
		},
	}
	controllerFlag(g, cmd)
	f := describe.Flags()
	f.BoolVar(&status, "status", false, "a short summary of the quorum status")
	f.BoolVar(&replication, "replication", false, "detailed information about the status of replication")
	f.BoolVar(&human, "human-readable", false, "times as how long ago (with --replication)")
	cmd.AddCommand(describe)
	quorumVoterCmds(g, cmd)
	return cmd
}

// quorumLeader is the leader's own entry among the voters.
func quorumLeader(q admin.QuorumInfo) (admin.QuorumReplica, error) {
	i := slices.IndexFunc(q.Voters, func(r admin.QuorumReplica) bool { return r.ID == q.LeaderID })
	if i < 0 {
		return admin.QuorumReplica{}, fmt.Errorf("the quorum's leader %d is not among its voters", q.LeaderID)
	}
	return q.Voters[i], nil
}

// printQuorumStatus is MetadataQuorumCommand's handleDescribeStatus.
func printQuorumStatus(w io.Writer, clusterID string, q admin.QuorumInfo) error {
	leader, err := quorumLeader(q)
	if err != nil {
		return err
	}
	lagging := leader
	for _, v := range q.Voters {
		if v.LogEndOffset < lagging.LogEndOffset {
			lagging = v
		}
	}
	lagTime := int64(-1)
	switch {
	case lagging.ID == leader.ID:
		lagTime = 0
	case leader.LastCaughtUpTimestamp >= 0 && lagging.LastCaughtUpTimestamp >= 0:
		lagTime = leader.LastCaughtUpTimestamp - lagging.LastCaughtUpTimestamp
	}
	_, err = fmt.Fprintf(w, "ClusterId:              %s\nLeaderId:               %d\nLeaderEpoch:            %d\nHighWatermark:          %d\n"+
		"MaxFollowerLag:         %d\nMaxFollowerLagTimeMs:   %d\nCurrentVoters:          %s\nCurrentObservers:       %s\n",
		clusterID, q.LeaderID, q.LeaderEpoch, q.HighWatermark, leader.LogEndOffset-lagging.LogEndOffset, lagTime,
		quorumMembers(q, q.Voters), quorumMembers(q, q.Observers))
	return err
}

// quorumMembers prints replicas as Kafka's tool does: [{"id": 1,
// "directoryId": null, "endpoints": ["CONTROLLER://host:port"]}, ...].
func quorumMembers(q admin.QuorumInfo, rs []admin.QuorumReplica) string {
	var parts []string
	for _, r := range rs {
		s := fmt.Sprintf(`{"id": %d, "directoryId": null`, r.ID)
		if eps := q.Nodes[r.ID]; len(eps) > 0 {
			var quoted []string
			for _, e := range eps {
				quoted = append(quoted, `"`+e.Name+"://"+net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))+`"`)
			}
			s += `, "endpoints": [` + strings.Join(quoted, ", ") + "]"
		}
		parts = append(parts, s+"}")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// printQuorumReplication is MetadataQuorumCommand's
// handleDescribeReplication: the leader, the other voters, the observers.
func printQuorumReplication(w io.Writer, q admin.QuorumInfo, human bool, now time.Time) error {
	leader, err := quorumLeader(q)
	if err != nil {
		return err
	}
	ago := func(ms int64, what string) (string, error) {
		switch {
		case ms < 0:
			return "-1", nil
		case !human:
			return strconv.FormatInt(ms, 10), nil
		case ms == 0 || ms > now.UnixMilli():
			return "", fmt.Errorf("Error while computing relative time, possible drift in system clock.\nCurrent timestamp is %d, %s timestamp is %d", now.UnixMilli(), what, ms)
		}
		return fmt.Sprintf("%d ms ago", now.UnixMilli()-ms), nil
	}
	rows := [][]string{{"NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"}}
	add := func(r admin.QuorumReplica, status string) error {
		fetch, err := ago(r.LastFetchTimestamp, "last fetch")
		if err != nil {
			return err
		}
		caught, err := ago(r.LastCaughtUpTimestamp, "last caught up")
		if err != nil {
			return err
		}
		rows = append(rows, []string{strconv.Itoa(int(r.ID)), "AAAAAAAAAAAAAAAAAAAAAA", strconv.FormatInt(r.LogEndOffset, 10),
			strconv.FormatInt(leader.LogEndOffset-r.LogEndOffset, 10), fetch, caught, status})
		return nil
	}
	if err := add(leader, "Leader"); err != nil {
		return err
	}
	for _, v := range q.Voters {
		if v.ID != leader.ID {
			if err := add(v, "Follower"); err != nil {
				return err
			}
		}
	}
	for _, o := range q.Observers {
		if err := add(o, "Observer"); err != nil {
			return err
		}
	}
	// ToolsUtils.prettyPrintTable: each cell padded to its column's width,
	// then a tab.
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			b.WriteString(cell + strings.Repeat(" ", widths[i]-len(cell)) + "\t")
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}
