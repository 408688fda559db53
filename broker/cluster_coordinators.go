package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/metadata"
)

// Coordinators on a cluster: a group's (transactional id's) coordinator is
// the broker leading its partition of __consumer_offsets
// (__transaction_state), as in Kafka. Each broker's coordinators serve the
// keys FindCoordinator sends to it and keep their state in the partitions
// it leads; the group coordinator answers NOT_COORDINATOR for groups of
// partitions it does not lead. What is NOT done yet: the same for the
// transaction coordinator, and loading/unloading a partition's state when
// its leadership moves (with issue 12's replication there is state to
// load; without it, a moved coordinator starts empty, and one that leads
// a partition again finds the state it had).

// findCoordinator points a FindCoordinator answer at the leader of key's
// partition of the coordinator's topic, creating the topic on first use.
func (c *cluster) findCoordinator(rc *reqCtx, keyType int8, key string, fc *kmsg.FindCoordinatorResponseCoordinator) error {
	b := c.b
	topic, partitions := offsetsTopic, b.coord.offsetsPartitions
	if keyType == 1 {
		topic, partitions = txnStateTopic, b.coord.txnPartitions
		if _, err := b.txnStateTopicGet(); err != nil {
			b.log.Warn("creating "+txnStateTopic, "err", err)
			return kerr.CoordinatorNotAvailable
		}
	}
	partition := coordinator.PartitionFor(key, partitions)
	err := error(kerr.CoordinatorNotAvailable)
	c.q.View(func(img *metadata.Image) {
		t := img.Topics[topic]
		if t == nil || int(partition) >= len(t.Partitions) {
			return
		}
		leader := t.Partitions[partition].Leader
		for _, br := range liveBrokers(img, rc.listener) {
			if br.id == leader {
				fc.NodeID, fc.Host, fc.Port = br.id, br.host, br.port
				err = nil
			}
		}
	})
	return err
}

// liveBrokerCount is the number of brokers that can hold replicas: the
// cap of the internal topics' replication factors.
func (b *Broker) liveBrokerCount() int64 {
	if b.cluster == nil {
		return 1
	}
	n := 0
	b.cluster.q.View(func(img *metadata.Image) { n = len(liveBrokers(img, plaintextListener)) })
	return int64(max(n, 1))
}

// ownsOffsetsPartition is the group coordinator's Owns: on a cluster, the
// partitions of __consumer_offsets this broker leads.
func (b *Broker) ownsOffsetsPartition(partition int32) bool {
	c := b.cluster
	if c == nil {
		return !b.cfg.clusterMode()
	}
	leads := false
	c.q.View(func(img *metadata.Image) {
		if t := img.Topics[offsetsTopic]; t != nil && int(partition) < len(t.Partitions) {
			leads = t.Partitions[partition].Leader == b.nodeID
		}
	})
	return leads
}
