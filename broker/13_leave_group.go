package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// LeaveGroup: v0-5. v3 batches members, by member id or group.instance.id
// (KIP-345), v4 is flexible, v5 adds a reason.
var leaveGroupVersions = versions{0, 5}

func (b *Broker) handleLeaveGroup(rc *reqCtx, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.LeaveGroup(rc.ctx, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.LeaveGroupResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
