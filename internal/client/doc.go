// Package client is the connection layer shared by kafkit's producer,
// consumer and admin client.
//
// A Client holds a metadata cache (brokers, topics, partitions, leaders,
// controller, cluster id) and, per broker, a few lazily dialed connections
// ("lanes": produce, fetch, group, everything else) so that a long-polling
// Fetch or a JoinGroup held by the coordinator never delays an unrelated
// request: Kafka answers the requests of one connection strictly in order.
//
// Each connection negotiates versions with ApiVersions, authenticates with
// SASL if configured, and then runs one writer and one reader goroutine.
// Requests are pipelined: the writer frames them with increasing correlation
// ids and the reader matches responses in order. Every request is sent at
// min(req.MaxVersion(), the broker's maximum for its key); callers never pick
// versions. A Produce that would go below v3 (no record batch v2) is refused
// with ErrUnsupportedAPI, whatever minimum the broker lists.
//
// Kafka error codes are returned as kerr errors (errors.Is(err,
// kerr.NotLeaderForPartition) works); IsRetriable is the one place that
// decides whether a failure is worth retrying.
package client
