// Package kafkit holds the types shared by the producer, consumer, admin and
// processor packages: records, headers and topic-partitions. It has no
// behaviour of its own beyond serializers (serde.go), so every other package
// can import it without pulling in the network stack.
package kafkit

import (
	"context"
	"time"
)

// Header is one record header. Kafka allows duplicate keys and keeps order.
type Header struct {
	Key   string
	Value []byte
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Record is one Kafka record as the producer sends it and the consumer
// returns it. Fields the broker assigns (Offset, LeaderEpoch, and Timestamp
// under LogAppendTime) are filled in on the consumer side and in produce
// results.
type Record struct {
	Topic     string
	Partition int32 // -1 (AnyPartition) lets the partitioner choose
	Offset    int64
	Key       []byte // nil is a null key; []byte{} is an empty key
	Value     []byte // nil is a null value (a tombstone)
	Headers   []Header
	// Timestamp is CreateTime when producing; zero means "now". On consume it
	// is CreateTime or LogAppendTime according to TimestampType.
	Timestamp     time.Time
	TimestampType TimestampType
	LeaderEpoch   int32
}

// AnyPartition asks the producer's partitioner to choose the partition.
const AnyPartition int32 = -1

// TimestampType says where a record's timestamp came from.
type TimestampType int8

const (
	CreateTime    TimestampType = 0
	LogAppendTime TimestampType = 1
)

// Offset sentinels understood by ListOffsets and the consumer's Seek.
const (
	OffsetLatest   int64 = -1
	OffsetEarliest int64 = -2
)

// SASL is the authentication of producers, consumers and admin clients
// (security.protocol SASL_PLAINTEXT, or SASL_SSL together with TLS).
type SASL struct {
	Mechanism string // sasl.mechanism: SASLPlain, SASLScramSHA256, SASLScramSHA512 or SASLOAuthBearer
	User      string // sasl.username
	Password  string // sasl.password
	// TokenSource gives the token (a JWT) OAUTHBEARER authenticates with;
	// it is asked for each new connection, so it may refresh. Wrap a
	// function with TokenSourceFunc.
	TokenSource TokenSource
}

// TokenSource supplies OAUTHBEARER tokens.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenSourceFunc is a function used as a TokenSource.
type TokenSourceFunc func(ctx context.Context) (string, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// SASL mechanisms, with Kafka's names.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
)

// GroupMetadata identifies a consumer group member, as Java's
// ConsumerGroupMetadata: a consumer reports it and a transactional producer
// sends offsets in its name, so the group coordinator can fence a member
// that was rebalanced away (KIP-447).
type GroupMetadata struct {
	GroupID         string
	GenerationID    int32   // -1 if unknown: the coordinator then skips the generation check
	MemberID        string  // "" if unknown
	GroupInstanceID *string // group.instance.id for static members
}
