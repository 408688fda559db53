// Package storage is kafkit's partition log: the on-disk (or in-memory)
// store of one partition's record batches, laid out as Apache Kafka lays
// out a log directory, with offset assignment, idempotent-producer
// deduplication, segment rolling, retention and crash recovery.
//
// The broker opens one Log per partition with Open and calls Append for each
// Produce, Read for each Fetch, BatchForTimestamp and MaxTimestampBatch for
// ListOffsets, DeleteRecordsBefore for DeleteRecords, WriteMarker for the
// transaction coordinator's commit and abort markers, LastStableOffset,
// ReadCommitted and AbortedTransactions for read_committed fetches,
// Cleanable and Clean from its log cleaner (cleanup.policy=compact),
// EndOffsetForEpoch (and EndOffsetForEpochAsLeader) for OffsetForLeaderEpoch,
// AppendAsFollower, TruncateTo and TruncateFullyAndStartAt on a follower
// replica, AssignLeaderEpoch when it becomes leader, ApplyRetention on its
// retention tick, ExpireProducers on its producer.id.expiration tick, Flush
// on its flush tick and Close at shutdown. The group and
// transaction coordinators use the same Log for __consumer_offsets and
// __transaction_state. All file access goes through the FS seam: OSFS,
// MemFS (in-memory mode; also simulates power loss for tests), or a
// fault-injecting wrapper in tests.
//
// # Batches
//
// Only record batches of magic 2 are stored, byte for byte as the Produce
// request carried them (a follower's AppendAsFollower stores the leader's
// batches byte for byte, owned fields included, after checking their
// framing, CRC and increasing offsets), except for the fields the broker
// owns: the base
// offset (bytes 0-7) and partition leader epoch (bytes 12-15), which lie
// outside the CRC, and maxTimestamp (bytes 35-42): the largest record
// timestamp, as Kafka's LogValidator sets it whatever the client claimed,
// and under message.timestamp.type=LogAppendTime the append time with the
// attributes timestamp-type bit; after a change of either the CRC-32C
// (Castagnoli, over bytes 21 to the end) is recomputed. Append walks each
// batch's records (decompressed as they are walked, through a buffer of
// fixed size, as Kafka's skipKeyValueIterator reads them) reading only
// their lengths, timestamp deltas, offset deltas and key lengths: exactly
// recordCount records (= lastOffsetDelta+1) with offset deltas 0, 1, ...
// (else ErrInvalidRecord), and in compacted logs (cleanup.policy with
// compact) none without a key (ErrInvalidRecord). Records are otherwise
// never decoded, except the one control record of a transaction marker,
// and in compacted logs, where the cleaner rewrites batches: every other
// check and every index uses the 61-byte header.
//
// # Directory layout
//
// A partition directory (the broker names it "<topic>-<partition>") holds:
//
//	<base>.log         segment: whole batches back to back, starting at offset <base>
//	<base>.index       offset index of that segment
//	<base>.timeindex   time index of that segment
//	<base>.txnindex    aborted transactions whose abort marker is in that segment
//	<offset>.snapshot  idempotent-producer state as of log end offset <offset>
//	recovery-point-offset-checkpoint   offsets below it are fsynced
//	log-start-offset-checkpoint        log start offset set by DeleteRecords
//	.kafka_cleanshutdown               present while the log is as a clean shutdown left it
//	leader-epoch-checkpoint            the leader epoch cache (see Leader epochs)
//	partition.metadata                 the topic id (AssignTopicID), as Kafka's
//	cleaner-offset-checkpoint          offsets below it were compacted (Kafka keeps
//	                                   one per log directory; kafkit one per partition)
//	<base>.<ext>.cleaned, .swap        a compaction in progress (see Compaction)
//
// <base> and <offset> are 20-digit zero-padded decimals, so names sort by
// offset. Files ending in ".tmp" are half-written replacements and are
// deleted at Open.
//
// # .log
//
// The base offset of a segment is the offset of its first batch (or, for an
// empty segment, the log end offset when it was created). Batch offsets
// increase strictly through the segments; they are contiguous (each batch
// starts right after the previous one's last offset) except where
// compaction left gaps: a read at a removed offset returns the next batch. A segment never exceeds segment.bytes (at most
// 2^31-1), and a batch's last offset is at most base+2^31-1.
//
// # .index
//
// Big-endian entries of 8 bytes: relative offset uint32 (the last offset of
// a batch minus the segment base) and position uint32 (the byte in .log
// where that batch starts). An entry is added for a batch when more than
// index.interval.bytes were appended since the previous entry; the first
// batch of a segment has none (position 0 is implied). Entries strictly
// increase in both fields. The file holds exactly its entries (Kafka
// preallocates and trims; kafkit never preallocates). To find offset o:
// binary-search the segments for the last base <= o, binary-search the index
// for the last entry with relative offset <= o-base, and scan batch headers
// from its position for the first batch whose last offset is >= o.
//
// # .timeindex
//
// Big-endian entries of 12 bytes: timestamp int64 and relative offset uint32.
// When an .index entry is added, a .timeindex entry is added too if the
// largest batch maxTimestamp seen so far in the segment grew since the last
// entry: it holds that timestamp and the last offset of the (first) batch
// that carried it. When a segment stops being active (roll, Close) the same
// rule adds a final entry, so the last entry is the segment's largest
// timestamp. Timestamps strictly increase; relative offsets never decrease.
// segment.index.bytes bounds both files: a full index rolls the segment.
//
// # Transactions
//
// A transactional data batch (attributes bit 4) opens its producer's
// transaction in the partition, at the batch's base offset, unless one is
// open. A transaction marker ends it: a control batch (bits 4 and 5) of the
// producer, written by WriteMarker, holding one record whose key is version
// int16 0 and type int16 (0 abort, 1 commit) and whose value is version
// int16 0 and the coordinator epoch int32. A marker's epoch must be at
// least the producer's; a newer one moves the producer to it. The last
// stable offset (LSO) is the smallest first offset of the open
// transactions, or the log end offset when none is open; ReadCommitted
// returns only batches below it. Append accepts control batches only if
// they are such markers. A producer's data batch with base sequence -1 (a
// coordinator's write for a transaction, as TxnOffsetCommit's offsets in
// __consumer_offsets) is checked for its epoch and opens the transaction,
// but has no sequence checks and is never a duplicate.
//
// # .txnindex
//
// Kafka's aborted-transaction index: big-endian entries of 34 bytes,
// version int16 (0), producer id int64, first offset int64 (the
// transaction's first offset in this partition), last offset int64 (its
// abort marker) and last stable offset int64 (the LSO right after the
// marker), in marker order. An entry belongs to the segment holding its
// marker. The file is written (atomically, see Checkpoint files) when its
// segment stops being active, at a roll or Close, and is absent when the
// segment has no aborted transaction; the active segment's entries live in
// memory. All entries are kept in memory, and dropped with their segments.
// AbortedTransactions(from, upper) returns the entries whose marker is at or
// after from and whose first offset is below upper, and stops after the
// first entry whose LSO is at or above upper: every transaction that ended
// later started at or after that LSO.
//
// # Snapshots
//
// "<offset>.snapshot" holds the idempotent producers' state after every
// batch below <offset>: big-endian version int16 (3), CRC-32C uint32 of the
// rest, count int32, then per producer: producer id int64, epoch int16,
// coordinator epoch int32 (of its last marker, -1 before any), first offset
// of its open transaction int64 (-1 when none), timestamp int64 of its last
// batch or marker (producer.id.expiration.ms counts from it),
// batch count int8 (at most 5), and per recent batch: first sequence int32,
// last sequence int32, base offset int64, last offset int64, timestamp
// int64. It is written at every roll and at Close; only the newest is kept.
// (Kafka's own snapshot format differs; these files are kafkit's.)
//
// # Leader epochs
//
// The leader epoch cache (Kafka's LeaderEpochFileCache) maps each leader
// epoch to the first offset written in it; entries strictly increase in
// both. Append records its leaderEpoch at the append's base offset the
// first time it appears, AppendAsFollower each batch's partition leader
// epoch at its base offset, AssignLeaderEpoch an epoch at the log end
// offset; as in Kafka's assign, an entry of the latest epoch at a later
// offset changes nothing, and entries whose epoch or start offset is at or
// above a new one's are dropped first. Negative epochs are not recorded.
// A truncation drops the entries starting at or after the new end; a
// larger log start (DeleteRecords, retention) drops the entries below it,
// the last one moved to start there. EndOffsetForEpoch(e) is Kafka's
// endOffsetFor: (e, log end offset) when e is the latest epoch; (-1, -1)
// for -1, an epoch above the latest or an empty cache; (e, first entry's
// start) for an epoch below the first; else the largest cached epoch at or
// below e and the start offset of the next one.
//
// leader-epoch-checkpoint holds the cache as Kafka writes it: "0\n", the
// entry count, then "<epoch> <startOffset>" lines. It is written (see
// Checkpoint files) whenever the cache changes, before the change is
// published, so an entry of the cache is never missing from the file; an
// append that fails after the write leaves an entry at or beyond the log
// end offset, which the next Open drops. Epochs change only with
// leadership, so the fsyncs are rare.
//
// # Replication
//
// AppendAsFollower takes batches whose first base offset is at least the
// log end offset (ErrOffsetMismatch below it; a gap above it, as a
// compacted leader's log has, is kept), writes them in runs that fit
// segment.bytes, and applies them to the producers' state, the aborted
// transaction index and the epoch cache as the replay at Open does.
// TruncateTo(o) removes every batch whose last offset is at or above o (a
// batch holding o goes whole, so the new end may be below o): later
// segments are deleted, last first, and the directory fsynced before the
// segment holding o is cut (its .index entries past the cut and the
// .timeindex entries written with them dropped) and fsynced, so a crash
// leaves a prefix of the old log, described by the old epoch file, never
// a cut segment followed by old ones; then the recovery point, the cleaner
// checkpoint and a log start above the new end come down to it, the epoch
// cache is cut, and the producers' state and aborted transaction index are
// rebuilt from the producer snapshot at or below the new end (a later one
// is deleted) or from the first batch; the cut segment's .txnindex is
// rewritten. A truncation below the first segment's base, and
// TruncateFullyAndStartAt(o), write log-start-offset-checkpoint o first
// and delete the producer snapshot, then every segment, and restart the
// log at o with empty producer state and epoch cache, every checkpoint
// moved to o (a crash in between leaves segments below the log start,
// which Open deletes).
// Both wait for a running Clean, which gives its pass up at its next
// batch (the groups it swapped in stay; the checkpoint does not move).
//
// # Checkpoint files
//
// recovery-point-offset-checkpoint and log-start-offset-checkpoint use
// Kafka's checkpoint text format with a single entry: "0\n1\n<topic>
// <partition> <offset>\n", topic and partition taken from the directory name.
// WriteOffsetCheckpoint and ReadOffsetCheckpoint read and write the same
// format with any number of "<topic> <partition> <offset>" lines (sorted),
// as Kafka's per-log-directory replication-offset-checkpoint; a reader
// accepts what Kafka's does (an empty file, any whitespace between fields)
// and refuses a wrong version or count, negative numbers and repeated
// partitions. Every checkpoint, snapshot and marker is written to
// "<name>.tmp", fsynced, renamed over <name>, and the directory fsynced.
//
// # Durability
//
// Appends are written with positional writes and published to readers after
// the write (and, when the flush policy calls for it, the fsync) returned.
// flush.messages=1 fsyncs the .log before every Append returns: an
// acknowledged append survives power loss. New segment files are created
// with an fsync of the directory before any batch goes in them. A new log's
// first segment files are created by its first write (with an fsync of the
// partition directory and of its parent), not by Open: a new log that was
// never written leaves its directory empty, and Close writes nothing for
// it (the next Open makes the same empty log). A roll
// fsyncs the finished segment and its indexes and moves the recovery point
// to the new segment's base; Flush moves it to the log end offset.
//
// # Recovery
//
// Open lists the directory, deletes .tmp files and index files without a
// .log, and loads the segments in offset order:
//
//   - With .kafka_cleanshutdown present (and after an unclean shutdown, for
//     segments whose successor's base is at or below the recovery point) a
//     segment is trusted. Open reads only the last entry of each index file
//     (the size must be a multiple of the entry size, the last .index entry
//     must lie inside the .log and point at a batch with that last offset)
//     and the batch headers after the last .index entry, to find the
//     segment's end. Those headers must frame correctly, must not include a
//     batch the index.interval.bytes rule would have indexed, and must not
//     carry a timestamp above the last .timeindex entry (every segment that
//     stopped being active has its final entry), so a lost or cut index file
//     is noticed. A failed check falls back to recovery of that segment
//     alone (as Kafka's): a truncation there (bit rot) leaves the later,
//     flushed segments in place. Trusted batches are
//     not CRC-checked (as in Kafka), and lowering index.interval.bytes makes
//     the next Open rebuild the indexes once. The whole index files are read
//     at Open for the active segment, and for the others on their first
//     lookup, with every entry checked; a failure there rebuilds the indexes
//     in memory from the batch headers (the files are fixed by the next
//     recovery). ApplyRetention drops the in-memory indexes of inactive
//     segments not looked up since the previous call.
//   - Otherwise (the segments at or after the recovery point) the segment is
//     recovered: every batch's length, magic, CRC and offsets are validated,
//     the .log is truncated at the first invalid batch (torn write, garbage,
//     bad CRC), both index files are rebuilt, and if the truncated segment is
//     not the last one, every later segment is deleted (none of it was
//     flushed). Dropped bytes are logged. An empty last segment whose base
//     lies past the previous segment's end (a gap compaction leaves) keeps
//     the log end offset at its base, as in Kafka.
//
// A segment whose base is below the end of the previous one is deleted with
// every later segment. The log start offset is the larger of the checkpoint
// and the first segment's base; a checkpointed start above the log end (all
// data deleted) leaves one empty segment at the start offset, and no
// producer snapshot. The producer
// state is the newest readable snapshot at or below the log end offset plus
// a replay of the batch headers after it (all headers without a snapshot;
// a snapshot of another version is ignored). The aborted transaction index
// is the .txnindex entries whose markers lie below that snapshot, plus the
// aborts the replay meets (it reads each marker's record); the replayed
// segments that are no longer active get their .txnindex rewritten. A
// .txnindex that fails its checks (size, version, entries outside its
// segment or out of order) discards the snapshot: everything is replayed.
// The leader epoch cache is leader-epoch-checkpoint with the epochs of the
// batches from the first recovered segment on assigned again (of every
// batch when the file is missing or unreadable; the file is then
// rewritten), cut at the log end offset and below the log start offset.
// Open finally fsyncs the recovered files and writes the recovery point at
// the log end offset. It reads only the files the directory lists, and
// after a clean shutdown not the recovery point (it is the log end offset).
// .kafka_cleanshutdown stays while the log is as the clean shutdown left
// it: the first change (append, DeleteRecords, retention, compaction)
// removes it and fsyncs the directory before it touches any file, so a
// crash from then on is seen as unclean, and a Close without a change
// writes nothing. So a restart fsyncs nothing for idle partitions.
//
// # Compaction
//
// Clean (Kafka's log cleaner) rewrites the segments wholly below the first
// uncleanable offset: the lowest of the active segment's base, the last
// stable offset and the base of the first segment younger than
// min.compaction.lag.ms. The dirty part starts at cleaner-offset-checkpoint;
// for it, the latest offset of every key (aborted records and markers left
// out) is mapped, then every segment from the first is filtered:
//
//   - a record stays if no later record has its key; a record without a key
//     goes;
//   - a tombstone (null value), or a transaction marker whose transaction
//     has no batch left, stays until its batch's delete horizon has passed
//     (KIP-534): the pass that first keeps one stamps its batch with
//     attributes bit 6 and firstTimestamp = the pass's time plus
//     delete.retention.ms (record timestamp deltas are rewritten relative
//     to it, so record timestamps do not change); a marker of a transaction with
//     a batch left (even one emptied, see below) stays; dropping an abort
//     marker drops its .txnindex entry;
//   - records of aborted transactions go;
//   - a batch keeps its offsets, header fields (base offset,
//     lastOffsetDelta, first timestamp, producer id, epoch, sequence,
//     transactional and control bits) and, if every record stays, its bytes;
//     otherwise its kept records are re-encoded with their offset and
//     timestamp deltas, compressed with the batch's codec as Kafka does,
//     maxTimestamp set to the kept records' largest, and the CRC
//     recomputed. A batch left without records goes, unless it
//     is its producer's latest batch: that one stays empty (record count 0,
//     uncompressed), as in Kafka, so the producer's state can be rebuilt
//     from the log.
//
// Consecutive segments are grouped into one as long as their sizes before
// cleaning add up to at most segment.bytes and their offsets and index
// entries fit one segment. A group is written to <base>.log.cleaned,
// .index.cleaned, .timeindex.cleaned and .txnindex.cleaned (possibly
// empty), fsynced, renamed to .swap (the .log last) and the directory
// fsynced: the .log.swap is the commit point. Then the group's other
// segments are deleted, the .swap files renamed over <base>'s (the .log
// last) and the directory fsynced. Open first deletes .cleaned files and
// .swap files without a .log.swap, and finishes every .log.swap: it deletes
// the segments whose base lies in (<base>, end of the .swap's last batch)
// and does the renames. A group left without batches is deleted instead,
// unless it holds the first segment, which stays (empty) so that the log
// start offset does not move. The checkpoint is then moved to the first
// uncleanable offset.
//
// Bad data found on disk at any time is reported as an error wrapping
// ErrCorrupt, never a panic.
package storage
