package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteAcls: v0-3 (v1 adds pattern types, v2 is flexible; Kafka 4.0 dropped
// v0). Without an authorizer Kafka answers each filter with SECURITY_DISABLED,
// noAuthorizer's message and no matching ACLs; so does the broker.
var deleteACLsVersions = versions{0, 3}

func (b *Broker) handleDeleteACLs(rc *reqCtx, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		r.ErrorCode = kerr.SecurityDisabled.Code
		msg := noAuthorizer
		r.ErrorMessage = &msg
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
