package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ConsumerGroupHeartbeat: v0-1 (KIP-848). v1 adds SubscribedTopicRegex and
// has the client choose its member id (KIP-1082; v0 lets the coordinator
// name it on the first heartbeat).
var consumerGroupHeartbeatVersions = versions{0, 1}

func (b *Broker) handleConsumerGroupHeartbeat(rc *reqCtx, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.ConsumerGroupHeartbeat(rc.ctx, rc.clientID, "/"+rc.host, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
