package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/storage"
)

// txnStateTopic is Kafka's internal topic of transaction states.
const txnStateTopic = "__transaction_state"

func (b *Broker) registerTxnHandlers(t *handlerTable) {
	register(t, kmsg.AddPartitionsToTxn, addPartitionsToTxnVersions, b.handleAddPartitionsToTxn)
	register(t, kmsg.AddOffsetsToTxn, addOffsetsToTxnVersions, b.handleAddOffsetsToTxn)
	register(t, kmsg.EndTxn, endTxnVersions, b.handleEndTxn)
	register(t, kmsg.TxnOffsetCommit, txnOffsetCommitVersions, b.handleTxnOffsetCommit)
	register(t, kmsg.DescribeProducers, describeProducersVersions, b.handleDescribeProducers)
	register(t, kmsg.DescribeTransactions, describeTransactionsVersions, b.handleDescribeTransactions)
	register(t, kmsg.ListTransactions, listTransactionsVersions, b.handleListTransactions)
}

// startTxnCoordinator starts the transaction coordinator's timers and loads
// __transaction_state in the background, once the group coordinator's
// replay of __consumer_offsets has collected the transactional offsets still
// open (completing a prepared transaction applies them). Transactional
// requests get COORDINATOR_LOAD_IN_PROGRESS until then.
func (b *Broker) startTxnCoordinator() error {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	txns, err := coordinator.NewTxnCoordinator(coordinator.TxnConfig{
		NumPartitions:       b.coord.txnPartitions,
		MaxTimeout:          ms(b.cfg.TxnMaxTimeoutMs),
		IDExpiration:        ms(b.cfg.TransactionalIDExpirationMs),
		OffsetsPartitionFor: b.coord.groups.PartitionFor,
		Owns:                b.leadsInternal(txnStateTopic),
		Logger:              b.log,
	}, txnBackend{b})
	if err != nil {
		return err
	}
	b.coord.txns = txns
	b.coord.txnsLoaded = make(chan struct{})
	b.goStart(func() { txns.Run(b.ctx) })
	if b.cfg.clusterMode() {
		close(b.coord.txnsLoaded) // partitions load with their leadership
		return nil
	}
	b.goStart(func() {
		defer close(b.coord.txnsLoaded)
		select {
		case <-b.coord.groupsLoaded:
		case <-b.ctx.Done():
			return
		}
		if err := txns.Load(b.ctx, b.replayTxnState(-1)); err != nil && b.ctx.Err() == nil {
			b.log.Error("transaction coordinator failed to load; transactional requests will keep failing", "err", err)
		}
	})
	return nil
}

// txnStateTopicGet returns __transaction_state (see internalTopic), with
// the transaction coordinator's partition count.
func (b *Broker) txnStateTopicGet() (*topic, error) {
	return b.internalTopic(txnStateTopic, int64(b.coord.txnPartitions), b.cfg.TxnStateReplicationFactor)
}

// appendBatch writes recs as one batch of the given producer (transactional
// when p.ID >= 0) to a partition of t and returns its base offset; on a
// cluster as the partition's leader, returning once the high watermark
// passed it (appendCommitted).
func (b *Broker) appendBatch(t *topic, partition int32, recs []coordinator.Record, p recordbatch.Producer) (int64, error) {
	if partition < 0 || int(partition) >= len(t.partitions) {
		return -1, fmt.Errorf("%s has %d partitions, not %d", t.name, len(t.partitions), partition+1)
	}
	now := time.Now()
	bld := recordbatch.NewBuilder(recordbatch.Options{Transactional: p.ID >= 0}, 0)
	for _, r := range recs {
		bld.Append(now.UnixMilli(), r.Key, r.Value, nil)
	}
	batch, err := bld.Finish(p)
	if err != nil {
		return -1, err
	}
	tp := t.partitions[partition]
	res, err := b.appendCommitted(tp, batch, now)
	if err != nil {
		return -1, fmt.Errorf("appending to %s-%d: %w", t.name, partition, err)
	}
	return res.BaseOffset, nil
}

// txnBackend gives the transaction coordinator the broker's logs.
type txnBackend struct{ b *Broker }

func (s txnBackend) AppendTxnState(partition int32, recs []coordinator.Record) error {
	if !s.b.leadsInternal(txnStateTopic)(partition) {
		return kerr.NotCoordinator // the partition's transactions are being unloaded
	}
	t, err := s.b.txnStateTopicGet()
	if err != nil {
		return err
	}
	_, err = s.b.appendBatch(t, partition, recs, recordbatch.NoProducer())
	return err
}

func (s txnBackend) NewProducerID() (int64, error) { return s.b.pids.next() }

// WriteTxnMarker writes the marker and, in __consumer_offsets, has the group
// coordinator commit or drop the producer's pending offsets there. A
// failure leaves the transaction prepared, completed again by the
// coordinator's timer.
func (s txnBackend) WriteTxnMarker(ctx context.Context, topicName string, partition int32, producerID int64, epoch int16, coordinatorEpoch int32, commit bool) error {
	m := txnMarker{producerID, epoch, coordinatorEpoch, commit}
	if c := s.b.cluster; c != nil {
		if leader := c.partitionLeader(topicName, partition); leader >= 0 && leader != s.b.nodeID {
			return c.forwardMarker(ctx, leader, topicName, partition, m)
		}
	}
	return s.writeMarkerHere(ctx, topicName, partition, m)
}

// txnMarker is a transaction marker to write: the producer's, the
// coordinator epoch of the coordinator that writes it, commit or abort.
type txnMarker struct {
	producerID       int64
	epoch            int16
	coordinatorEpoch int32
	commit           bool
}

// writeMarkerHere writes a marker to this node's log of the partition and
// waits until it is done (startMarker).
func (s txnBackend) writeMarkerHere(ctx context.Context, topicName string, partition int32, m txnMarker) error {
	done, err := s.startMarker(topicName, partition, m)
	if err != nil {
		return err
	}
	return done(ctx)
}

// startMarker appends a marker to this node's log of the partition and
// returns the wait until it is done: on a cluster committed (the high
// watermark passed it), and in __consumer_offsets applied to the group
// coordinator's pending transactional offsets.
func (s txnBackend) startMarker(topicName string, partition int32, m txnMarker) (func(context.Context) error, error) {
	producerID, commit := m.producerID, m.commit
	t := s.b.topics.get(topicName)
	if t == nil || partition < 0 || int(partition) >= len(t.partitions) {
		s.b.log.Info("transaction marker for a partition that no longer exists", "topic", topicName, "partition", partition, "producer_id", producerID)
		return func(context.Context) error { return nil }, nil
	}
	p := t.partitions[partition]
	if c := s.b.cluster; c != nil {
		c.verified.ended(topicName, partition, producerID)
		if h := c.beforeMarker.Load(); h != nil {
			(*h)(topicName, partition)
		}
	}
	var off int64
	var err error
	committed := func(context.Context) error { return nil }
	if s.b.cluster != nil {
		off, committed, err = s.b.appendMarker(p, m)
	} else {
		off, err = p.log.WriteMarker(producerID, m.epoch, commit, m.coordinatorEpoch, -1)
		p.notify()
	}
	if err != nil {
		return nil, fmt.Errorf("writing a marker to %s-%d: %w", topicName, partition, err)
	}
	return func(ctx context.Context) error {
		if err := committed(ctx); err != nil {
			return fmt.Errorf("writing a marker to %s-%d: %w", topicName, partition, err)
		}
		if topicName != offsetsTopic {
			return nil
		}
		return s.b.coord.groups.CompleteTxnOffsets(ctx, partition, producerID, commit, off)
	}, nil
}

// replayTxnState yields every record of a partition of __transaction_state
// (of every partition for -1) in offset order, for the coordinator's Load.
func (b *Broker) replayTxnState(index int32) iter.Seq2[coordinator.Record, error] {
	return func(yield func(coordinator.Record, error) bool) {
		err := b.replayBatches(txnStateTopic, index, func(_ *partition, batch *recordbatch.Batch) bool {
			for _, rec := range batch.Records {
				if !yield(coordinator.Record{Key: rec.Key, Value: rec.Value}, nil) {
					return false
				}
			}
			return true
		})
		if err != nil {
			yield(coordinator.Record{}, err)
		}
	}
}

func isCommitMarker(key []byte) bool {
	var k kmsg.ControlRecordKey
	return k.ReadFrom(key) == nil && k.Type == kmsg.ControlRecordKeyTypeCommit
}

// txnError maps a storage error of a coordinator's transactional write to
// the Kafka error the producer should see.
func txnError(err error, fenced *kerr.Error) *kerr.Error {
	if errors.Is(err, storage.ErrInvalidProducerEpoch) {
		return fenced
	}
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(errorCode(err)), &ke) {
		return ke
	}
	return kerr.UnknownServerError
}

// verifiedAppend runs append, the write of a produced batch; a
// transactional batch of a producer that names its transactional id is
// written only if its partition is in the producer's ongoing transaction
// (transaction.partition.verification.enable, KIP-890 part 1), otherwise it
// gets the error Kafka's ReplicaManager answers, with its message.
// Without the check a stray or late batch would open a transaction no
// marker ever ends, and the partition's LSO would stay put. On a cluster
// the check goes to the transactional id's coordinator when that is
// another node (cluster.verifiedAppend).
func (b *Broker) verifiedAppend(txnID *string, topic string, partition int32, records []byte, append func()) (*kerr.Error, string) {
	producerID, epoch, ok := transactionalBatch(records)
	if !ok || txnID == nil || !b.cfg.TxnPartitionVerification {
		append()
		return nil, ""
	}
	var e *kerr.Error
	if c := b.cluster; c != nil && !b.leadsInternal(txnStateTopic)(b.coord.txns.TxnPartitionFor(*txnID)) {
		e = c.verifiedAppend(*txnID, producerID, epoch, topic, partition, append)
	} else {
		e = b.coord.txns.Verified(*txnID, producerID, epoch, topic, partition, append)
	}
	switch e {
	case nil:
		return nil, ""
	case kerr.InvalidTxnState:
		return e, "Partition was not added to the transaction"
	case kerr.ProducerFenced:
		return kerr.InvalidProducerEpoch, e.Message
	case kerr.ConcurrentTransactions, kerr.CoordinatorLoadInProgress, kerr.CoordinatorNotAvailable, kerr.NotCoordinator:
		// Retriable for every client, without a metadata refresh.
		return kerr.NotEnoughReplicas, "Unable to verify the partition has been added to the transaction. Underlying error: " + e.Message
	default:
		return e, e.Message
	}
}

// transactionalBatch returns the producer id (offset 43) and epoch (51) of
// a produced batch whose attributes (21) mark it transactional (bit 4).
func transactionalBatch(records []byte) (int64, int16, bool) {
	if len(records) < recordbatch.HeaderLen || binary.BigEndian.Uint16(records[21:])&0x10 == 0 {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(records[43:])), int16(binary.BigEndian.Uint16(records[51:])), true
}

// isControlBatch reports whether a produced batch claims to be a control
// batch (attributes bit 5).
func isControlBatch(records []byte) bool {
	return len(records) >= recordbatch.HeaderLen && binary.BigEndian.Uint16(records[21:])&0x20 != 0
}
