// Package replica is Kafka's data replication on a broker of a cluster:
// the leader's view of its followers (their log end offsets and when each
// last caught up), the high watermark, the in-sync replica set and the
// AlterPartition proposals that change it, the acks=all checks, and the
// follower side (replica fetchers that copy the leader's batches byte for
// byte and truncate where the logs diverged). It drives storage.Log, it
// does not replace it.
//
// Semantics follow Kafka's Partition, Replica, ReplicaManager and
// AbstractFetcherThread (core/src/main/scala/kafka/...):
//
//   - The high watermark is the smallest log end offset over the "maximal"
//     ISR (the committed ISR plus replicas whose addition is in flight,
//     KIP-497) and the followers that are caught up and eligible to join;
//     it never moves backwards and does not move while the committed ISR
//     is smaller than min.insync.replicas (KIP-966's strict rule).
//   - A follower is caught up when its last fetch asked for the leader's
//     log end offset at that time; one that has not been caught up for
//     replica.lag.time.max.ms leaves the ISR, one whose log end offset
//     reached the high watermark and the start of the current leader
//     epoch joins it (never a fenced or shutting-down broker, nor one whose
//     broker epoch changed).
//   - Leadership and ISR come from the metadata image only (Manager.Apply,
//     fed in log order by the broker's onApply); the leader proposes ISR
//     changes and waits for the committed record.
//
// Concurrency: each Partition has one mutex (Partition.mu) guarding its
// replication state; a leader's appends run under it, so an append, the
// acks checks before it and the high watermark after it see one
// leadership. A follower's log is written only by the one fetcher that
// owns the partition, under the same mutex, after checking that it still
// follows the leader and epoch the fetch was sent for.
package replica
