package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-2 (v1 adds EndpointType, v2 IncludeFencedBrokers).
// A client listener describes the brokers (EndpointType 1); a cluster
// node's CONTROLLER listener describes the controllers (2, KIP-919: what
// --bootstrap-controller finds the quorum with), as Kafka's ControllerApis
// does. A request for the other type gets MISMATCHED_ENDPOINT_TYPE, an
// unknown type UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0).
var describeClusterVersions = versions{0, 2}

const (
	endpointBrokers     = 1
	endpointControllers = 2
)

func (b *Broker) handleDescribeCluster(rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterAuthorizedOperations = -2147483648
	want, names := int8(endpointBrokers), "BROKER"
	if b.cluster != nil && rc.listener == controllerListener {
		want, names = endpointControllers, "CONTROLLER"
	}
	resp.EndpointType = want
	if req.EndpointType != want {
		e, msg := kerr.MismatchedEndpointType, fmt.Sprintf("The request was sent to an endpoint of type %s, but we wanted an endpoint of type %s", names, endpointName(req.EndpointType))
		if req.EndpointType != endpointBrokers && req.EndpointType != endpointControllers {
			e, msg = kerr.UnsupportedEndpointType, fmt.Sprintf("Unsupported endpoint type %d", req.EndpointType)
		}
		if rc.version == 0 {
			e = kerr.InvalidRequest
		}
		resp.ErrorCode, resp.ErrorMessage = e.Code, &msg
		return resp, nil
	}
	resp.ClusterID = b.clusterID
	if want == endpointControllers {
		b.cluster.describeControllers(resp)
		return resp, nil
	}
	resp.ControllerID = b.nodeID
	host, port := b.endpoint(rc.listener)
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: b.nodeID, Host: host, Port: port}}
	if b.cluster != nil {
		b.cluster.describeCluster(rc, resp)
	}
	return resp, nil
}

func endpointName(t int8) string {
	switch t {
	case endpointBrokers:
		return "BROKER"
	case endpointControllers:
		return "CONTROLLER"
	}
	return "UNKNOWN"
}
