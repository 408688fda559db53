package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// OffsetDelete: v0, the only version (KIP-496). Offsets of topics a member
// of a live consumer group subscribes to are refused with
// GROUP_SUBSCRIBED_TO_TOPIC.
var offsetDeleteVersions = versions{0, 0}

func (b *Broker) handleOffsetDelete(rc *reqCtx, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.DeleteOffsets(rc.ctx, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
