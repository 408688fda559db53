package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestACLsDurable: ACLs created over the wire survive a restart on the same
// data directory, deletions too, and a principal without ALTER on the
// cluster may not change them.
func TestACLsDurable(t *testing.T) {
	dir := t.TempDir()
	start := func() *Broker {
		return NewTest(t, OnDisk(), WithConfig(func(c *Config) { c.DataDir = dir }), WithAuthorizer("User:admin"),
			WithTestPrincipal(func(id string) string { return "User:" + id }))
	}
	b := start()
	create := kmsg.NewPtrCreateACLsRequest()
	for _, name := range []string{"t1", "t2"} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, name, kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		create.Creations = append(create.Creations, c)
	}
	create.SetVersion(3)
	bad := create.Creations[0]
	bad.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch
	create.Creations = append(create.Creations, bad)
	resp := sendAs(t, b, "admin", create).(*kmsg.CreateACLsResponse)
	if len(resp.Results) != 3 || resp.Results[0].ErrorCode != 0 || resp.Results[1].ErrorCode != 0 || resp.Results[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("create: %+v", resp.Results)
	}
	if r := sendAs(t, b, "alice", create).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice creating ACLs: %v", kerr.ErrorForCode(r.Results[0].ErrorCode))
	}
	describeAll := kmsg.NewPtrDescribeACLsRequest()
	describeAll.SetVersion(3)
	describeAll.ResourceType, describeAll.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	describeAll.Operation, describeAll.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if r := sendAs(t, b, "alice", describeAll).(*kmsg.DescribeACLsResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice describing ACLs: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	restart := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		b = start()
	}
	restart()
	if r := sendAs(t, b, "admin", describeAll).(*kmsg.DescribeACLsResponse); r.ErrorCode != 0 || len(r.Resources) != 2 {
		t.Fatalf("after a restart: %v, %d resources", kerr.ErrorForCode(r.ErrorCode), len(r.Resources))
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	del.SetVersion(3)
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("t1"), kmsg.ACLResourcePatternTypeMatch
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	if r := sendAs(t, b, "admin", del).(*kmsg.DeleteACLsResponse); len(r.Results) != 1 || len(r.Results[0].MatchingACLs) != 1 {
		t.Fatalf("delete: %+v", r.Results)
	}
	restart()
	if r := sendAs(t, b, "admin", describeAll).(*kmsg.DescribeACLsResponse); len(r.Resources) != 1 || r.Resources[0].ResourceName != "t2" {
		t.Fatalf("after deleting and a restart: %+v", r.Resources)
	}
}

func TestAuthorizerClassName(t *testing.T) {
	for _, v := range []string{"", standardAuthorizerClass, aclAuthorizerClass} {
		if _, _, err := ConfigFromProperties(map[string]string{"authorizer.class.name": v}); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	if _, _, err := ConfigFromProperties(map[string]string{"authorizer.class.name": "com.example.Custom"}); err == nil {
		t.Error("an unknown authorizer class was accepted")
	}
}

// TestAuthorizationErrors checks, per API, the error Kafka's KafkaApis
// gives a principal without the ACL, and that authorization comes before
// existence.
func TestAuthorizationErrors(t *testing.T) {
	b := NewTest(t, WithAuthorizer("User:admin"), WithTestPrincipal(func(id string) string { return "User:" + id }))
	create := kmsg.NewPtrCreateTopicsRequest()
	create.SetVersion(5)
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "b", 1, 1
	create.Topics = append(create.Topics, ct)
	if r := sendAs(t, b, "admin", create).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	// bob may describe topic b, and nothing else.
	acls := kmsg.NewPtrCreateACLsRequest()
	acls.SetVersion(3)
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "b", kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host, c.Operation, c.PermissionType = "User:bob", "*", kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow
	acls.Creations = append(acls.Creations, c)
	if r := sendAs(t, b, "admin", acls).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Results[0].ErrorCode))
	}
	check := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if got != want.Code {
			t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
		}
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.SetVersion(3)
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "b", Count: 2}}
	check("CreatePartitions", sendAs(t, b, "bob", cp).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)

	ac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ac.SetVersion(1)
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	ac.Resources = append(ac.Resources, res)
	check("IncrementalAlterConfigs broker", sendAs(t, b, "bob", ac).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode, kerr.ClusterAuthorizationFailed)

	// DeleteTopics: DELETE is missing on b; on a missing topic that bob may
	// not describe the answer is the same, so existence is not disclosed.
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.SetVersion(5)
	dt.TopicNames = []string{"b", "absent"}
	for _, r := range sendAs(t, b, "bob", dt).(*kmsg.DeleteTopicsResponse).Topics {
		check("DeleteTopics "+*r.Topic, r.ErrorCode, kerr.TopicAuthorizationFailed)
	}

	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.SetVersion(2)
	dg.Groups = []string{"g"}
	check("DeleteGroups", sendAs(t, b, "bob", dg).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)

	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(7)
	of.Group = "g"
	check("OffsetFetch", sendAs(t, b, "bob", of).(*kmsg.OffsetFetchResponse).ErrorCode, kerr.GroupAuthorizationFailed)

	dgr := kmsg.NewPtrDescribeGroupsRequest()
	dgr.SetVersion(5)
	dgr.Groups = []string{"g"}
	check("DescribeGroups", sendAs(t, b, "bob", dgr).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)

	// Idempotence needs IDEMPOTENT_WRITE on the cluster or WRITE on a topic.
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.SetVersion(4)
	check("InitProducerId", sendAs(t, b, "bob", ip).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	if r := sendAs(t, b, "admin", ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != 0 {
		t.Errorf("InitProducerId as a super user: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	lr := kmsg.NewPtrListPartitionReassignmentsRequest()
	check("ListPartitionReassignments", sendAs(t, b, "bob", lr).(*kmsg.ListPartitionReassignmentsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)

	// Auto-creation needs CREATE: bob may describe the missing topic
	// "newt" but not create it, so Metadata refuses and creates nothing.
	c.ResourceName = "newt"
	acls.Creations = []kmsg.CreateACLsRequestCreation{c}
	if r := sendAs(t, b, "admin", acls).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Results[0].ErrorCode))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	md.AllowAutoTopicCreation = true
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("newt")}}
	check("Metadata auto-create without CREATE", sendAs(t, b, "bob", md).(*kmsg.MetadataResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	if b.topics.get("newt") != nil {
		t.Error("Metadata created newt for a principal without CREATE")
	}
	c.Operation = kmsg.ACLOperationCreate
	acls.Creations = []kmsg.CreateACLsRequestCreation{c}
	if r := sendAs(t, b, "admin", acls).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.Results[0].ErrorCode))
	}
	sendAs(t, b, "bob", md)
	if b.topics.get("newt") == nil {
		t.Error("Metadata did not create newt with CREATE on it")
	}

	dq := kmsg.NewPtrDescribeClientQuotasRequest()
	check("DescribeClientQuotas", sendAs(t, b, "bob", dq).(*kmsg.DescribeClientQuotasResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
}
