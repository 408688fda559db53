package producer

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkit/kafkit/internal/client"
)

var (
	// ErrClosed is returned by Send after Close started, and given to the
	// callbacks of records that Close could not deliver before its ctx ended.
	ErrClosed = errors.New("producer: closed")
	// ErrBufferFull is returned by Send when buffer.memory stayed exhausted
	// for max.block.ms.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrMetadataTimeout is returned by Send when the topic's partitions were
	// not known within max.block.ms (Java's "Topic X not present in metadata
	// after N ms").
	ErrMetadataTimeout = errors.New("producer: metadata not available")
	// ErrRecordTooLarge is returned by Send for a record larger than
	// max.request.size or buffer.memory (Java's RecordTooLargeException).
	ErrRecordTooLarge = errors.New("producer: record too large")
	// ErrRecordTimeout is given to the callbacks of records that were not
	// acknowledged within delivery.timeout.ms.
	ErrRecordTimeout = errors.New("producer: delivery.timeout.ms expired")
	// ErrInvalidRecord is returned by Send for a record it cannot send (no
	// topic, partition out of range).
	ErrInvalidRecord = errors.New("producer: invalid record")
	// ErrInvalidConfig wraps every problem Validate reports.
	ErrInvalidConfig = errors.New("producer: invalid config")
	// ErrFatal wraps the error that put the producer into a fatal state
	// (fenced by a newer instance with the same transactional.id, or an
	// unrecoverable idempotence error); every later call fails with it and
	// the producer can only be closed.
	ErrFatal = errors.New("producer: fatal error")
	// ErrTransactionState is returned by transactional calls made in the
	// wrong state (Send outside a transaction, Commit without Begin, ...).
	ErrTransactionState = errors.New("producer: invalid transaction state")
	// ErrNotTransactional is returned by transactional calls on a producer
	// without transactional.id.
	ErrNotTransactional = errors.New("producer: transactional.id is not set")
	// ErrAbortableTransaction is returned when a record in the current
	// transaction failed: the transaction can only be aborted.
	ErrAbortableTransaction = errors.New("producer: transaction must be aborted")
	// ErrUnknownOutcome wraps the error of records that failed although an
	// earlier attempt may have been written: its response was lost, or
	// answered an error the broker gives after writing
	// (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND).
	ErrUnknownOutcome = errors.New("producer: the records may have been written")
)

// errKind is what an error from the cluster means for the producer.
type errKind int8

const (
	errFails     errKind = iota // the batch or call fails; the producer goes on
	errRetriable                // try again (until delivery.timeout.ms, or the caller's ctx)
	errAbortable                // the current transaction can only be aborted
	errFatal                    // the producer can only be closed
)

// errSource says which kind of request an error answered: the same code
// means different things from a partition leader and from a coordinator.
type errSource int8

const (
	fromProduce     errSource = iota
	fromCoordinator           // InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn
)

// classify is the one place that decides retriable, abortable or fatal, as
// Java's Sender.canRetry and TransactionManager do (with KIP-588: on a
// produce response INVALID_PRODUCER_EPOCH and INVALID_TXN_STATE only abort
// the transaction; from the coordinator they mean we were fenced). The
// idempotence errors OUT_OF_ORDER_SEQUENCE_NUMBER and UNKNOWN_PRODUCER_ID
// depend on the partition's sequences and are decided by the sender.
func classify(err error, from errSource, txn bool) errKind {
	switch {
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.TransactionalIDAuthorizationFailed),
		errors.Is(err, kerr.InvalidProducerIDMapping):
		if txn {
			return errFatal
		}
	case errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidTxnState):
		switch {
		case txn && from == fromCoordinator:
			return errFatal
		case txn:
			return errAbortable
		}
	case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID),
		errors.Is(err, kerr.FencedInstanceID), errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.TopicAuthorizationFailed):
		// The group moved on or we may not write: the transaction's
		// outputs must not be committed without its inputs.
		if txn {
			return errAbortable
		}
	case errors.Is(err, kerr.ConcurrentTransactions) && from == fromCoordinator:
		return errRetriable // the previous transaction is still completing
	case client.IsRetriable(err):
		return errRetriable
	}
	return errFails
}
