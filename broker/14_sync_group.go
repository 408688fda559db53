package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: v0-5. v3 adds group.instance.id, v4 is flexible, v5 checks the
// protocol type and name, both mandatory. A follower's request blocks until
// the leader's assignments arrive.
var syncGroupVersions = versions{0, 5}

func (b *Broker) handleSyncGroup(rc *reqCtx, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	if rc.version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return resp, nil
	}
	resp, err := b.coord.groups.SyncGroup(rc.ctx, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.SyncGroupResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
