package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteACLsSecurityDisabled(t *testing.T) {
	b := NewTest(t)
	for v := deleteACLsVersions.min; v <= deleteACLsVersions.max; v++ {
		req := kmsg.NewPtrDeleteACLsRequest()
		req.SetVersion(v)
		for range 2 {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeLiteral
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
		}
		resp := sendVersioned(t, b, req).(*kmsg.DeleteACLsResponse)
		if len(resp.Results) != 2 {
			t.Fatalf("v%d: %d results for 2 filters", v, len(resp.Results))
		}
		for i, r := range resp.Results {
			if r.ErrorCode != kerr.SecurityDisabled.Code || r.ErrorMessage == nil || *r.ErrorMessage != noAuthorizer || len(r.MatchingACLs) != 0 {
				t.Errorf("v%d result %d: %v %v, %d matching", v, i, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, len(r.MatchingACLs))
			}
		}
	}
}
