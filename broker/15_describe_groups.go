package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeGroups: v0-6. v3 adds authorized operations, v4 instance ids, v5
// is flexible, v6 answers GROUP_ID_NOT_FOUND for unknown groups (KIP-1043;
// older versions describe them as "Dead").
var describeGroupsVersions = versions{0, 6}

func (b *Broker) handleDescribeGroups(rc *reqCtx, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.DescribeGroups(rc.ctx, req)
	if err != nil {
		code, err := coordinatorFailed(rc, err)
		if err != nil {
			return nil, err
		}
		resp = req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, id := range req.Groups {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
	}
	return resp, nil
}
