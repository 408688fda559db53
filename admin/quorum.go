package admin

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// QuorumReplica is one member of the metadata quorum as the active
// controller knows it.
type QuorumReplica struct {
	ID           int32
	LogEndOffset int64 // -1 unknown
	// LastFetchTimestamp and LastCaughtUpTimestamp are Unix milliseconds,
	// -1 unknown.
	LastFetchTimestamp, LastCaughtUpTimestamp int64
}

// QuorumEndpoint is a voter's listener.
type QuorumEndpoint struct {
	Name, Host string
	Port       uint16
}

// QuorumInfo is the KRaft metadata quorum (KIP-595's DescribeQuorum):
// the active controller, its epoch, the log's high watermark, and the
// voters and observers (brokers that are no voter) with their logs.
type QuorumInfo struct {
	LeaderID      int32
	LeaderEpoch   int32
	HighWatermark int64
	Voters        []QuorumReplica
	Observers     []QuorumReplica
	// Nodes are the voters' endpoints, by id (brokers of Kafka 3.8 and
	// later, kafkit's).
	Nodes map[int32][]QuorumEndpoint `json:",omitempty"`
}

// DescribeMetadataQuorum describes the metadata quorum, as the active
// controller sees it (a broker forwards the request there).
func (c *Client) DescribeMetadataQuorum(ctx context.Context) (QuorumInfo, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	resp, err := askController(ctx, c, "describe metadata quorum", req, func(r *kmsg.DescribeQuorumResponse) (int16, *string) {
		if r.ErrorCode != 0 {
			return r.ErrorCode, r.ErrorMessage
		}
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return kerr.UnknownServerError.Code, nil
		}
		p := r.Topics[0].Partitions[0]
		return p.ErrorCode, p.ErrorMessage
	})
	if err != nil {
		return QuorumInfo{}, err
	}
	p := resp.Topics[0].Partitions[0]
	out := QuorumInfo{LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch, HighWatermark: p.HighWatermark}
	replicas := func(in []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []QuorumReplica {
		var rs []QuorumReplica
		for _, r := range in {
			rs = append(rs, QuorumReplica{ID: r.ReplicaID, LogEndOffset: r.LogEndOffset, LastFetchTimestamp: r.LastFetchTimestamp, LastCaughtUpTimestamp: r.LastCaughtUpTimestamp})
		}
		return rs
	}
	out.Voters, out.Observers = replicas(p.CurrentVoters), replicas(p.Observers)
	for _, n := range resp.Nodes {
		if out.Nodes == nil {
			out.Nodes = map[int32][]QuorumEndpoint{}
		}
		for _, l := range n.Listeners {
			out.Nodes[n.NodeID] = append(out.Nodes[n.NodeID], QuorumEndpoint{Name: l.Name, Host: l.Host, Port: l.Port})
		}
	}
	return out, nil
}

// UnregisterBroker removes broker id's registration from the cluster's
// metadata (kafka-cluster.sh unregister), for a broker that is gone for
// good: its partitions' leaderships and ISR memberships move away. A
// broker that is still running registers again.
func (c *Client) UnregisterBroker(ctx context.Context, id int32) error {
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = id
	_, err := askController(ctx, c, "unregister broker", req, func(r *kmsg.UnregisterBrokerResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	return err
}
