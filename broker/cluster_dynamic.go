package broker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A dynamic quorum (KIP-853): the controllers are not configured
// (controller.quorum.bootstrap.servers only says where to reach some), the
// Raft configuration is. kafka-storage format writes into the metadata
// log's directory the voters the quorum starts with, as Kafka writes them
// into the bootstrap checkpoint: this node alone (--standalone), the
// listed ones (--initial-controllers), or none (--no-initial-controllers,
// a controller the active one adds later with AddRaftVoter). On the first
// start a node with voters bootstraps Raft with them; one without waits
// to be added. Once Raft has state the file is not read again.

// quorumBootstrapFile holds the initial voters, id@host:port:directory-id
// one a line.
const quorumBootstrapFile = "bootstrap.voters"

// metadataLogDir is where the quorum keeps its log, under log.dirs.
func metadataLogDir(dataDir string) string { return filepath.Join(dataDir, "__cluster_metadata-0") }

// InitialVoter is one controller of --initial-controllers.
type InitialVoter struct {
	ID          int32
	Addr        string // host:port of its controller listener
	DirectoryID string // base64 UUID, as meta.properties' directory.id
}

// ParseInitialControllers parses kafka-storage format's
// --initial-controllers: id@host:port:directory-id, comma separated.
func ParseInitialControllers(v string) ([]InitialVoter, error) {
	var out []InitialVoter
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		i := strings.LastIndex(e, ":")
		if i < 0 {
			return nil, fmt.Errorf("want id@host:port:directory-id entries, got %q", e)
		}
		voters, err := parseVoters(e[:i])
		dir := e[i+1:]
		if err != nil || len(voters) != 1 || !validUUID(dir) {
			return nil, fmt.Errorf("want id@host:port:directory-id entries (the directory id a base64 UUID), got %q", e)
		}
		for id, addr := range voters {
			if slices.ContainsFunc(out, func(v InitialVoter) bool { return v.ID == id }) {
				return nil, fmt.Errorf("node %d is listed twice", id)
			}
			out = append(out, InitialVoter{ID: id, Addr: addr, DirectoryID: dir})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no controllers")
	}
	return out, nil
}

// ParseUUID parses a Kafka UUID as its tools print one (base64, URL
// alphabet, no padding): a directory id.
func ParseUUID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("%q is no UUID (22 characters of base64)", s)
	}
	copy(id[:], b)
	return id, nil
}

func validUUID(s string) bool {
	_, err := ParseUUID(s)
	return err == nil
}

// PlanQuorumFormat checks kafka-storage format's --standalone,
// --initial-controllers and --no-initial-controllers with Kafka's rules
// (a controller without controller.quorum.voters needs exactly one of
// them, any other node none) and returns the voters this node starts the
// quorum with: nil for none.
func PlanQuorumFormat(cfg Config, standalone bool, initial []InitialVoter, none bool) ([]InitialVoter, error) {
	n := 0
	for _, set := range []bool{standalone, initial != nil, none} {
		if set {
			n++
		}
	}
	controller := slices.Contains(cfg.ProcessRoles, "controller")
	switch {
	case n > 1:
		return nil, errors.New("Only one of --standalone, --initial-controllers, or --no-initial-controllers can be specified.")
	case n == 1 && (!controller || strings.TrimSpace(cfg.QuorumVoters) != ""):
		return nil, errors.New("--standalone, --initial-controllers and --no-initial-controllers are for a controller of a dynamic quorum (controller.quorum.bootstrap.servers, no controller.quorum.voters)")
	case n == 0 && controller && cfg.dynamicQuorum():
		return nil, errors.New("Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers.")
	case n == 0 || none || !cfg.dynamicQuorum():
		// A combined node whose only bootstrap server is itself runs
		// as the single-node broker, with no quorum to start.
		return nil, nil
	case standalone:
		addr := cfg.controllerListen()
		if addr == "" {
			return nil, errors.New("--standalone: this node has no controller listener (listeners and controller.listener.names)")
		}
		return []InitialVoter{{ID: int32(cfg.BrokerID), Addr: addr}}, nil
	case !slices.ContainsFunc(initial, func(v InitialVoter) bool { return v.ID == int32(cfg.BrokerID) }):
		return nil, fmt.Errorf("--initial-controllers does not name this node (node.id %d)", cfg.BrokerID)
	}
	return initial, nil
}

// FormatQuorum writes the voters a dynamic quorum's controller starts
// with (PlanQuorumFormat's); none writes nothing.
func FormatQuorum(cfg Config, voters []InitialVoter) error {
	if len(voters) == 0 {
		return nil
	}
	var b strings.Builder
	for _, v := range voters {
		fmt.Fprintf(&b, "%d@%s\n", v.ID, v.Addr)
	}
	dir := metadataLogDir(cfg.DataDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, quorumBootstrapFile), []byte(b.String()), 0o644)
}

// readQuorumBootstrap is the voters format wrote for this node; none
// (nil) for a controller that waits to be added.
func readQuorumBootstrap(dataDir string) (map[int32]string, error) {
	data, err := os.ReadFile(filepath.Join(metadataLogDir(dataDir), quorumBootstrapFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	voters, err := parseVoters(strings.Join(strings.Fields(string(data)), ","))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", quorumBootstrapFile, err)
	}
	return voters, nil
}

// voterAddrs are the controllers by id with their CONTROLLER endpoints:
// controller.quorum.voters, or a dynamic quorum's current voters.
func (c *cluster) voterAddrs() map[int32]string {
	if !c.b.cfg.dynamicQuorum() {
		return c.voters
	}
	v, err := c.q.Voters()
	if err != nil {
		return map[int32]string{}
	}
	return v
}

// observerNode reports whether node id is a broker-only one, a Raft
// observer (AddObserver, RemoveObserver). A dynamic quorum has none: a
// node that is not a voter there is a controller not yet added, or one
// that is being added (a non-voter at its controller listener until it
// caught up), which an observer's address must not replace.
func (c *cluster) observerNode(id int32) bool {
	if c.b.cfg.dynamicQuorum() {
		return false
	}
	_, voter := c.voters[id]
	return !voter
}

// voterIDs are the controllers' ids, sorted.
func (c *cluster) voterIDs() []int32 { return slices.Sorted(maps.Keys(c.voterAddrs())) }
