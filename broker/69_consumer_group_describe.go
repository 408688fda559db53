package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ConsumerGroupDescribe: v0-1 (KIP-848). v1 adds each member's type.
var consumerGroupDescribeVersions = versions{0, 1}

func (b *Broker) handleConsumerGroupDescribe(rc *reqCtx, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	resp, err := b.coord.groups.ConsumerGroupDescribe(rc.ctx, req)
	if err != nil {
		code, err := coordinatorFailed(rc, err)
		if err != nil {
			return nil, err
		}
		resp = req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
		for _, id := range req.Groups {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
	}
	return resp, nil
}
