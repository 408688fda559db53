package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// Heartbeat: v0-4. v3 adds group.instance.id (KIP-345), v4 is flexible.
var heartbeatVersions = versions{0, 4}

func (b *Broker) handleHeartbeat(rc *reqCtx, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.Heartbeat(rc.ctx, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.HeartbeatResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
