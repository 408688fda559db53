package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// APIVersion is the range of versions of one API (request key) that a
// broker supports.
type APIVersion struct {
	Key      int16
	Min, Max int16
}

// APIVersions asks one broker (an ID from DescribeCluster) which APIs and
// versions it supports, in the order it answers.
func (c *Client) APIVersions(ctx context.Context, broker int32) ([]APIVersion, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kafkit", "1"
	kresp, err := c.cl.RequestBroker(ctx, broker, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.ApiVersionsResponse)
	if err := kafkaErr("api versions", fmt.Sprintf("broker %d", broker), resp.ErrorCode, nil); err != nil {
		return nil, err
	}
	out := make([]APIVersion, len(resp.ApiKeys))
	for i, k := range resp.ApiKeys {
		out[i] = APIVersion{Key: k.ApiKey, Min: k.MinVersion, Max: k.MaxVersion}
	}
	return out, nil
}
