package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateAcls: v0-3 (v1 adds pattern types, v2 is flexible; Kafka 4.0 dropped
// v0). Without an authorizer Kafka fails every creation with
// SECURITY_DISABLED and this message, one result per creation in request
// order; so does the broker. With one, creating needs ALTER on the cluster
// and the ACLs are stored before the answer.
var createACLsVersions = versions{0, 3}

// noAuthorizer is the SecurityDisabledException message Kafka's CreateAcls
// and DeleteAcls send when no authorizer is configured.
const noAuthorizer = "No Authorizer is configured."

func (b *Broker) handleCreateACLs(rc *reqCtx, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	fail := func(e *kerr.Error, msg string) kmsg.Response {
		for range req.Creations {
			r := kmsg.NewCreateACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(msg)
			resp.Results = append(resp.Results, r)
		}
		return resp
	}
	return b.alterACLs(rc, req, fail, func() kmsg.Response { return b.acls.authz.CreateACLs(req) }), nil
}

// alterACLs makes an ACL change (CreateAcls, DeleteAcls) as Kafka's
// AclApis do: SECURITY_DISABLED without an authorizer, ALTER on the cluster
// first, and fail's answer for every entry when the change cannot be
// stored.
func (b *Broker) alterACLs(rc *reqCtx, req kmsg.Request, fail func(*kerr.Error, string) kmsg.Response, change func() kmsg.Response) kmsg.Response {
	switch {
	case b.acls.authz == nil:
		return fail(kerr.SecurityDisabled, noAuthorizer)
	case !b.allowedCluster(rc, kmsg.ACLOperationAlter):
		return fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
	case b.cluster != nil:
		out, err := b.cluster.alterACLs(req)
		if err != nil {
			return fail(kafkaErr(err), err.Error())
		}
		return out
	}
	var out kmsg.Response
	if err := b.changeACLs(func() { out = change() }); err != nil {
		return fail(kerr.UnknownServerError, err.Error())
	}
	return out
}
