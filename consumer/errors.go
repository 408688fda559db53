package consumer

import "errors"

var (
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("kafkit consumer: closed")
	// ErrNoOffset is returned by Poll when a partition has no committed
	// offset (or its position is out of range) and auto.offset.reset is
	// "none". It wraps the partition; the application must Seek it.
	ErrNoOffset = errors.New("kafkit consumer: no offset and auto.offset.reset=none")
	// ErrLogTruncation is returned by Poll when a partition's log was
	// truncated below its position (an unclean leader election, detected
	// by KIP-320's epoch checks) and auto.offset.reset is "none" (Java's
	// LogTruncationException). It wraps the partition and the first
	// offset known to diverge; the application must Seek it.
	ErrLogTruncation = errors.New("kafkit consumer: log truncation detected and auto.offset.reset=none")
	// ErrCommitFailed means the group rebalanced (the generation or member
	// id is no longer valid) and the commit was rejected; the partitions
	// have been or will be revoked.
	ErrCommitFailed = errors.New("kafkit consumer: commit failed: the group rebalanced")
	// ErrNoGroup is returned by group operations (commits, Committed)
	// when group.id is not set.
	ErrNoGroup = errors.New("kafkit consumer: group.id is not set")
	// ErrNotAssigned is returned for partitions this consumer is not
	// assigned.
	ErrNotAssigned = errors.New("kafkit consumer: partition not assigned")
	// ErrSubscription is returned when mixing Subscribe and Assign.
	ErrSubscription = errors.New("kafkit consumer: invalid subscription")
	// ErrFenced means another consumer with the same group.instance.id
	// joined the group (FENCED_INSTANCE_ID); this consumer stops.
	ErrFenced = errors.New("kafkit consumer: fenced by another member with the same group.instance.id")
)
