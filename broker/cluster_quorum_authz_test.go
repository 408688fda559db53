package broker

import (
	"context"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// An operator's tool on the CONTROLLER listener (--bootstrap-controller)
// is not a node: it needs no CLUSTER_ACTION, only what ControllerApis asks
// of each request (nothing for ApiVersions, DESCRIBE on the cluster for
// DescribeQuorum, ALTER for DescribeCluster and UnregisterBroker); the
// nodes' own forwarded requests pass on their CLUSTER_ACTION.
func TestControllerListenerToolAuthorization(t *testing.T) {
	ca := NewTestCA(t)
	c := NewTestCluster(t, 3, controllerSASLSSL(ca, "broker", "broker-pw"), WithAuthorizer("User:broker"),
		WithConfig(func(c *Config) {
			if err := c.Set(map[string]string{"listener.name.controller.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-pw" user_broker="broker-pw" user_tool="tool-pw";`}); err != nil {
				panic(err) // the test's own keys
			}
		}),
		WithTestPrincipal(func(id string) string {
			if id == "admin" {
				return "User:broker"
			}
			return anonymousPrincipal
		}))
	ctl := c.Controller()
	tool, err := kgo.NewClient(kgo.SeedBrokers(c.Broker(ctl).cluster.voters[ctl]), kgo.DialTLSConfig(ca.ClientTLS(t, pkix.Name{})),
		kgo.SASL(plain.Auth{User: "tool", Pass: "tool-pw"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	if v := ask[*kmsg.ApiVersionsResponse](t, tool, kmsg.NewPtrApiVersionsRequest()); v.ErrorCode != 0 || len(v.ApiKeys) == 0 {
		t.Fatalf("ApiVersions: %+v", v)
	}
	if r := ask[*kmsg.DescribeQuorumResponse](t, tool, describeQuorumReq()); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("DescribeQuorum without DESCRIBE: %+v", r)
	}
	acl := kmsg.NewPtrCreateACLsRequest()
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:tool", "*", kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow
	acl.Creations = append(acl.Creations, cr)
	if r := ask[*kmsg.CreateACLsResponse](t, principalClient(t, c.Broker(ctl), "admin"), acl); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 {
		t.Fatalf("granting DESCRIBE on the cluster: %+v", r)
	}
	c.await("User:tool's DESCRIBE on the active controller", func(*Broker) bool {
		r := ask[*kmsg.DescribeQuorumResponse](t, tool, describeQuorumReq())
		return r.ErrorCode == 0 && len(r.Topics) == 1 && r.Topics[0].Partitions[0].LeaderID == ctl
	})
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = endpointControllers
	for _, req := range []kmsg.Request{dc, unregisterReq(ctl%3 + 1)} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := tool.SeedBrokers()[0].Request(ctx, req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if errorCodeOf(r) != kerr.ClusterAuthorizationFailed.Code {
			t.Errorf("%s with DESCRIBE only: %+v", kmsg.NameForKey(req.Key()), r)
		}
	}
	// A broker forwards the client's DescribeQuorum on its own CLUSTER_ACTION.
	other := ctl%3 + 1
	if r := ask[*kmsg.DescribeQuorumResponse](t, principalClient(t, c.Broker(other), "admin"), describeQuorumReq()); quorumPartition(t, r).LeaderID != ctl {
		t.Errorf("DescribeQuorum forwarded by broker %d: %+v", other, r)
	}
}

func errorCodeOf(r kmsg.Response) int16 {
	switch r := r.(type) {
	case *kmsg.DescribeClusterResponse:
		return r.ErrorCode
	case *kmsg.UnregisterBrokerResponse:
		return r.ErrorCode
	}
	return -1
}
