package storage

import "errors"

// Sentinels returned by this package. Every error that leaves the package
// wraps one of these (or an FS error) and is meant to be compared with
// errors.Is; the broker maps them to Kafka error codes in one place.
var (
	// ErrCorruptMessage: a batch handed to Append fails its length, magic or
	// CRC checks (Kafka CORRUPT_MESSAGE).
	ErrCorruptMessage = errors.New("storage: corrupt record batch")
	// ErrInvalidRecord: a well-formed batch whose contents make no sense, such
	// as a record count that disagrees with lastOffsetDelta or an empty
	// append (Kafka INVALID_RECORD).
	ErrInvalidRecord = errors.New("storage: invalid record batch")
	// ErrRecordTooLarge: a batch is larger than max.message.bytes or an
	// append larger than segment.bytes (Kafka MESSAGE_TOO_LARGE).
	ErrRecordTooLarge = errors.New("storage: record batch too large")
	// ErrInvalidTimestamp: a CreateTime record's timestamp is further from
	// the broker's clock than message.timestamp.before.max.ms or
	// message.timestamp.after.max.ms allow (Kafka INVALID_TIMESTAMP). Append
	// returns it as an *InvalidTimestampError naming the records.
	ErrInvalidTimestamp = errors.New("storage: invalid timestamp")
	// ErrUnsupportedMagic: a batch with magic < 2 (Kafka
	// UNSUPPORTED_FOR_MESSAGE_FORMAT); kafkit stores only v2 batches.
	ErrUnsupportedMagic = errors.New("storage: unsupported record batch magic")
	// ErrOffsetOutOfRange: a read or DeleteRecords offset outside
	// [StartOffset, EndOffset] (Kafka OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrOutOfOrderSequence: an idempotent batch whose sequence does not
	// follow the producer's last one (Kafka OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch: a batch from an older producer epoch (Kafka
	// INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")
	// ErrTransactionCoordinatorFenced: a transaction marker from an older
	// transaction coordinator epoch than the producer's last marker in
	// this partition (Kafka TRANSACTION_COORDINATOR_FENCED).
	ErrTransactionCoordinatorFenced = errors.New("storage: transaction coordinator fenced")
	// ErrOffsetMismatch: batches replicated from the leader
	// (AppendAsFollower) start below the log end offset: the follower's
	// fetch position and its log disagree.
	ErrOffsetMismatch = errors.New("storage: replicated batches do not start at the log end offset")
	// ErrClosed: the log was closed or deleted.
	ErrClosed = errors.New("storage: log closed")
	// ErrCorrupt marks bad data found on disk (by recovery or by a read);
	// it is always wrapped with the file and position.
	ErrCorrupt = errors.New("storage: corrupt data on disk")
)

// RecordError is one record at fault within its batch, as a Produce
// response's RecordErrors name it (KIP-467).
type RecordError struct {
	BatchIndex int32  // the record's index within its batch
	Message    string // Kafka's text for it
}

// InvalidTimestampError is Append's ErrInvalidTimestamp: Kafka refuses the
// whole batch and names every record out of range, so that a producer can
// tell which ones to drop.
type InvalidTimestampError struct {
	Records []RecordError
}

// Error is Kafka's message for the partition (RecordValidationException's).
func (e *InvalidTimestampError) Error() string {
	return "One or more records have been rejected due to invalid timestamp"
}

func (e *InvalidTimestampError) Unwrap() error { return ErrInvalidTimestamp }
