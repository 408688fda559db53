package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DeleteGroups: v0-2. v2 is flexible. Only Empty groups can be deleted
// (NON_EMPTY_GROUP otherwise); their offsets go with them.
var deleteGroupsVersions = versions{0, 2}

func (b *Broker) handleDeleteGroups(rc *reqCtx, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.DeleteGroups(rc.ctx, req)
	if err != nil {
		code, err := coordinatorFailed(rc, err)
		if err != nil {
			return nil, err
		}
		resp = req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, id := range req.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
	}
	b.deleteShareGroups(resp)
	return resp, nil
}
