package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateAcls: v0-3 (v1 adds pattern types, v2 is flexible; Kafka 4.0 dropped
// v0). Without an authorizer Kafka fails every creation with
// SECURITY_DISABLED and this message, one result per creation in request
// order; so does the broker.
var createACLsVersions = versions{0, 3}

// noAuthorizer is the SecurityDisabledException message Kafka's CreateAcls
// and DeleteAcls send when no authorizer is configured.
const noAuthorizer = "No Authorizer is configured."

func (b *Broker) handleCreateACLs(rc *reqCtx, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		r.ErrorCode = kerr.SecurityDisabled.Code
		msg := noAuthorizer
		r.ErrorMessage = &msg
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
