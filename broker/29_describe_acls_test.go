package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeACLsSecurityDisabled(t *testing.T) {
	b := NewTest(t)
	for v := describeACLsVersions.min; v <= describeACLsVersions.max; v++ {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.SetVersion(v)
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeLiteral
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp := sendVersioned(t, b, req).(*kmsg.DescribeACLsResponse)
		if resp.ErrorCode != kerr.SecurityDisabled.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != "No Authorizer is configured on the broker" || len(resp.Resources) != 0 {
			t.Errorf("v%d: %v %v %d resources", v, kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage, len(resp.Resources))
		}
	}
}
