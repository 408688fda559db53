package admin

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RaftVoterEndpoint is one listener of a controller joining the quorum:
// Kafka's RaftVoterEndpoint.
type RaftVoterEndpoint struct {
	Name string
	Host string
	Port uint16
}

// AddRaftVoter asks the active controller to make controller id, whose
// metadata log directory has directory id dirID, a voter of the metadata
// quorum (KIP-853; Admin.addRaftVoter): it must be running and reachable at
// its endpoint for the controllers' listener. clusterID, if not empty, is
// checked against the cluster's.
func (c *Client) AddRaftVoter(ctx context.Context, clusterID string, id int32, dirID [16]byte, endpoints []RaftVoterEndpoint) error {
	req := kmsg.NewPtrAddRaftVoterRequest()
	if clusterID != "" {
		req.ClusterID = &clusterID
	}
	req.TimeoutMillis, req.VoterID, req.VoterDirectoryID = 30000, id, dirID
	for _, e := range endpoints {
		l := kmsg.NewAddRaftVoterRequestListener()
		l.Name, l.Host, l.Port = e.Name, e.Host, e.Port
		req.Listeners = append(req.Listeners, l)
	}
	_, err := askController(ctx, c, "add raft voter", req, func(r *kmsg.AddRaftVoterResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	return err
}

// RemoveRaftVoter asks the active controller to take controller id (with
// directory id dirID) out of the metadata quorum's voters (KIP-853;
// Admin.removeRaftVoter).
func (c *Client) RemoveRaftVoter(ctx context.Context, id int32, dirID [16]byte) error {
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.VoterID, req.VoterDirectoryID = id, dirID
	_, err := askController(ctx, c, "remove raft voter", req, func(r *kmsg.RemoveRaftVoterResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	return err
}
