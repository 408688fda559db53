package coordinator

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one key/value record of __consumer_offsets; a nil Value is a
// tombstone.
type Record struct {
	Key, Value []byte
}

// Store appends records to a partition of __consumer_offsets. The
// coordinator calls it from its loop goroutine and answers the request that
// caused the write only after Append returned, so an acknowledged commit is
// in the log. Append returns the batch's base offset: of two commits of a
// partition, the one appended later wins, as in Kafka and as compaction
// keeps them.
type Store interface {
	Append(partition int32, recs []Record) (int64, error)
}

// LogRecord is a record of __consumer_offsets as Load replays it.
type LogRecord struct {
	Record
	Partition int32
	// Offset is the base offset of the record's batch.
	Offset int64
	// ProducerID is the transactional producer whose batch (offsets of
	// TxnOffsetCommit) or marker this is; -1 for the coordinator's own
	// records.
	ProducerID int64
	// Marker is set for a transaction marker (its Record is empty): the
	// producer's offsets held back since its TxnOffsetCommit take effect
	// (commit) or are dropped (abort).
	Marker Marker
}

// Marker is a transaction marker's kind.
type Marker int8

const (
	NoMarker Marker = iota
	CommitMarker
	AbortMarker
)

// Key versions of Kafka's __consumer_offsets schemas: 0 and 1 are offset
// commits, 2 is group metadata; later ones belong to the KIP-848 protocol
// and are skipped on load.
const (
	offsetKeyVersion = 1
	groupKeyVersion  = 2
	offsetValueVer   = 3 // with leader epoch, without expire timestamp
	groupValueVer    = 3 // with static members' instance ids
)

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return k.AppendTo(nil)
}

// offsetValue is the commit's record value: version 3, or version 1 (no
// leader epoch) for a commit with an explicit expiry, as Kafka writes them.
func offsetValue(o committed) []byte {
	v := kmsg.OffsetCommitValue{
		Version: offsetValueVer, Offset: o.offset, LeaderEpoch: o.leaderEpoch,
		Metadata: o.metadata, CommitTimestamp: o.commitTime.UnixMilli(),
	}
	if !o.expireTime.IsZero() {
		v.Version, v.ExpireTimestamp = 1, o.expireTime.UnixMilli()
	}
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// groupValue is the group's membership as Kafka stores it after a rebalance
// (with each member's assignment) or when the group becomes empty.
func groupValue(g *group) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVer
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = ptr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = ptr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		v.Members = append(v.Members, kmsg.GroupMetadataValueMember{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMillis: int32(m.rebalanceTimeout.Milliseconds()),
			SessionTimeoutMillis:   int32(m.sessionTimeout.Milliseconds()),
			Subscription:           m.metadataFor(g.protocol),
			Assignment:             m.assignment,
		})
	}
	return v.AppendTo(nil)
}

func ptr[T any](v T) *T { return &v }

// loader rebuilds groups from replayed records: the last record of a key
// wins and a tombstone removes it, as log compaction would leave it. A
// transaction's offsets wait in their group until its marker.
type loader struct {
	cg           cgLoader
	groups       map[string]*group
	txns         txnIndex
	partitionFor func(group string) int32
	now          time.Time
	// last is the offset of the last batch replayed, by partition.
	last map[int32]int64
}

func (l *loader) get(id string) *group {
	g := l.groups[id]
	if g == nil {
		g = newGroup(id, l.now)
		l.groups[id] = g
	}
	return g
}

func (l *loader) apply(r LogRecord) error {
	if r.Marker != NoMarker {
		l.txns.complete(l.groups, r.Partition, r.ProducerID, l.partitionFor, r.Marker == CommitMarker)
		return nil
	}
	if len(r.Key) < 2 {
		return fmt.Errorf("record key of %d bytes", len(r.Key))
	}
	switch binary.BigEndian.Uint16(r.Key) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("offset commit key: %w", err)
		}
		g := l.get(k.Group)
		tp := topicPartition{k.Topic, k.Partition}
		if r.Value == nil {
			if r.ProducerID < 0 {
				delete(g.offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("offset commit value of group %s: %w", k.Group, err)
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		o := committed{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, commitTime: time.UnixMilli(v.CommitTimestamp), logOffset: r.Offset}
		if v.Version == 1 && v.ExpireTimestamp >= 0 {
			o.expireTime = time.UnixMilli(v.ExpireTimestamp)
		}
		if r.ProducerID >= 0 {
			l.txns.hold(g, r.ProducerID, tp, o)
			return nil
		}
		g.offsets[tp] = o
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("group metadata key: %w", err)
		}
		g := l.get(k.Group)
		g.resetMembership()
		if r.Value == nil {
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("group metadata value of group %s: %w", k.Group, err)
		}
		g.protocolType, g.generation = v.ProtocolType, v.Generation
		if v.Protocol != nil {
			g.protocol = *v.Protocol
		}
		if v.Leader != nil {
			g.leader = *v.Leader
		}
		if v.CurrentStateTimestamp > 0 {
			g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
		}
		for _, vm := range v.Members {
			m := &member{
				id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
				sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
				rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
				// The replayed bytes alias the reader's buffer, which is reused.
				protocols:  []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: bytes.Clone(vm.Subscription)}},
				assignment: bytes.Clone(vm.Assignment),
			}
			if v.Version < 1 {
				m.rebalanceTimeout = m.sessionTimeout
			}
			g.addMember(m)
		}
		if g.members[g.leader] == nil {
			g.leader = ""
			if ms := g.sortedMembers(); len(ms) > 0 {
				g.leader = ms[0].id
			}
		}
		if len(g.members) > 0 {
			g.state = stateStable
			g.subscribed = subscribedTopics(g)
		}
	case cgMetadataKey, cgPartitionMetadataKey, cgMemberMetadataKey, cgTargetMetadataKey, cgTargetMemberKey, cgCurrentAssignmentKey:
		k := &kbin.Reader{Src: r.Key[2:]}
		return l.cg.apply(l.get(k.String()), binary.BigEndian.Uint16(r.Key), k, r.Value)
	}
	// Other key versions (share groups' and later ones) are not kafkit's.
	return nil
}
