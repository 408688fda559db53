package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ListGroups: v0-5. v3 is flexible, v4 filters by state (KIP-518), v5 by
// group type (KIP-848: classic or consumer).
var listGroupsVersions = versions{0, 5}

func (b *Broker) handleListGroups(rc *reqCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.ListGroups(rc.ctx, req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.ListGroupsResponse)
		if resp.ErrorCode, err = coordinatorFailed(rc, err); err != nil {
			return nil, err
		}
	}
	b.listShareGroups(req, resp)
	return resp, nil
}
