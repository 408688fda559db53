// Package consumer is kafkit's Kafka consumer: subscriptions (topic list or
// regular expression) balanced by a consumer group on the classic protocol,
// or manual assignment; prefetching per broker; seeking, pausing, positions,
// committed offsets and lag; automatic and manual commits.
//
// Goroutines. The application calls Poll from one goroutine. Rebalance
// callbacks (OnAssigned, OnRevoked, OnLost) and automatic commits run on that
// goroutine, inside Poll (or inside Close for the final revocation), exactly
// as Java's consumer runs them inside poll(): so a partition is never revoked
// while records the application got from it are still being processed by the
// loop calling Poll. A background goroutine keeps the group membership alive
// (JoinGroup, SyncGroup, Heartbeat); if Poll is not called for
// max.poll.interval.ms it leaves the group, and the next Poll rejoins.
// Another goroutine fetches (fetcher.go): every partition holding less than
// max.partition.fetch.bytes of fetched data is in a Fetch to its leader (up
// to two per broker, on separate connections), so the next records are on
// their way while the application works on the current ones. It only checks
// the batches' CRCs and headers; records are decoded batch by batch as Poll
// needs them, each partition's next large batch by a short-lived goroutine
// while the application works on the current one. Positions are looked up
// (committed offset, auto.offset.reset) and validated against the leader's
// log (KIP-320, after a leader change or from a commit) per partition in the
// background: one partition that cannot get a position never holds up the
// others.
//
// Offsets. A committed offset is the next offset to read. Automatic commits
// (enable.auto.commit, every auto.commit.interval.ms) happen at the start of
// Poll and cover only records earlier Polls returned. Close commits (when
// automatic commits are on), runs OnRevoked, and leaves the group.
package consumer
