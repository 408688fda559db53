// Package coordinator holds kafkit's two coordinators.
//
// Coordinator is the group coordinator for the classic consumer-group
// protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup membership with
// Kafka's rebalance state machine (Empty, PreparingRebalance,
// CompletingRebalance, Stable, Dead), static membership (KIP-345), committed
// offsets and the group admin operations.
//
// TxnCoordinator is the transaction coordinator: InitProducerId with a
// transactional.id (epoch bumps, fencing), AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn with its markers, transaction.timeout.ms aborts,
// and its state in __transaction_state (TxnMetadataKey/Value records). It is
// a mutex-guarded state machine: each request runs to completion under the
// mutex, markers included; Run only drives its timers.
//
// # Concurrency
//
// One goroutine, Run, owns every group: requests, timer expirations and the
// load of durable state all reach it as closures on one channel, so the
// state machine needs no locks. JoinGroup and SyncGroup block their caller
// (not the loop) until the rebalance completes, as Kafka's delayed
// operations do; the loop answers them through buffered channels so it never
// blocks on a caller that went away.
//
// # Durability
//
// Committed offsets and group metadata are records of Kafka's own schemas
// (OffsetCommitKey/Value, GroupMetadataKey/Value) appended through Store to
// the partition of __consumer_offsets that PartitionFor picks; deletions are
// tombstones. Load replays those records at startup; until it has finished,
// every request is answered with COORDINATOR_LOAD_IN_PROGRESS.
//
// # Transactional offsets
//
// TxnOffsetCommit's offsets are written as the producer's transactional
// batch and held in their group, pending, until the transaction's marker
// (CompleteTxnOffsets, or the marker met in the replay) commits or drops
// them; the write and the hold, the fetch with RequireStable and the
// completion are each one step of the loop, as Kafka does them under the
// group lock. A committed transactional offset replaces the group's offset
// only if it was appended after it, so a later plain commit wins, as it
// does in Kafka and after compaction.
package coordinator
