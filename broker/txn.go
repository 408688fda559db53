package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
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
		NumPartitions:       int32(b.cfg.TxnStateNumPartitions),
		MaxTimeout:          ms(b.cfg.TxnMaxTimeoutMs),
		IDExpiration:        ms(b.cfg.TransactionalIDExpirationMs),
		OffsetsPartitionFor: b.coord.groups.PartitionFor,
		Logger:              b.log,
	}, txnBackend{b})
	if err != nil {
		return err
	}
	b.coord.txns = txns
	b.goStart(func() { txns.Run(b.ctx) })
	b.goStart(func() {
		select {
		case <-b.coord.txnOffsets.replayed:
		case <-b.ctx.Done():
			return
		}
		if err := txns.Load(b.ctx, b.replayTxnState); err != nil && b.ctx.Err() == nil {
			b.log.Error("transaction coordinator failed to load; transactional requests will keep failing", "err", err)
		}
	})
	return nil
}

// txnStateTopicGet returns __transaction_state (see internalTopic), with
// transaction.state.log.num.partitions partitions.
func (b *Broker) txnStateTopicGet() (*topic, error) {
	return b.internalTopic(txnStateTopic, b.cfg.TxnStateNumPartitions, b.cfg.TxnStateReplicationFactor)
}

// appendBatch writes recs as one batch of the given producer (transactional
// when p.ID >= 0) to a partition of t.
func appendBatch(t *topic, partition int32, recs []coordinator.Record, p recordbatch.Producer) error {
	if partition < 0 || int(partition) >= len(t.partitions) {
		return fmt.Errorf("%s has %d partitions, not %d", t.name, len(t.partitions), partition+1)
	}
	now := time.Now()
	bld := recordbatch.NewBuilder(recordbatch.Options{Transactional: p.ID >= 0}, 0)
	for _, r := range recs {
		bld.Append(now.UnixMilli(), r.Key, r.Value, nil)
	}
	batch, err := bld.Finish(p)
	if err != nil {
		return err
	}
	tp := t.partitions[partition]
	if _, err := tp.log.Append(batch, now, 0); err != nil {
		return fmt.Errorf("appending to %s-%d: %w", t.name, partition, err)
	}
	tp.notify()
	return nil
}

// txnBackend gives the transaction coordinator the broker's logs.
type txnBackend struct{ b *Broker }

func (s txnBackend) AppendTxnState(partition int32, recs []coordinator.Record) error {
	t, err := s.b.txnStateTopicGet()
	if err != nil {
		return err
	}
	return appendBatch(t, partition, recs, recordbatch.NoProducer())
}

func (s txnBackend) NewProducerID() (int64, error) { return s.b.pids.next() }

// WriteTxnMarker writes the marker and, in __consumer_offsets, hands the
// producer's offsets of a committed transaction to the group coordinator,
// retrying while it loads.
func (s txnBackend) WriteTxnMarker(ctx context.Context, topicName string, partition int32, producerID int64, epoch int16, commit bool) error {
	t := s.b.topics.get(topicName)
	if t == nil || partition < 0 || int(partition) >= len(t.partitions) {
		s.b.log.Info("transaction marker for a partition that no longer exists", "topic", topicName, "partition", partition, "producer_id", producerID)
		return nil
	}
	p := t.partitions[partition]
	if _, err := p.log.WriteMarker(producerID, epoch, commit, 0); err != nil {
		return fmt.Errorf("writing a marker to %s-%d: %w", topicName, partition, err)
	}
	p.notify()
	if topicName != offsetsTopic {
		return nil
	}
	recs := s.b.coord.txnOffsets.take(partition, producerID)
	if !commit || len(recs) == 0 {
		return nil
	}
	return backoff.Retry(func() error {
		err := s.b.coord.groups.ApplyTxnOffsets(ctx, recs)
		if err != nil && !errors.Is(err, coordinator.ErrLoading) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(0)), ctx))
}

// replayTxnState yields every record of __transaction_state, partition by
// partition in offset order, for the coordinator's Load.
func (b *Broker) replayTxnState(yield func(coordinator.Record, error) bool) {
	err := b.replayBatches(txnStateTopic, func(_ *partition, batch *recordbatch.Batch) bool {
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

// txnOffsets holds the offsets TxnOffsetCommit wrote into __consumer_offsets
// for transactions still open, by partition and producer, until the
// transaction's marker there commits them (to the group coordinator) or
// aborts them.
type txnOffsets struct {
	mu      sync.Mutex // guards pending
	pending map[txnOffsetsKey][]coordinator.Record
	// replayed is closed when the replay of __consumer_offsets has put the
	// offsets of transactions open at the last shutdown in pending.
	replayed     chan struct{}
	replayedOnce sync.Once
}

type txnOffsetsKey struct {
	partition  int32
	producerID int64
}

func newTxnOffsets() *txnOffsets {
	return &txnOffsets{pending: make(map[txnOffsetsKey][]coordinator.Record), replayed: make(chan struct{})}
}

func (o *txnOffsets) add(partition int32, producerID int64, recs []coordinator.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := txnOffsetsKey{partition, producerID}
	o.pending[k] = append(o.pending[k], recs...)
}

func (o *txnOffsets) take(partition int32, producerID int64) []coordinator.Record {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := txnOffsetsKey{partition, producerID}
	recs := o.pending[k]
	delete(o.pending, k)
	return recs
}

// unstable lists the partitions of group with a transactional offset still
// pending (KIP-447: OffsetFetch with RequireStable answers them
// UNSTABLE_OFFSET_COMMIT until the transaction ends).
func (o *txnOffsets) unstable(group string) map[kafkit.TopicPartition]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out map[kafkit.TopicPartition]bool
	for _, recs := range o.pending {
		for _, r := range recs {
			var k kmsg.OffsetCommitKey
			if k.ReadFrom(r.Key) != nil || k.Group != group {
				continue
			}
			if out == nil {
				out = map[kafkit.TopicPartition]bool{}
			}
			out[kafkit.TopicPartition{Topic: k.Topic, Partition: k.Partition}] = true
		}
	}
	return out
}

// offsetsReplay filters the replay of __consumer_offsets for the group
// coordinator as a read_committed reader would, but in place: a
// transaction's offsets are held back until its marker, then yielded
// (commit) or dropped (abort); those without a marker at the end go to the
// broker's pending transactional offsets, for the transaction coordinator to
// end. One goroutine (the group coordinator's load) uses it.
type offsetsReplay struct {
	dst  *txnOffsets
	open map[txnOffsetsKey][]coordinator.Record
}

func (b *Broker) newOffsetsReplay() *offsetsReplay {
	return &offsetsReplay{dst: b.coord.txnOffsets, open: make(map[txnOffsetsKey][]coordinator.Record)}
}

// visible returns the records of batch that take effect at its position.
func (r *offsetsReplay) visible(partition int32, batch *recordbatch.Batch) []coordinator.Record {
	k := txnOffsetsKey{partition, batch.ProducerID}
	switch {
	case batch.Attributes.Control():
		recs := r.open[k]
		delete(r.open, k)
		if len(batch.Records) == 1 && isCommitMarker(batch.Records[0].Key) {
			return recs
		}
		return nil
	case batch.Attributes.Transactional():
		for _, rec := range batch.Records {
			// The read buffer is reused; held records need their own bytes.
			r.open[k] = append(r.open[k], coordinator.Record{Key: append([]byte(nil), rec.Key...), Value: append([]byte(nil), rec.Value...)})
		}
		return nil
	}
	recs := make([]coordinator.Record, len(batch.Records))
	for i, rec := range batch.Records {
		recs[i] = coordinator.Record{Key: rec.Key, Value: rec.Value}
	}
	return recs
}

// finish hands the offsets of open transactions over; it runs once the
// replay stops, however it stops.
func (r *offsetsReplay) finish() {
	for k, recs := range r.open {
		r.dst.add(k.partition, k.producerID, recs)
	}
	r.dst.replayedOnce.Do(func() { close(r.dst.replayed) })
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

// isControlBatch reports whether a produced batch claims to be a control
// batch (attributes bit 5).
func isControlBatch(records []byte) bool {
	return len(records) >= recordbatch.HeaderLen && binary.BigEndian.Uint16(records[21:])&0x20 != 0
}
