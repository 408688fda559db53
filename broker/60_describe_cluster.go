package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-2 (v1 adds EndpointType, v2 IncludeFencedBrokers).
var describeClusterVersions = versions{0, 2}

func (b *Broker) handleDescribeCluster(rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1 // brokers
	if req.EndpointType != 0 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = &kerr.UnsupportedEndpointType.Description
		return resp, nil
	}
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.nodeID
	host, port := b.endpoint(rc.listener)
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: b.nodeID, Host: host, Port: port}}
	resp.ClusterAuthorizedOperations = -2147483648
	if b.cluster != nil {
		b.cluster.describeCluster(rc, resp)
	}
	return resp, nil
}
