package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreateACLsSecurityDisabled(t *testing.T) {
	b := NewTest(t)
	for v := createACLsVersions.min; v <= createACLsVersions.max; v++ {
		req := kmsg.NewPtrCreateACLsRequest()
		req.SetVersion(v)
		for _, topic := range []string{"a", "b", "c"} {
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, topic, kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host = "User:alice", "*"
			c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
		}
		resp := sendVersioned(t, b, req).(*kmsg.CreateACLsResponse)
		if len(resp.Results) != 3 {
			t.Fatalf("v%d: %d results for 3 creations", v, len(resp.Results))
		}
		for i, r := range resp.Results {
			if r.ErrorCode != kerr.SecurityDisabled.Code || r.ErrorMessage == nil || *r.ErrorMessage != noAuthorizer {
				t.Errorf("v%d result %d: %v %v", v, i, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
			}
		}
	}
}
