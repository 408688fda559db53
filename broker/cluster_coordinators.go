package broker

import (
	"cmp"
	"errors"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/metadata"
)

// Coordinators on a cluster: a group's (transactional id's) coordinator is
// the broker leading its partition of __consumer_offsets
// (__transaction_state), as in Kafka. The coordinators serve only the
// partitions this broker leads (Owns: leadsInternal): when an applied
// metadata batch makes this broker a partition's leader, the partition's
// state is loaded from the local log, its keys answering
// COORDINATOR_LOAD_IN_PROGRESS meanwhile; when a batch takes the
// leadership away, the partition is unloaded (waiting joins and syncs get
// NOT_COORDINATOR, the state is dropped) and the coordinators' writes to
// it are refused. Loads and unloads run in the order of the metadata log,
// on one goroutine (coordinatorLoop), so a broker that leads a partition
// again reloads it from its log, which replication made the old leader's
// up to the high watermark at least (the controller elects only in-sync
// replicas).

// internalPartition is a partition of a coordinator's topic.
type internalPartition struct {
	topic     string
	partition int32
}

// coordinatorMove is a leadership change of an internal partition for
// this broker: it leads it now (load) or no longer (unload). With
// deleted set it is instead a topic the metadata log deleted, whose
// offsets the group coordinator forgets (forgetOffsets).
type coordinatorMove struct {
	internalPartition
	lead    bool
	epoch   int32 // the partition's leader epoch when it became led here
	deleted string
}

// coordinatorMoves follows, after each applied metadata batch, which
// internal partitions this broker leads, and queues the changes for
// coordinatorLoop, with the deleted topics in between in log order.
type coordinatorMoves struct {
	mu    sync.Mutex // guards led and queue
	led   map[internalPartition]bool
	queue []coordinatorMove
	wake  chan struct{} // buffered 1: coordinatorLoop has work
}

// catchUp latches c.caughtUp once img holds this run's own registration
// and reports whether img is the first such image. Replication and the
// coordinators act on no image before it (see followCoordinators).
func (c *cluster) catchUp(img *metadata.Image) (first bool) {
	if c.caughtUp {
		return false
	}
	br := img.Brokers[c.b.nodeID]
	epoch := c.epoch.Load()
	c.caughtUp = br != nil && epoch > 0 && br.Epoch == epoch
	return c.caughtUp
}

// followCoordinators queues the loads and unloads an applied batch
// implies. It runs on raft's FSM goroutine (onApply) and must not block.
//
// Nothing is loaded until the image holds this run's registration: a
// restarted node applies the metadata log from its start (or its last
// snapshot), and the images on the way name it the leader of partitions
// it led before it went down, at their old leader epochs. Loading those
// would make it a second coordinator of state another node took over:
// a stale log's PrepareCommit would get its markers written again, over
// transactions the new coordinator has completed and the producer has
// moved on from. The registration is applied after everything the
// cluster did while the node was away (as Kafka's broker publishes no
// metadata before it caught up with the log), and the registration's
// unfencing always follows it, so a batch comes after c.epoch is known.
func (c *cluster) followCoordinators(img *metadata.Image) {
	m := &c.moves
	m.mu.Lock()
	defer m.mu.Unlock()
	if !c.caughtUp {
		return
	}
	led := map[internalPartition]bool{}
	epochs := map[internalPartition]int32{}
	for _, name := range []string{offsetsTopic, txnStateTopic} {
		if t := img.Topics[name]; t != nil {
			for i, p := range t.Partitions {
				if p.Leader == c.b.nodeID {
					ip := internalPartition{name, int32(i)}
					led[ip], epochs[ip] = true, p.LeaderEpoch
				}
			}
		}
	}
	var moves []coordinatorMove
	for ip := range m.led {
		if !led[ip] {
			moves = append(moves, coordinatorMove{internalPartition: ip})
		}
	}
	for ip := range led {
		if !m.led[ip] {
			moves = append(moves, coordinatorMove{internalPartition: ip, lead: true, epoch: epochs[ip]})
		}
	}
	if len(moves) == 0 {
		return
	}
	slices.SortFunc(moves, func(a, b coordinatorMove) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	m.led = led
	m.queue = append(m.queue, moves...)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// forgetOffsets queues the forgetting of a deleted topic's committed
// offsets, as every Kafka broker does when it applies a deletion
// (BrokerMetadataPublisher → onPartitionsDeleted). It runs on raft's FSM
// goroutine (onApply): the tombstones wait for replication, which may
// need this goroutine to apply an ISR change. Only the groups this node
// coordinates are touched (its coordinator holds no others). Queued
// between the loads and unloads in log order, a partition loaded before
// the deletion has its tombstones written here; one loaded after it has
// the old leader's, as far as they were replicated before the move (as
// in Kafka). Before this run's registration nothing is loaded (see
// followCoordinators), so there is nothing to forget.
func (c *cluster) forgetOffsets(topic string) {
	if !c.caughtUp {
		return
	}
	m := &c.moves
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queue = append(m.queue, coordinatorMove{deleted: topic})
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// coordinatorLoop loads and unloads internal partitions, and forgets the
// offsets of deleted topics, in the order they were queued.
func (c *cluster) coordinatorLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.moves.wake:
		}
		for {
			c.moves.mu.Lock()
			if len(c.moves.queue) == 0 {
				c.moves.mu.Unlock()
				break
			}
			mv := c.moves.queue[0]
			c.moves.queue = c.moves.queue[1:]
			c.moves.mu.Unlock()
			if err := c.moveCoordinator(mv); err != nil && c.b.ctx.Err() == nil {
				c.b.log.Error("coordinator partition load or unload failed; its keys will keep failing", "topic", mv.topic, "partition", mv.partition, "lead", mv.lead, "err", err)
			}
		}
	}
}

func (c *cluster) moveCoordinator(mv coordinatorMove) error {
	b, ctx := c.b, c.b.ctx
	switch {
	case mv.deleted != "":
		b.forgetTopicOffsets(mv.deleted)
		return nil
	case mv.topic == offsetsTopic && mv.lead:
		return errors.Join(b.loadShareCoordinator(mv.partition), b.coord.groups.LoadPartition(ctx, mv.partition, b.replayOffsets(mv.partition)))
	case mv.topic == offsetsTopic:
		b.unloadShareCoordinator(mv.partition)
		return b.coord.groups.UnloadPartition(ctx, mv.partition)
	case mv.lead:
		return b.coord.txns.LoadPartition(ctx, mv.partition, mv.epoch, b.replayTxnState(mv.partition))
	}
	b.coord.txns.UnloadPartition(mv.partition)
	return nil
}

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

// leadsInternal is a coordinator's Owns for its topic: on a cluster, the
// partitions this broker leads; on a single node, all.
func (b *Broker) leadsInternal(topic string) func(partition int32) bool {
	return func(partition int32) bool {
		c := b.cluster
		if c == nil {
			return !b.cfg.clusterMode() // a cluster node leads nothing before it joined
		}
		return c.partitionLeader(topic, partition) == b.nodeID
	}
}
