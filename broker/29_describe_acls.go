package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeAcls: v0-3 (v1 adds pattern types, v2 is flexible; Kafka 4.0
// dropped v0, 3.x serves it). Without authorizer.class.name it answers, like
// Kafka, SECURITY_DISABLED with the message Kafka's AclApis uses for this
// API (it differs from CreateAcls' and DeleteAcls'); with one it needs
// DESCRIBE on the cluster.
var describeACLsVersions = versions{0, 3}

func (b *Broker) handleDescribeACLs(rc *reqCtx, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if b.acls.authz != nil {
		if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
			resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
			return resp, nil
		}
		return b.acls.authz.DescribeACLs(req), nil
	}
	resp.ErrorCode = kerr.SecurityDisabled.Code
	msg := "No Authorizer is configured on the broker"
	resp.ErrorMessage = &msg
	return resp, nil
}
