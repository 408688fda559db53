package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// JoinGroup: v0-9. v1 adds the rebalance timeout, v4 requires a member id
// (MEMBER_ID_REQUIRED on the first join, KIP-394), v5 static membership
// (KIP-345), v6 is flexible, v7 returns the protocol type, v8 a reason,
// v9 SkipAssignment (always false: the leader assigns). The request blocks
// until the rebalance completes; the connection handles nothing else
// meanwhile, as in Kafka.
var joinGroupVersions = versions{0, 9}

func (b *Broker) handleJoinGroup(rc *reqCtx, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	// Kafka reports the client host as InetAddress.toString prints it.
	resp, err := b.coord.groups.JoinGroup(rc.ctx, rc.clientID, "/"+rc.host, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.JoinGroupResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
