package admin

import (
	"context"
	"maps"
	"slices"
)

// Broker is one broker of the cluster.
type Broker struct {
	ID   int32
	Host string
	Port int32
	Rack string `json:",omitempty"`
}

// Cluster describes the cluster: its id, controller and brokers (sorted by
// id).
type Cluster struct {
	ClusterID    string
	ControllerID int32 // -1 if unknown
	Brokers      []Broker
}

// DescribeCluster returns the cluster's id, controller and brokers from
// fresh metadata.
func (c *Client) DescribeCluster(ctx context.Context) (Cluster, error) {
	md, err := c.metadata(ctx)
	if err != nil {
		return Cluster{}, err
	}
	out := Cluster{ClusterID: md.ClusterID, ControllerID: md.ControllerID}
	for _, id := range slices.Sorted(maps.Keys(md.Brokers)) {
		b := md.Brokers[id]
		out.Brokers = append(out.Brokers, Broker{ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	return out, nil
}
