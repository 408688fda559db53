package broker

import (
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// controllerAPIs are what a controller-only node serves: the APIs of
// Kafka's ControllerApis that kafkit has. The brokers' lifecycle
// (registration, heartbeats), their ISR changes and producer id blocks,
// and the admin requests they carry to the active controller; the Raft
// traffic itself is split off the same port before any of these.
var controllerAPIs = []kmsg.Key{
	kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate,
	kmsg.BrokerRegistration, kmsg.BrokerHeartbeat, kmsg.AlterPartition, kmsg.AllocateProducerIDs,
	kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions,
	kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs,
	kmsg.ElectLeaders, kmsg.AlterPartitionAssignments, kmsg.ListPartitionReassignments,
	kmsg.CreateACLs, kmsg.DeleteACLs, kmsg.DescribeACLs,
	kmsg.AlterUserSCRAMCredentials, kmsg.AlterClientQuotas,
	kmsg.DescribeQuorum, kmsg.DescribeCluster, kmsg.UnregisterBroker,
	kmsg.AddRaftVoter, kmsg.RemoveRaftVoter, kmsg.UpdateFeatures,
}

// keepControllerAPIs drops every other API from a controller-only node's
// table: a client's Produce, Fetch or Metadata there is closed as an
// unknown key, and ApiVersions advertises only these, as Kafka's
// controller listener does.
func keepControllerAPIs(t *handlerTable) {
	var kept handlerTable
	for _, k := range controllerAPIs {
		kept[k] = t[k]
	}
	*t = kept
}

// metadataControllerID is the controller id Metadata and DescribeCluster
// give clients: the active controller when it is a live broker (a
// combined node); otherwise, with controller-only nodes that clients
// cannot reach, a random live broker, which forwards what a client sends
// to "the controller", as Kafka's brokers answer (KRaftMetadataCache's
// getRandomAliveBrokerId); -1 with none.
func (c *cluster) metadataControllerID(img *metadata.Image) int32 {
	id := c.controllerID()
	if br := img.Brokers[id]; br != nil && !br.Fenced {
		return id
	}
	var live []int32
	for id, br := range img.Brokers {
		if !br.Fenced && len(br.Listeners) > 0 {
			live = append(live, id)
		}
	}
	if len(live) == 0 {
		return -1
	}
	return live[rand.IntN(len(live))]
}
