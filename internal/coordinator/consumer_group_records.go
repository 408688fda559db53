package coordinator

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
)

// A consumer group's state is stored in __consumer_offsets as Kafka stores
// it, in the records of its group-coordinator schemas (key versions 3 to 8;
// values are version 0, flexible). kmsg has no types for them, so they are
// encoded here with kbin, field by field as the schemas list them:
//
//	3 ConsumerGroupMetadata                group → group epoch
//	4 ConsumerGroupPartitionMetadata       group → subscribed topics' ids and partition counts
//	5 ConsumerGroupMemberMetadata          group, member → subscription and client
//	6 ConsumerGroupTargetAssignmentMetadata group → assignment epoch
//	7 ConsumerGroupTargetAssignmentMember  group, member → target partitions
//	8 ConsumerGroupCurrentMemberAssignment group, member → epochs, state, owned and revoking partitions
//
// A member's records are written when they change (each member keeps the
// bytes it last wrote); a member that goes away, and a group that dies, get
// tombstones.
const (
	cgMetadataKey          = 3
	cgPartitionMetadataKey = 4
	cgMemberMetadataKey    = 5
	cgTargetMetadataKey    = 6
	cgTargetMemberKey      = 7
	cgCurrentAssignmentKey = 8
)

// cgStored is what a consumer group last wrote, to write only changes.
type cgStored struct {
	epoch, assignmentEpoch, subscription []byte
	members                              map[string]*cgStoredMember
}

type cgStoredMember struct{ metadata, target, current []byte }

func cgKey(version int16, group string, member ...string) []byte {
	k := kbin.AppendString(kbin.AppendInt16(nil, version), group)
	for _, m := range member {
		k = kbin.AppendString(k, m)
	}
	return k
}

// value starts a flexible version-0 record value.
func value() []byte { return kbin.AppendInt16(nil, 0) }

// endValue closes a flexible value (or struct) with no tagged fields.
func endValue(b []byte) []byte { return kbin.AppendUvarint(b, 0) }

func int32Value(v int32) []byte { return endValue(kbin.AppendInt32(value(), v)) }

func (c *Coordinator) appendPartitions(b []byte, cg *consumerGroup, s tpSet) []byte {
	type topicParts struct {
		id    [16]byte
		parts []int32
	}
	var ts []topicParts
	for _, tp := range s.sorted() {
		if n := len(ts); n > 0 && ts[n-1].id == c.topicID(cg, tp.topic) {
			ts[n-1].parts = append(ts[n-1].parts, tp.partition)
			continue
		}
		ts = append(ts, topicParts{c.topicID(cg, tp.topic), []int32{tp.partition}})
	}
	b = kbin.AppendCompactArrayLen(b, len(ts))
	for _, t := range ts {
		b = kbin.AppendUuid(b, t.id)
		b = kbin.AppendCompactArrayLen(b, len(t.parts))
		for _, p := range t.parts {
			b = kbin.AppendInt32(b, p)
		}
		b = endValue(b)
	}
	return b
}

func subscriptionValue(cg *consumerGroup) []byte {
	b := value()
	names := slices.Sorted(maps.Keys(cg.subscription))
	b = kbin.AppendCompactArrayLen(b, len(names))
	for _, n := range names {
		m := cg.subscription[n]
		b = kbin.AppendUuid(b, m.id)
		b = kbin.AppendCompactString(b, n)
		b = kbin.AppendInt32(b, m.partitions)
		b = kbin.AppendCompactArrayLen(b, 0) // PartitionMetadata: racks, unused since 4.0
		b = endValue(b)
	}
	return endValue(b)
}

func memberMetadataValue(m *consumerMember) []byte {
	b := value()
	b = kbin.AppendCompactNullableString(b, m.instanceID)
	b = kbin.AppendCompactNullableString(b, m.rackID)
	b = kbin.AppendCompactString(b, m.clientID)
	b = kbin.AppendCompactString(b, m.clientHost)
	b = kbin.AppendCompactArrayLen(b, len(m.topics))
	for _, t := range m.topics {
		b = kbin.AppendCompactString(b, t)
	}
	b = kbin.AppendCompactNullableString(b, m.regex)
	b = kbin.AppendInt32(b, int32(m.rebalanceTimeout.Milliseconds()))
	var assignor *string
	if m.assignor != "" {
		assignor = &m.assignor
	}
	b = kbin.AppendCompactNullableString(b, assignor)
	return endValue(b)
}

func (c *Coordinator) currentAssignmentValue(cg *consumerGroup, m *consumerMember) []byte {
	b := value()
	b = kbin.AppendInt32(b, m.epoch)
	b = kbin.AppendInt32(b, m.prevEpoch)
	b = kbin.AppendInt8(b, int8(m.state))
	b = c.appendPartitions(b, cg, m.assigned)
	b = c.appendPartitions(b, cg, m.revoking)
	return endValue(b)
}

// storeConsumerGroup writes what changed in g since its last write: the
// group and assignment epochs, the subscription metadata, the records of
// the members given (every member's after a new target assignment: their
// targets changed) and tombstones for members gone. A failed write is
// logged: the state in memory stays ahead of the log, and after a restart
// the members it concerns are fenced and rejoin.
func (c *Coordinator) storeConsumerGroup(g *group, ms ...*consumerMember) {
	cg := g.consumer
	st := &cg.stored
	if st.members == nil {
		st.members = make(map[string]*cgStoredMember)
	}
	var recs []Record
	put := func(last *[]byte, key, v []byte) {
		if !bytes.Equal(*last, v) {
			recs = append(recs, Record{Key: key, Value: v})
			*last = v
		}
	}
	put(&st.subscription, cgKey(cgPartitionMetadataKey, g.id), subscriptionValue(cg))
	put(&st.epoch, cgKey(cgMetadataKey, g.id), int32Value(cg.epoch))
	if !bytes.Equal(st.assignmentEpoch, int32Value(cg.assignmentEpoch)) {
		ms = cg.sortedMembers()
	}
	for _, m := range ms {
		sm := st.members[m.id]
		if sm == nil {
			sm = &cgStoredMember{}
			st.members[m.id] = sm
		}
		put(&sm.metadata, cgKey(cgMemberMetadataKey, g.id, m.id), memberMetadataValue(m))
		put(&sm.target, cgKey(cgTargetMemberKey, g.id, m.id), endValue(c.appendPartitions(value(), cg, cg.target[m.id])))
	}
	put(&st.assignmentEpoch, cgKey(cgTargetMetadataKey, g.id), int32Value(cg.assignmentEpoch))
	for _, m := range ms {
		put(&st.members[m.id].current, cgKey(cgCurrentAssignmentKey, g.id, m.id), c.currentAssignmentValue(cg, m))
	}
	for id := range st.members {
		if cg.members[id] == nil { // gone: tombstones, in Kafka's order
			recs = append(recs, Record{Key: cgKey(cgCurrentAssignmentKey, g.id, id)},
				Record{Key: cgKey(cgTargetMemberKey, g.id, id)}, Record{Key: cgKey(cgMemberMetadataKey, g.id, id)})
			delete(st.members, id)
		}
	}
	if len(recs) == 0 {
		return
	}
	if _, err := c.store.Append(c.PartitionFor(g.id), recs); err != nil {
		c.log.Warn("storing consumer group", "group", g.id, "err", err)
	}
}

// consumerGroupTombstones delete a consumer group without members.
func consumerGroupTombstones(group string) []Record {
	return []Record{
		{Key: cgKey(cgTargetMetadataKey, group)},
		{Key: cgKey(cgPartitionMetadataKey, group)},
		{Key: cgKey(cgMetadataKey, group)},
	}
}

// groupTombstones delete g's metadata, whichever its type.
func (g *group) tombstones() []Record {
	if g.consumer != nil {
		return consumerGroupTombstones(g.id)
	}
	return []Record{{Key: groupKey(g.id)}}
}

// cgLoader rebuilds consumer groups from their records; topics turn the
// stored topic ids back into names (partitions of topics deleted since are
// dropped).
type cgLoader struct {
	topics TopicSource
}

func (l cgLoader) partitions(r *kbin.Reader) tpSet {
	s := tpSet{}
	for range r.CompactArrayLen() {
		id := r.Uuid()
		name, known := l.topics.TopicName(id)
		for range r.CompactArrayLen() {
			p := r.Int32()
			if known {
				s[topicPartition{name, p}] = struct{}{}
			}
		}
		skipTags(r)
	}
	return s
}

// skipTags skips a flexible struct's tagged fields.
func skipTags(r *kbin.Reader) {
	for range r.Uvarint() {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
}

// apply replays one consumer-group record into g.
func (l cgLoader) apply(g *group, version uint16, key *kbin.Reader, val []byte) error {
	var member string
	switch version {
	case cgMemberMetadataKey, cgTargetMemberKey, cgCurrentAssignmentKey:
		member = key.String()
	}
	if err := key.Complete(); err != nil {
		return fmt.Errorf("consumer group record key %d: %w", version, err)
	}
	if val == nil {
		l.tombstone(g, version, member)
		return nil
	}
	if g.consumer == nil {
		g.resetMembership()
		g.consumer, g.protocolType = newConsumerGroup(), "consumer"
	}
	cg := g.consumer
	r := &kbin.Reader{Src: val}
	if v := r.Int16(); v != 0 {
		return fmt.Errorf("consumer group record %d of group %s: value version %d", version, g.id, v)
	}
	m := cg.members[member]
	if member != "" && m == nil {
		m = &consumerMember{id: member, assigned: tpSet{}, revoking: tpSet{}}
		cg.members[member] = m
	}
	switch version {
	case cgMetadataKey:
		cg.epoch = r.Int32()
	case cgPartitionMetadataKey:
		cg.subscription = make(map[string]topicMeta)
		for range r.CompactArrayLen() {
			id, name, n := r.Uuid(), r.CompactString(), r.Int32()
			for range r.CompactArrayLen() { // racks
				r.Int32()
				for range r.CompactArrayLen() {
					r.CompactString()
				}
				skipTags(r)
			}
			skipTags(r)
			cg.subscription[name] = topicMeta{id, n}
		}
	case cgMemberMetadataKey:
		m.instanceID, m.rackID = r.CompactNullableString(), r.CompactNullableString()
		m.clientID, m.clientHost = r.CompactString(), r.CompactString()
		m.topics = nil
		for range r.CompactArrayLen() {
			m.topics = append(m.topics, r.CompactString())
		}
		m.regex, m.re = r.CompactNullableString(), nil
		if m.regex != nil {
			m.re, _ = compileTopicRegex(*m.regex)
		}
		m.rebalanceTimeout = ms(r.Int32())
		m.assignor = ""
		if a := r.CompactNullableString(); a != nil {
			m.assignor = *a
		}
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	case cgTargetMetadataKey:
		cg.assignmentEpoch = r.Int32()
	case cgTargetMemberKey:
		cg.target[member] = l.partitions(r)
	case cgCurrentAssignmentKey:
		m.epoch, m.prevEpoch, m.state = r.Int32(), r.Int32(), memberState(r.Int8())
		m.assigned, m.revoking = l.partitions(r), l.partitions(r)
	}
	skipTags(r)
	if err := r.Complete(); err != nil {
		return fmt.Errorf("consumer group record %d of group %s: %w", version, g.id, err)
	}
	return nil
}

func (l cgLoader) tombstone(g *group, version uint16, member string) {
	cg := g.consumer
	if cg == nil {
		return
	}
	switch version {
	case cgMetadataKey:
		g.consumer, g.protocolType = nil, "" // the group was deleted
	case cgMemberMetadataKey:
		if m := cg.members[member]; m != nil && m.instanceID != nil && cg.static[*m.instanceID] == member {
			delete(cg.static, *m.instanceID)
		}
		delete(cg.members, member)
	case cgTargetMemberKey:
		delete(cg.target, member)
	}
}

// finish makes a replayed consumer group consistent: partition owners,
// state, and what it has already written.
func (l cgLoader) finish(g *group, now time.Time) {
	cg := g.consumer
	for _, m := range cg.members {
		cg.claim(m)
	}
	g.subscribed = make(map[string]bool, len(cg.subscription))
	for t := range cg.subscription {
		g.subscribed[t] = true
	}
	g.state, g.stateSince = stateEmpty, now
	if len(cg.members) > 0 {
		g.state = stateStable
	}
	cg.stored.members = make(map[string]*cgStoredMember)
	for id := range cg.members {
		cg.stored.members[id] = &cgStoredMember{}
	}
}
