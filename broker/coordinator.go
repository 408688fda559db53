package broker

import (
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// offsetsTopic is Kafka's internal topic of committed offsets and group
// metadata.
const offsetsTopic = "__consumer_offsets"

// coordinatorHooks holds the group and transaction coordinators once they
// exist; the broker core only starts, stops and routes to them.
type coordinatorHooks struct {
	groups *coordinator.Coordinator
	txns   *coordinator.TxnCoordinator
	// groupsLoaded is closed when the group coordinator's Load returned:
	// the transaction coordinator completes prepared transactions, whose
	// offsets the group coordinator must hold, only then.
	groupsLoaded chan struct{}
	// txnsLoaded is closed when the transaction coordinator's Load
	// returned (after groupsLoaded): both coordinators serve requests.
	txnsLoaded chan struct{}
	// offsetsPartitions and txnPartitions are the partition counts of
	// __consumer_offsets and __transaction_state: those of the topics that
	// exist, as Kafka takes them, else the configured ones.
	offsetsPartitions, txnPartitions int32
}

func (b *Broker) registerCoordinatorHandlers(t *handlerTable) {
	register(t, kmsg.OffsetCommit, offsetCommitVersions, b.handleOffsetCommit)
	register(t, kmsg.OffsetFetch, offsetFetchVersions, b.handleOffsetFetch)
	register(t, kmsg.FindCoordinator, findCoordinatorVersions, b.handleFindCoordinator)
	register(t, kmsg.JoinGroup, joinGroupVersions, b.handleJoinGroup)
	register(t, kmsg.Heartbeat, heartbeatVersions, b.handleHeartbeat)
	register(t, kmsg.LeaveGroup, leaveGroupVersions, b.handleLeaveGroup)
	register(t, kmsg.SyncGroup, syncGroupVersions, b.handleSyncGroup)
	register(t, kmsg.DescribeGroups, describeGroupsVersions, b.handleDescribeGroups)
	register(t, kmsg.ListGroups, listGroupsVersions, b.handleListGroups)
	register(t, kmsg.DeleteGroups, deleteGroupsVersions, b.handleDeleteGroups)
	register(t, kmsg.OffsetDelete, offsetDeleteVersions, b.handleOffsetDelete)
	register(t, kmsg.ConsumerGroupHeartbeat, consumerGroupHeartbeatVersions, b.handleConsumerGroupHeartbeat)
	register(t, kmsg.ConsumerGroupDescribe, consumerGroupDescribeVersions, b.handleConsumerGroupDescribe)
	b.registerTxnHandlers(t)
}

// startCoordinators starts the group coordinator's loop and replays
// __consumer_offsets into it in the background; group requests get
// COORDINATOR_LOAD_IN_PROGRESS until the replay is done. Both goroutines
// end with the broker's context.
func (b *Broker) startCoordinators() error {
	if b.cfg.controllerOnly() {
		// A controller-only node keeps no topic logs and serves no group
		// or transaction API (keepControllerAPIs): no coordinators, as
		// Kafka's controllers run none.
		loaded := make(chan struct{})
		close(loaded)
		b.coord.groupsLoaded, b.coord.txnsLoaded = loaded, loaded
		return nil
	}
	b.coord.offsetsPartitions = b.internalPartitions(offsetsTopic, b.cfg.OffsetsTopicNumPartitions)
	b.coord.txnPartitions = b.internalPartitions(txnStateTopic, b.cfg.TxnStateNumPartitions)
	groups, err := coordinator.New(b.groupConfig(), offsetsStore{b})
	if err != nil {
		return err
	}
	b.coord.groups = groups
	b.coord.groupsLoaded = make(chan struct{})
	b.goStart(func() { groups.Run(b.ctx) })
	if b.cfg.clusterMode() {
		// Partitions load as this node becomes their leader (see
		// cluster_coordinators.go).
		close(b.coord.groupsLoaded)
		return b.startTxnCoordinator()
	}
	b.goStart(func() {
		defer close(b.coord.groupsLoaded)
		if err := groups.Load(b.ctx, b.replayOffsets(-1)); err != nil && b.ctx.Err() == nil {
			b.log.Error("group coordinator failed to load; group requests will keep failing", "err", err)
		}
	})
	return b.startTxnCoordinator()
}

// internalPartitions is the partition count of a coordinator's internal
// topic: that of the topic if it exists, whatever the configuration says
// now (another count would move groups and transactional ids to other
// partitions, where replay lets older records win), else configured.
func (b *Broker) internalPartitions(name string, configured int64) int32 {
	if t := b.topics.get(name); t != nil {
		return int32(len(t.partitions))
	}
	return int32(configured)
}

// groupConfig is the group coordinator's part of the broker's config.
func (b *Broker) groupConfig() coordinator.Config {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	cfg := coordinator.Config{
		NumPartitions:             b.coord.offsetsPartitions,
		InitialRebalanceDelay:     ms(b.cfg.GroupInitialRebalanceDelayMs),
		MinSessionTimeout:         ms(b.cfg.GroupMinSessionTimeoutMs),
		MaxSessionTimeout:         ms(b.cfg.GroupMaxSessionTimeoutMs),
		MaxGroupSize:              int(b.cfg.GroupMaxSize),
		OffsetsRetention:          time.Duration(b.cfg.OffsetsRetentionMinutes) * time.Minute,
		RetentionCheck:            ms(b.cfg.OffsetsRetentionCheckMs),
		MaxMetadataBytes:          int(b.cfg.OffsetMetadataMaxBytes),
		ConsumerHeartbeatInterval: ms(b.cfg.GroupConsumerHeartbeatIntervalMs),
		ConsumerSessionTimeout:    ms(b.cfg.GroupConsumerSessionTimeoutMs),
		ConsumerMaxSize:           int(b.cfg.GroupConsumerMaxSize),
		ConsumerAssignors:         b.cfg.GroupConsumerAssignors,
		Topics:                    groupTopics{b.topics},
		KnownPartition:            func(topic string, p int32) bool { return b.topics.partition(topic, p) != nil },
		Owns:                      b.leadsInternal(offsetsTopic),
		Logger:                    b.log,
	}
	// The coordinator reads zero as "Kafka's default"; an explicit 0 here
	// means none.
	if cfg.InitialRebalanceDelay == 0 {
		cfg.InitialRebalanceDelay = -1
	}
	if cfg.MinSessionTimeout == 0 {
		cfg.MinSessionTimeout = -1
	}
	if cfg.MaxMetadataBytes == 0 {
		cfg.MaxMetadataBytes = -1
	}
	return cfg
}

// stopCoordinators has nothing left to do: the coordinator loop ends with
// the broker's context, before the logs close.
func (b *Broker) stopCoordinators() {}

// groupTopics is the topic registry as consumer groups see it.
type groupTopics struct{ r *topicRegistry }

func (t groupTopics) Topic(name string) ([16]byte, int32, bool) {
	tp := t.r.get(name)
	if tp == nil {
		return [16]byte{}, 0, false
	}
	return tp.id, int32(len(tp.partitions)), true
}

func (t groupTopics) TopicName(id [16]byte) (string, bool) {
	if tp := t.r.getByID(id); tp != nil {
		return tp.name, true
	}
	return "", false
}

func (t groupTopics) TopicNames() []string {
	var names []string
	for _, tp := range t.r.all() {
		names = append(names, tp.name)
	}
	return names
}

// offsetsStore is the group coordinator's Store: one record batch per call,
// appended to the group's partition of __consumer_offsets.
type offsetsStore struct{ b *Broker }

func (s offsetsStore) Append(partition int32, recs []coordinator.Record) (int64, error) {
	if !s.b.leadsInternal(offsetsTopic)(partition) {
		return -1, kerr.NotCoordinator // the partition's groups are being unloaded
	}
	t, err := s.b.offsetsTopic()
	if err != nil {
		return -1, err
	}
	return s.b.appendBatch(t, partition, recs, recordbatch.NoProducer())
}

// offsetsTopic returns __consumer_offsets (see internalTopic), with the
// group coordinator's partition count.
func (b *Broker) offsetsTopic() (*topic, error) {
	return b.internalTopic(offsetsTopic, int64(b.coord.offsetsPartitions), b.cfg.OffsetsTopicReplicationFactor)
}

// internalRFKey names each internal topic's replication factor key.
var internalRFKey = map[string]string{
	offsetsTopic:    "offsets.topic.replication.factor",
	txnStateTopic:   "transaction.state.log.replication.factor",
	shareStateTopic: "share.coordinator.state.topic.replication.factor",
}

// internalTopic returns a coordinator's internal topic, creating it on first
// use as Kafka does: internal, with its key's replication factor (a
// single node caps it at itself; a cluster with fewer live brokers
// refuses, with Kafka's message), and compacted, so the log cleaner keeps
// the latest record per key (offset commit, group or transaction state)
// and no time or size retention drops live state.

func (b *Broker) internalTopic(name string, partitions, replicationFactor int64) (*topic, error) {
	if t := b.topics.get(name); t != nil {
		return t, nil
	}
	if live := b.liveBrokerCount(); b.cluster != nil && live < replicationFactor {
		// Kafka's answer: the topic waits for enough brokers (a cluster
		// starting up), rather than being created under-replicated for
		// good. A single node caps the factor at itself.
		return nil, newTopicError(kerr.CoordinatorNotAvailable, "Number of alive brokers '%d' does not meet the required replication factor '%d' for the %s topic (configured via '%s'). This error can be ignored if the cluster is starting up and not all brokers are up yet.",
			live, replicationFactor, name, internalRFKey[name])
	}
	configs := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1", "compression.type": "producer", "segment.bytes": "104857600"}
	if name == txnStateTopic && b.cluster != nil {
		configs["min.insync.replicas"] = strconv.FormatInt(b.cfg.TxnStateMinISR, 10) // transaction.state.log.min.isr
	}
	t, err := b.topics.create(createSpec{
		name: name, partitions: int32(partitions),
		replicationFactor: int16(min(replicationFactor, b.liveBrokerCount())),
		configs:           configs,
		internal:          true,
	})
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return b.topics.get(name), nil // lost a creation race
	}
	return t, err
}

// replayOffsets yields every record of a partition of __consumer_offsets
// (every partition, one after the other, for -1) in offset order, for the
// coordinator's Load, with transactional batches and markers marked as
// such.
func (b *Broker) replayOffsets(index int32) iter.Seq2[coordinator.LogRecord, error] {
	return func(yield func(coordinator.LogRecord, error) bool) {
		err := b.replayBatches(offsetsTopic, index, func(p *partition, batch *recordbatch.Batch) bool {
			r := coordinator.LogRecord{Partition: p.index, Offset: batch.BaseOffset, ProducerID: -1}
			if batch.Attributes.Transactional() {
				r.ProducerID = batch.ProducerID
			}
			if batch.Attributes.Control() {
				r.Marker = coordinator.AbortMarker
				if len(batch.Records) == 1 && isCommitMarker(batch.Records[0].Key) {
					r.Marker = coordinator.CommitMarker
				}
				return yield(r, nil)
			}
			for _, rec := range batch.Records {
				r.Key, r.Value = rec.Key, rec.Value
				if !yield(r, nil) {
					return false
				}
			}
			return true
		})
		if err != nil {
			yield(coordinator.LogRecord{}, err)
		}
	}
}

// replayBatches calls fn with every batch of a partition of an internal
// topic (of every partition, one after the other, for -1) in offset order,
// as the coordinators load their state; fn returns false to stop. Record
// bytes are only valid during the call.
func (b *Broker) replayBatches(name string, index int32, fn func(p *partition, batch *recordbatch.Batch) bool) error {
	t := b.topics.get(name)
	if t == nil {
		return nil
	}
	var buf []byte
	var batch recordbatch.Batch
	for _, p := range t.partitions {
		if index >= 0 && p.index != index {
			continue
		}
		for off, end := p.log.StartOffset(), p.log.EndOffset(); off < end; {
			var err error
			// To the log end, not the high watermark, as Kafka's
			// coordinator loader reads: a new leader's high watermark
			// can lag its log (followers take min(leader's, their end),
			// and a leader moves it only when followers fetch).
			if buf, err = p.log.ReadReplica(off, 1<<20, true, buf[:0]); err != nil {
				return fmt.Errorf("reading %s-%d at %d: %w", name, p.index, off, err)
			}
			if len(buf) == 0 {
				break
			}
			r := recordbatch.NewReader(buf, recordbatch.ReadOptions{})
			for r.Next(&batch) {
				off = batch.NextOffset()
				if !fn(p, &batch) {
					return nil
				}
			}
			if r.Err() != nil {
				return fmt.Errorf("reading %s-%d at %d: %w", name, p.index, off, r.Err())
			}
		}
	}
	return nil
}

// forgetTopicOffsets drops the committed offsets of a deleted topic of
// every group this node coordinates, as Kafka's coordinator does when its
// broker applies the deletion (onPartitionsDeleted): once the topic has
// left this node's registry (topicRegistry.delete on a single node; on a
// cluster, the coordinator loop after onApply, as every node applies the
// deletion). A failure leaves stale offsets behind, which only matter if
// the topic is created again, so it is logged, not returned.
func (b *Broker) forgetTopicOffsets(topic string) {
	if b.coord.groups == nil {
		return // a controller-only node
	}
	if err := b.coord.groups.DeleteTopicOffsets(b.ctx, topic); err != nil && b.ctx.Err() == nil {
		b.log.Warn("deleting committed offsets of a deleted topic", "topic", topic, "err", err)
	}
}

// coordinatorFailed decides what a handler does when a coordinator call
// returns err: a closing connection or broker drops the request (its
// response could not be sent); otherwise the client is told to retry.
func coordinatorFailed(rc *reqCtx, err error) (int16, error) {
	if rc.ctx.Err() != nil {
		return 0, err
	}
	return errorCode(err), nil
}

// initTransactionalProducer answers InitProducerId with a transactional.id
// through the transaction coordinator (v3+ carry the producer's current id
// and epoch, KIP-360).
func (b *Broker) initTransactionalProducer(rc *reqCtx, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) kmsg.Response {
	creq := coordinator.InitProducerIDRequest{TransactionalID: *req.TransactionalID,
		Timeout:    time.Duration(req.TransactionTimeoutMillis) * time.Millisecond,
		ProducerID: -1, Epoch: -1, Version: rc.version}
	if rc.version >= 3 {
		creq.ProducerID, creq.Epoch = req.ProducerID, req.ProducerEpoch
	}
	id, epoch, e := b.coord.txns.InitProducerID(rc.ctx, creq)
	if e != nil {
		resp.ErrorCode = e.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return resp
}
