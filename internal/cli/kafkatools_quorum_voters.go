package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
)

// kafka-metadata-quorum.sh's add-controller and remove-controller
// (KIP-853, MetadataQuorumCommand): add-controller reads the new
// controller's own configuration (--command-config, which also configures
// the admin client's security): its node.id, the directory id in the
// meta.properties of its metadata log directory, and its controller
// listeners' advertised endpoints, and sends AddRaftVoter; the
// controller must be running. remove-controller sends RemoveRaftVoter.
func quorumVoterCmds(g *globals, cmd *cobra.Command) {
	var dryRun bool
	add := &cobra.Command{
		Use:   "add-controller --command-config controller.properties [--dry-run]",
		Short: "Add a controller to the KRaft controller cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.commandConfig == "" {
				return errors.New("You must supply the configuration file of the controller you are adding when using add-controller.")
			}
			props, err := readProperties(g.commandConfig)
			if err != nil {
				return err
			}
			id, err := controllerID(props)
			if err != nil {
				return err
			}
			meta, err := metadataDirMeta(props)
			if err != nil {
				return err
			}
			endpoints, err := controllerEndpoints(props)
			if err != nil {
				return err
			}
			if !dryRun {
				g.clientKeysOnly = true
				err := g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
					return adm.AddRaftVoter(ctx, meta.clusterID, id, meta.dirID, endpoints)
				})
				if err != nil {
					return err
				}
			}
			var b strings.Builder
			b.WriteString("Added")
			if dryRun {
				b.Reset()
				b.WriteString("DRY RUN of adding")
			}
			fmt.Fprintf(&b, " controller %d with directory id %s and endpoints: ", id, meta.dirString)
			for i, e := range endpoints {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s://%s", e.Name, net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))))
			}
			_, err = fmt.Fprintln(g.io.Out, b.String())
			return err
		},
	}
	add.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be done, but do not do it")
	var removeID int32
	var removeDir string
	var removeDry bool
	remove := &cobra.Command{
		Use:   "remove-controller --controller-id ID --controller-directory-id UUID [--dry-run]",
		Short: "Remove a controller from the KRaft controller cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if removeID < 0 {
				return fmt.Errorf("Invalid negative --controller-id: %d", removeID)
			}
			dir, err := broker.ParseUUID(removeDir)
			if err != nil {
				return fmt.Errorf("Failed to parse --controller-directory-id: %v", err)
			}
			if !removeDry {
				err := g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
					return adm.RemoveRaftVoter(ctx, removeID, dir)
				})
				if err != nil {
					return err
				}
			}
			what := "Removed"
			if removeDry {
				what = "DRY RUN of removing"
			}
			_, err = fmt.Fprintf(g.io.Out, "%s KRaft controller %d with directory id %s\n", what, removeID, removeDir)
			return err
		},
	}
	f := remove.Flags()
	f.Int32VarP(&removeID, "controller-id", "i", -1, "the id of the controller to remove")
	f.StringVarP(&removeDir, "controller-directory-id", "d", "", "the directory id of the controller to remove")
	f.BoolVar(&removeDry, "dry-run", false, "print what would be done, but do not do it")
	remove.MarkFlagRequired("controller-id")
	remove.MarkFlagRequired("controller-directory-id")
	cmd.AddCommand(add, remove)
}

// controllerID is a controller configuration's node.id, with
// MetadataQuorumCommand's checks.
func controllerID(props map[string]string) (int32, error) {
	v, ok := props["node.id"]
	if !ok {
		return 0, errors.New("node.id not found in configuration file. Is this a valid controller configuration file?")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 0 {
		return 0, errors.New("node.id was negative in configuration file. Is this a valid controller configuration file?")
	}
	if !strings.Contains(props["process.roles"], "controller") {
		return 0, errors.New("process.roles did not contain 'controller' in configuration file. Is this a valid controller configuration file?")
	}
	return int32(n), nil
}

// metaProps is what add-controller reads of the metadata log directory's
// meta.properties.
type metaProps struct {
	clusterID, dirString string
	dirID                [16]byte
}

// metadataDirMeta reads meta.properties of the controller's metadata log
// directory (metadata.log.dir, else the first of log.dirs).
func metadataDirMeta(props map[string]string) (metaProps, error) {
	dir := strings.TrimSpace(props["metadata.log.dir"])
	if dir == "" {
		dir, _, _ = strings.Cut(strings.TrimSpace(props["log.dirs"]), ",")
	}
	if dir == "" {
		dir, _, _ = strings.Cut(strings.TrimSpace(props["log.dir"]), ",")
	}
	if dir == "" {
		return metaProps{}, errors.New("Neither metadata.log.dir nor log.dirs were found. Is this a valid controller configuration file?")
	}
	meta, err := readProperties(filepath.Join(dir, "meta.properties"))
	if err != nil {
		return metaProps{}, fmt.Errorf("Unable to read meta.properties from %s", dir)
	}
	s := meta["directory.id"]
	if s == "" {
		return metaProps{}, fmt.Errorf("No directory id found in %s", dir)
	}
	id, err := broker.ParseUUID(s)
	if err != nil {
		return metaProps{}, fmt.Errorf("%s/meta.properties: directory.id %w", dir, err)
	}
	return metaProps{clusterID: meta["cluster.id"], dirString: base64.RawURLEncoding.EncodeToString(id[:]), dirID: id}, nil
}

// controllerEndpoints are the controller listeners' endpoints,
// advertised.listeners over listeners, as getControllerAdvertisedListeners.
func controllerEndpoints(props map[string]string) ([]admin.RaftVoterEndpoint, error) {
	byName := map[string]admin.RaftVoterEndpoint{}
	for _, key := range []string{"listeners", "advertised.listeners"} {
		for _, l := range strings.Split(props[key], ",") {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			name, hostPort, ok := strings.Cut(l, "://")
			host, port, err := net.SplitHostPort(hostPort)
			p, perr := strconv.ParseUint(port, 10, 16)
			if !ok || err != nil || perr != nil {
				return nil, fmt.Errorf("%s: want NAME://host:port entries, got %q", key, l)
			}
			if host == "" {
				host = "localhost"
			}
			name = strings.ToUpper(strings.TrimSpace(name))
			byName[name] = admin.RaftVoterEndpoint{Name: name, Host: host, Port: uint16(p)}
		}
	}
	names, ok := props["controller.listener.names"]
	if !ok {
		return nil, errors.New("controller.listener.names was not found. Is this a valid controller configuration file?")
	}
	var out []admin.RaftVoterEndpoint
	for _, n := range strings.Split(names, ",") {
		n = strings.ToUpper(strings.TrimSpace(n))
		e, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("Cannot find information about controller listener name: %s", n)
		}
		out = append(out, e)
	}
	return out, nil
}
