package producer

import "errors"

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
)
