package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAuthorizationKIP848AndShareGroups: the consumer-group (KIP-848) and
// share-group (KIP-932) APIs check KafkaApis' ACLs: a principal without
// any is refused with Kafka's error on each, one with the group ACLs but
// none on the topic gets the topic errors, and with both they work.
func TestAuthorizationKIP848AndShareGroups(t *testing.T) {
	b := NewTest(t, WithAuthorizer("User:admin"), WithTestPrincipal(func(id string) string { return "User:" + id }))
	createTestTopic(t, b, "t", 1)
	tid := b.topics.get("t").id
	allow := func(principal string, rt kmsg.ACLResourceType, name string, ops ...kmsg.ACLOperation) {
		t.Helper()
		req := kmsg.NewPtrCreateACLsRequest()
		req.SetVersion(3)
		for _, op := range ops {
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, name, kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = principal, "*", op, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
		}
		for _, r := range sendAs(t, b, "admin", req).(*kmsg.CreateACLsResponse).Results {
			if r.ErrorCode != 0 {
				t.Fatal(kerr.ErrorForCode(r.ErrorCode))
			}
		}
	}
	check := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if want == nil && got != 0 || want != nil && got != want.Code {
			t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
		}
	}

	cgh := func(as string, names []string, regex *string) *kmsg.ConsumerGroupHeartbeatResponse {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.SetVersion(1)
		req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "g", as+"-member", 0, 30000
		req.SubscribedTopicNames, req.SubscribedTopicRegex, req.Topics = names, regex, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return sendAs(t, b, as, req).(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	cgd := func(as string) kmsg.ConsumerGroupDescribeResponseGroup {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.SetVersion(1)
		req.Groups, req.IncludeAuthorizedOperations = []string{"g"}, true
		return sendAs(t, b, as, req).(*kmsg.ConsumerGroupDescribeResponse).Groups[0]
	}
	sgh := func(as string, names []string) *kmsg.ShareGroupHeartbeatResponse {
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.SetVersion(1)
		req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = "sg", as+"-member", 0, names
		return sendAs(t, b, as, req).(*kmsg.ShareGroupHeartbeatResponse)
	}
	sgd := func(as string) kmsg.ShareGroupDescribeResponseGroup {
		req := kmsg.NewPtrShareGroupDescribeRequest()
		req.SetVersion(1)
		req.GroupIDs = []string{"sg"}
		return sendAs(t, b, as, req).(*kmsg.ShareGroupDescribeResponse).Groups[0]
	}
	shareFetch := func(as string, maxWait int32) *kmsg.ShareFetchResponse {
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(1)
		req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("sg"), kmsg.StringPtr(as+"-member"), 0
		req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = maxWait, 1, 100, 100
		req.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: tid, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}}}
		return sendAs(t, b, as, req).(*kmsg.ShareFetchResponse)
	}
	shareAck := func(as string) *kmsg.ShareAcknowledgeResponse {
		req := kmsg.NewPtrShareAcknowledgeRequest()
		req.SetVersion(1)
		req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("sg"), kmsg.StringPtr(as+"-member"), 1
		batch := kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}}
		req.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: tid, Partitions: []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: 0, AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{batch}}}}}
		return sendAs(t, b, as, req).(*kmsg.ShareAcknowledgeResponse)
	}
	describeOffsets := func(as string) kmsg.DescribeShareGroupOffsetsResponseGroup {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.SetVersion(0)
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "sg", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
		return sendAs(t, b, as, req).(*kmsg.DescribeShareGroupOffsetsResponse).Groups[0]
	}
	alterOffsets := func(as string) *kmsg.AlterShareGroupOffsetsResponse {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.SetVersion(0)
		req.GroupID = "sg"
		req.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 0}}}}
		return sendAs(t, b, as, req).(*kmsg.AlterShareGroupOffsetsResponse)
	}
	deleteOffsets := func(as string) *kmsg.DeleteShareGroupOffsetsResponse {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.SetVersion(0)
		req.GroupID = "sg"
		req.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "t"}}
		return sendAs(t, b, as, req).(*kmsg.DeleteShareGroupOffsetsResponse)
	}

	// bob has no ACLs: every API refuses him on the group first.
	check("ConsumerGroupHeartbeat regex, no ACLs", cgh("bob", nil, kmsg.StringPtr(".*")).ErrorCode, kerr.GroupAuthorizationFailed)
	check("ConsumerGroupDescribe, no ACLs", cgd("bob").ErrorCode, kerr.GroupAuthorizationFailed)
	check("ShareGroupHeartbeat, no ACLs", sgh("bob", []string{"t"}).ErrorCode, kerr.GroupAuthorizationFailed)
	check("ShareGroupDescribe, no ACLs", sgd("bob").ErrorCode, kerr.GroupAuthorizationFailed)
	if r := shareFetch("bob", 10); r.ErrorCode != kerr.GroupAuthorizationFailed.Code || len(r.Topics) != 0 {
		t.Errorf("ShareFetch, no ACLs: %v, %d topics", kerr.ErrorForCode(r.ErrorCode), len(r.Topics))
	}
	check("ShareAcknowledge, no ACLs", shareAck("bob").ErrorCode, kerr.GroupAuthorizationFailed)
	check("DescribeShareGroupOffsets, no ACLs", describeOffsets("bob").ErrorCode, kerr.GroupAuthorizationFailed)
	check("AlterShareGroupOffsets, no ACLs", alterOffsets("bob").ErrorCode, kerr.GroupAuthorizationFailed)
	check("DeleteShareGroupOffsets, no ACLs", deleteOffsets("bob").ErrorCode, kerr.GroupAuthorizationFailed)

	// READ on the share group is not enough to delete its offsets.
	allow("User:bob", kmsg.ACLResourceTypeGroup, "sg", kmsg.ACLOperationRead)
	check("DeleteShareGroupOffsets with READ on the group", deleteOffsets("bob").ErrorCode, kerr.GroupAuthorizationFailed)

	// The groups' ACLs but none on the topic: the topic errors.
	for _, g := range []string{"g", "sg"} {
		allow("User:bob", kmsg.ACLResourceTypeGroup, g, kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete)
	}
	check("ConsumerGroupHeartbeat naming t", cgh("bob", []string{"t"}, nil).ErrorCode, kerr.TopicAuthorizationFailed)
	check("ShareGroupHeartbeat naming t", sgh("bob", []string{"t"}).ErrorCode, kerr.TopicAuthorizationFailed)
	// Nothing left to wait for: answered at once, not after MaxWaitMillis.
	start := time.Now()
	if r := shareFetch("bob", 10000); r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].TopicID != tid || r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("ShareFetch of t: %v, %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ShareFetch of a denied topic only waited %v", d)
	}
	// (the fetch's session ends with its connection: a session error is
	// answered alone, as Kafka's; TestAuthorizationDeniedTopicAnswers
	// acknowledges within a session)
	if r := shareAck("bob"); r.ErrorCode == 0 && (len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code) ||
		r.ErrorCode != 0 && (r.ErrorCode != kerr.ShareSessionNotFound.Code || len(r.Topics) != 0) {
		t.Errorf("ShareAcknowledge of t: %v, %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
	}
	// (the share group does not exist yet: the handler says so, the topic
	// is refused all the same)
	if g := describeOffsets("bob"); len(g.Topics) != 1 || g.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("DescribeShareGroupOffsets of t: %v, %+v", kerr.ErrorForCode(g.ErrorCode), g.Topics)
	}
	if r := alterOffsets("bob"); r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("AlterShareGroupOffsets of t: %v, %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
	}
	if r := deleteOffsets("bob"); r.ErrorCode != kerr.GroupIDNotFound.Code && (len(r.Topics) != 1 || r.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code) {
		t.Errorf("DeleteShareGroupOffsets of t: %v, %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
	}

	// With READ and DESCRIBE on t everything works.
	allow("User:bob", kmsg.ACLResourceTypeTopic, "t", kmsg.ACLOperationRead, kmsg.ACLOperationDescribe)
	if r := cgh("bob", []string{"t"}, nil); r.ErrorCode != 0 || r.MemberEpoch != 1 {
		t.Errorf("ConsumerGroupHeartbeat with the ACLs: %v, epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	g := cgd("bob")
	check("ConsumerGroupDescribe with the ACLs", g.ErrorCode, nil)
	if want := int32(1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDescribe | 1<<kmsg.ACLOperationDelete); g.AuthorizedOperations != want {
		t.Errorf("ConsumerGroupDescribe authorized operations %b, want %b", g.AuthorizedOperations, want)
	}
	if r := sgh("bob", []string{"t"}); r.ErrorCode != 0 || r.MemberEpoch != 1 {
		t.Errorf("ShareGroupHeartbeat with the ACLs: %v, epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	check("ShareGroupDescribe with the ACLs", sgd("bob").ErrorCode, nil)
	if r := shareFetch("bob", 10); r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("ShareFetch with the ACLs: %v, %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
	}
	if g := describeOffsets("bob"); g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("DescribeShareGroupOffsets with the ACLs: %v, %+v", kerr.ErrorForCode(g.ErrorCode), g.Topics)
	}
	// The share group has bob as a member now: the handler's own answer.
	check("AlterShareGroupOffsets with the ACLs", alterOffsets("bob").ErrorCode, kerr.NonEmptyGroup)
	check("DeleteShareGroupOffsets with the ACLs", deleteOffsets("bob").ErrorCode, kerr.NonEmptyGroup)

	// carol may describe the groups but not the topic their members use.
	allow("User:carol", kmsg.ACLResourceTypeGroup, "g", kmsg.ACLOperationDescribe)
	allow("User:carol", kmsg.ACLResourceTypeGroup, "sg", kmsg.ACLOperationDescribe)
	if g := cgd("carol"); g.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(g.Members) != 0 {
		t.Errorf("ConsumerGroupDescribe of a group using t: %v, %d members", kerr.ErrorForCode(g.ErrorCode), len(g.Members))
	}
	if g := sgd("carol"); g.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(g.Members) != 0 {
		t.Errorf("ShareGroupDescribe of a group using t: %v, %d members", kerr.ErrorForCode(g.ErrorCode), len(g.Members))
	}
}

// TestConsumerGroupRegexOnlyDescribableTopics: a KIP-848 member
// subscribing by regex is assigned only the matching topics its principal
// may describe, and the others once it may.
func TestConsumerGroupRegexOnlyDescribableTopics(t *testing.T) {
	b := NewTest(t, WithAuthorizer("User:admin"), WithTestPrincipal(func(id string) string { return "User:" + id }))
	createTestTopic(t, b, "seen", 1)
	createTestTopic(t, b, "hidden", 1)
	allow := func(rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) {
		t.Helper()
		req := kmsg.NewPtrCreateACLsRequest()
		req.SetVersion(3)
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, name, kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", op, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
		if r := sendAs(t, b, "admin", req).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.Results[0].ErrorCode))
		}
	}
	allow(kmsg.ACLResourceTypeGroup, "rg", kmsg.ACLOperationRead)
	allow(kmsg.ACLResourceTypeTopic, "seen", kmsg.ACLOperationDescribe)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "rg", "alice-member", 0, 30000
	req.SubscribedTopicRegex, req.Topics = kmsg.StringPtr(".*"), []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	assigned := func(r *kmsg.ConsumerGroupHeartbeatResponse) map[string]bool {
		out := map[string]bool{}
		if r.Assignment != nil {
			for _, at := range r.Assignment.Topics {
				out[b.topicNameOr("?", at.TopicID)] = true
			}
		}
		return out
	}
	r := sendAs(t, b, "alice", req).(*kmsg.ConsumerGroupHeartbeatResponse)
	if got := assigned(r); r.ErrorCode != 0 || len(got) != 1 || !got["seen"] {
		t.Fatalf("joined with .*: %v, assigned %v", kerr.ErrorForCode(r.ErrorCode), got)
	}
	// Once alice may describe hidden, her next heartbeat brings it.
	allow(kmsg.ACLResourceTypeTopic, "hidden", kmsg.ACLOperationDescribe)
	req.MemberEpoch, req.RebalanceTimeoutMillis, req.SubscribedTopicRegex = r.MemberEpoch, -1, nil
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: b.topics.get("seen").id, Partitions: []int32{0}}}
	r = sendAs(t, b, "alice", req).(*kmsg.ConsumerGroupHeartbeatResponse)
	if got := assigned(r); r.ErrorCode != 0 || !got["seen"] || !got["hidden"] {
		t.Fatalf("after the ACL on hidden: %v, assigned %v", kerr.ErrorForCode(r.ErrorCode), got)
	}
}
