package client

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NewForControllers starts a client of a KRaft cluster's controllers, cfg's
// SeedBrokers being their CONTROLLER endpoints (Kafka's
// bootstrap.controllers, KIP-919). Controllers answer no Metadata: the
// client learns the quorum from DescribeCluster (Controllers) and keeps no
// metadata of topics; Request goes to any controller, RequestBroker to one
// Controllers named.
func NewForControllers(cfg Config) (*Client, error) {
	return newSeedClient(cfg)
}

// Controllers asks a controller for the cluster's id, the active
// controller (-1 while there is none) and every controller's endpoint, as
// Kafka's admin client does with bootstrap.controllers: DescribeCluster
// with EndpointType 2. The controllers can be addressed by id afterwards.
func (cl *Client) Controllers(ctx context.Context) (clusterID string, active int32, controllers map[int32]BrokerMeta, err error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	kresp, err := cl.Request(ctx, req)
	if err != nil {
		return "", -1, nil, err
	}
	resp := kresp.(*kmsg.DescribeClusterResponse)
	if resp.GetVersion() < 1 {
		return "", -1, nil, fmt.Errorf("%w: the node answers DescribeCluster v%d, before controller endpoints (v1, KIP-919)", ErrUnsupportedAPI, resp.GetVersion())
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = ": " + *resp.ErrorMessage
		}
		return "", -1, nil, fmt.Errorf("describe controllers: %w%s", err, msg)
	}
	controllers = map[int32]BrokerMeta{}
	for _, b := range resp.Brokers {
		bm := BrokerMeta{ID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			bm.Rack = *b.Rack
		}
		controllers[b.NodeID] = bm
	}
	cl.updateBrokers(controllers)
	return resp.ClusterID, resp.ControllerID, controllers, nil
}
