package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteAcls: v0-3 (v1 adds pattern types, v2 is flexible; Kafka 4.0 dropped
// v0). Without an authorizer Kafka answers each filter with SECURITY_DISABLED,
// noAuthorizer's message and no matching ACLs; so does the broker. With an
// authorizer, deleting needs ALTER on the cluster and the change is stored
// before the answer.
var deleteACLsVersions = versions{0, 3}

func (b *Broker) handleDeleteACLs(rc *reqCtx, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	fail := func(e *kerr.Error, msg string) kmsg.Response {
		for range req.Filters {
			r := kmsg.NewDeleteACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(msg)
			resp.Results = append(resp.Results, r)
		}
		return resp
	}
	return b.alterACLs(rc, req, fail, func() kmsg.Response { return b.acls.authz.DeleteACLs(req) }), nil
}
