package integration

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"

	"github.com/kafkit/kafkit/broker"
)

// TestSaramaAdminAPIsOfASingleNode drives the admin APIs whose answers on a
// single node without an authorizer are fixed by Kafka through sarama's
// ClusterAdmin: ACLs are disabled, elections are never needed, and the only
// reassignment possible (onto the node itself, broker.id 3 here) completes
// at once.
func TestSaramaAdminAPIsOfASingleNode(t *testing.T) {
	b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.BrokerID = 3 }))
	createTopic(t, b.Addr(), "single", 2)
	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	t.Run("acls", func(t *testing.T) {
		filter := sarama.AclFilter{
			ResourceType: sarama.AclResourceAny, ResourcePatternTypeFilter: sarama.AclPatternAny,
			Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny,
		}
		_, err := admin.ListAcls(filter)
		if !errors.Is(err, sarama.ErrSecurityDisabled) || err.Error() != sarama.ErrSecurityDisabled.Error()+": No Authorizer is configured on the broker" {
			t.Errorf("ListAcls: %v", err)
		}
		_, err = admin.DeleteACL(filter, false)
		if !errors.Is(err, sarama.ErrSecurityDisabled) || err.Error() != sarama.ErrSecurityDisabled.Error()+": No Authorizer is configured." {
			t.Errorf("DeleteACL: %v", err)
		}
		resource := sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: "single", ResourcePatternType: sarama.AclPatternLiteral}
		acl := sarama.Acl{Principal: "User:alice", Host: "*", Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAllow}
		if err := admin.CreateACL(resource, acl); !errors.Is(err, sarama.ErrCreateACLs) || !errors.Is(err, sarama.ErrSecurityDisabled) {
			t.Errorf("CreateACL: %v", err)
		}
		// The admin's error leaves out the message; the response has it.
		controller, err := admin.Controller()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := controller.CreateAcls(&sarama.CreateAclsRequest{Version: 2, AclCreations: []*sarama.AclCreation{{Resource: resource, Acl: acl}}})
		if !errors.Is(err, sarama.ErrSecurityDisabled) || resp == nil || len(resp.AclCreationResponses) != 1 || resp.AclCreationResponses[0].ErrMsg == nil || *resp.AclCreationResponses[0].ErrMsg != "No Authorizer is configured." {
			t.Errorf("CreateAcls: %v, %+v", err, resp)
		}
	})

	t.Run("elect leaders", func(t *testing.T) {
		for _, typ := range []sarama.ElectionType{sarama.PreferredElection, sarama.UncleanElection} {
			res, err := admin.ElectLeaders(typ, map[string][]int32{"single": {0, 1, 2}, "none": {0}})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				topic     string
				partition int32
				want      sarama.KError
			}{
				{"single", 0, sarama.ErrElectionNotNeeded},
				{"single", 1, sarama.ErrElectionNotNeeded},
				{"single", 2, sarama.ErrUnknownTopicOrPartition},
				{"none", 0, sarama.ErrUnknownTopicOrPartition},
			} {
				if r := res[c.topic][c.partition]; r == nil || r.ErrorCode != c.want {
					t.Errorf("election type %d, %s-%d: %+v, want %v", typ, c.topic, c.partition, r, c.want)
				}
			}
		}
	})

	t.Run("reassignments", func(t *testing.T) {
		if err := admin.AlterPartitionReassignments("single", [][]int32{{3}, {3}}); err != nil {
			t.Fatalf("reassigning onto the current replica: %v", err)
		}
		err := admin.AlterPartitionReassignments("single", [][]int32{{3}, {1}})
		if !errors.Is(err, sarama.ErrReassignPartitions) || !errors.Is(err, sarama.ErrInvalidReplicaAssignment) {
			t.Errorf("reassigning onto broker 1: %v", err)
		}
		if err := admin.AlterPartitionReassignments("single", [][]int32{nil}); !errors.Is(err, sarama.ErrNoReassignmentInProgress) {
			t.Errorf("cancelling: %v", err)
		}
		if err := admin.AlterPartitionReassignments("none", [][]int32{{3}}); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Errorf("unknown topic: %v", err)
		}
		for _, topic := range []string{"single", "none"} {
			status, err := admin.ListPartitionReassignments(topic, []int32{0, 1})
			if err != nil || len(status) != 0 {
				t.Errorf("ListPartitionReassignments(%s): %v %v", topic, status, err)
			}
		}
	})
}
