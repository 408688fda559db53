package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
)

// ConsumerGroupHeartbeat: v0-1 (KIP-848). v1 adds SubscribedTopicRegex and
// has the client choose its member id (KIP-1082; v0 lets the coordinator
// name it on the first heartbeat).
var consumerGroupHeartbeatVersions = versions{0, 1}

func (b *Broker) handleConsumerGroupHeartbeat(rc *reqCtx, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	var describable func(string) bool
	if authz := b.acls.authz; authz != nil {
		// Kept by the group past this request: the principal and host by
		// value, the ACLs looked up live.
		principal, host := auth.ParsePrincipal(rc.principal), rc.host
		describable = func(topic string) bool {
			return authz.Authorize(principal, host, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, topic)
		}
	}
	resp, err := b.coord.groups.ConsumerGroupHeartbeat(rc.ctx, rc.clientID, "/"+rc.host, describable, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
