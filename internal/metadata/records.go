package metadata

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Record is one change to the metadata image (see the package doc for the
// encoding of each).
type Record interface {
	Type() uint16
	appendTo(dst []byte) []byte
	readFrom(r *kbin.Reader)
}

// Record types, as KRaft numbers them.
const (
	TypeRegisterBroker   uint16 = 0
	TypeUnregisterBroker uint16 = 1
	TypeTopic            uint16 = 2
	TypePartition        uint16 = 3
	TypeConfig           uint16 = 4
	TypePartitionChange  uint16 = 5
	TypeRemoveTopic      uint16 = 9
	TypeProducerIDs      uint16 = 15
	TypeBrokerChange     uint16 = 17
)

// batchMagic starts every batch, so that a log entry written by something
// else is not read as metadata.
const batchMagic = 0x6b

// NoLeaderChange in PartitionChange.Leader leaves the leader as it is; -1
// (NoLeader) means the partition has none.
const (
	NoLeaderChange int32 = -2
	NoLeader       int32 = -1
)

// ErrUnknownRecord is a record whose type or version this build cannot
// read; ErrCorrupt a batch that does not parse.
var (
	ErrUnknownRecord = errors.New("metadata: unknown record type or version")
	ErrCorrupt       = errors.New("metadata: corrupt record batch")
)

// Endpoint is one listener a broker advertises.
type Endpoint struct {
	Name             string // the listener's name: PLAINTEXT, SASL_SSL, ...
	Host             string
	Port             int32
	SecurityProtocol int16 // Kafka's codes: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL
}

// RegisterBroker records a broker's registration; its epoch is the offset
// of this record in the log, as in KRaft.
type RegisterBroker struct {
	ID          int32
	Incarnation [16]byte
	Epoch       int64
	Rack        string
	Listeners   []Endpoint
	Fenced      bool
}

// UnregisterBroker removes a broker's registration.
type UnregisterBroker struct {
	ID    int32
	Epoch int64
}

// Topic creates a topic.
type Topic struct {
	Name string
	ID   [16]byte
}

// Partition creates a partition, or replaces its whole state.
type Partition struct {
	TopicID                     [16]byte
	Partition                   int32
	Replicas, ISR               []int32
	Adding, Removing            []int32
	Leader                      int32
	LeaderEpoch, PartitionEpoch int32
}

// Config sets (Value non-nil) or deletes a dynamic config of a resource
// (kmsg.ConfigResourceType: 2 topic, 4 broker; an empty broker name is the
// cluster-wide default).
type Config struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        *string
}

// PartitionChange changes some of a partition's state: nil lists and
// NoLeaderChange leave theirs as they are.
type PartitionChange struct {
	TopicID                           [16]byte
	Partition                         int32
	Leader                            int32
	ISR, Replicas, Adding, Removing   []int32
	isrSet, replSet, addSet, removSet bool // a non-nil list, even empty, is a change
}

// RemoveTopic deletes a topic and its partitions.
type RemoveTopic struct{ ID [16]byte }

// ProducerIDs records the next producer id block a broker was given.
type ProducerIDs struct {
	BrokerID       int32
	BrokerEpoch    int64
	NextProducerID int64
}

// BrokerChange fences, unfences or marks the controlled shutdown of a
// broker: nil fields leave theirs as they are.
type BrokerChange struct {
	ID           int32
	Epoch        int64
	Fenced       *bool
	ShuttingDown *bool
}

// SetISR, SetReplicas, SetAdding and SetRemoving mark the lists as changed
// (an empty list is a change, nil is not).
func (c *PartitionChange) SetISR(isr []int32) *PartitionChange {
	c.ISR, c.isrSet = nonNil(isr), true
	return c
}
func (c *PartitionChange) SetReplicas(r []int32) *PartitionChange {
	c.Replicas, c.replSet = nonNil(r), true
	return c
}
func (c *PartitionChange) SetAdding(r []int32) *PartitionChange {
	c.Adding, c.addSet = nonNil(r), true
	return c
}
func (c *PartitionChange) SetRemoving(r []int32) *PartitionChange {
	c.Removing, c.removSet = nonNil(r), true
	return c
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

func (*RegisterBroker) Type() uint16   { return TypeRegisterBroker }
func (*UnregisterBroker) Type() uint16 { return TypeUnregisterBroker }
func (*Topic) Type() uint16            { return TypeTopic }
func (*Partition) Type() uint16        { return TypePartition }
func (*Config) Type() uint16           { return TypeConfig }
func (*PartitionChange) Type() uint16  { return TypePartitionChange }
func (*RemoveTopic) Type() uint16      { return TypeRemoveTopic }
func (*ProducerIDs) Type() uint16      { return TypeProducerIDs }
func (*BrokerChange) Type() uint16     { return TypeBrokerChange }

// newRecord is an empty record of type t at version v, to read into.
func newRecord(t, v uint16) (Record, error) {
	if v != 0 {
		return nil, fmt.Errorf("%w: type %d version %d", ErrUnknownRecord, t, v)
	}
	switch t {
	case TypeRegisterBroker:
		return new(RegisterBroker), nil
	case TypeUnregisterBroker:
		return new(UnregisterBroker), nil
	case TypeTopic:
		return new(Topic), nil
	case TypePartition:
		return new(Partition), nil
	case TypeConfig:
		return new(Config), nil
	case TypePartitionChange:
		return new(PartitionChange), nil
	case TypeRemoveTopic:
		return new(RemoveTopic), nil
	case TypeProducerIDs:
		return new(ProducerIDs), nil
	case TypeBrokerChange:
		return new(BrokerChange), nil
	case TypeFeatureLevel:
		return new(FeatureLevel), nil
	}
	if r := newSecurityRecord(t); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("%w: type %d", ErrUnknownRecord, t)
}

// EncodeBatch encodes records as one batch (a Raft log entry).
func EncodeBatch(records ...Record) []byte {
	dst := append([]byte{batchMagic}, kbin.AppendUvarint(nil, uint32(len(records)))...)
	for _, r := range records {
		dst = kbin.AppendUvarint(dst, uint32(r.Type()))
		dst = kbin.AppendUvarint(dst, 0)
		dst = r.appendTo(dst)
	}
	return dst
}

// DecodeBatch decodes a batch. It returns the records before a record it
// cannot read, and the error.
func DecodeBatch(b []byte) ([]Record, error) {
	if len(b) == 0 || b[0] != batchMagic {
		return nil, fmt.Errorf("%w: no batch magic", ErrCorrupt)
	}
	r := &kbin.Reader{Src: b[1:]}
	n := r.Uvarint()
	if r.Complete() != nil || int(n) > len(b) {
		return nil, fmt.Errorf("%w: bad record count", ErrCorrupt)
	}
	out := make([]Record, 0, n)
	for range n {
		t, v := r.Uvarint(), r.Uvarint()
		if r.Complete() != nil || t > 0xffff || v > 0xffff {
			return out, fmt.Errorf("%w: truncated record header", ErrCorrupt)
		}
		rec, err := newRecord(uint16(t), uint16(v))
		if err != nil {
			return out, err
		}
		rec.readFrom(r)
		if r.Complete() != nil {
			return out, fmt.Errorf("%w: truncated type %d record", ErrCorrupt, t)
		}
		out = append(out, rec)
	}
	if len(r.Src) != 0 {
		return out, fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(r.Src))
	}
	return out, nil
}

// invalidate marks r as failed (a count larger than its input), so that
// Complete reports it.
func invalidate(r *kbin.Reader) { r.Span(-1) }

// Array helpers: a uvarint count then the elements; nullable arrays count
// n+1, with 0 for null.

func appendInt32s(dst []byte, s []int32) []byte {
	dst = kbin.AppendUvarint(dst, uint32(len(s)))
	for _, v := range s {
		dst = kbin.AppendInt32(dst, v)
	}
	return dst
}

func readInt32s(r *kbin.Reader) []int32 {
	n := r.Uvarint()
	if int(n) > len(r.Src)/4 {
		invalidate(r)
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = r.Int32()
	}
	return out
}

func appendNullableInt32s(dst []byte, s []int32, set bool) []byte {
	if !set {
		return kbin.AppendUvarint(dst, 0)
	}
	dst = kbin.AppendUvarint(dst, uint32(len(s))+1)
	for _, v := range s {
		dst = kbin.AppendInt32(dst, v)
	}
	return dst
}

func readNullableInt32s(r *kbin.Reader) ([]int32, bool) {
	n := r.Uvarint()
	if n == 0 {
		return nil, false
	}
	if int(n-1) > len(r.Src)/4 {
		invalidate(r)
		return nil, false
	}
	out := make([]int32, n-1)
	for i := range out {
		out[i] = r.Int32()
	}
	return out, true
}

func appendNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return kbin.AppendUvarint(dst, 0)
	}
	dst = kbin.AppendUvarint(dst, uint32(len(*s))+1)
	return append(dst, *s...)
}

func readNullableString(r *kbin.Reader) *string {
	n := r.Uvarint()
	if n == 0 {
		return nil
	}
	s := string(r.Span(int(n - 1)))
	return &s
}

func appendString(dst []byte, s string) []byte {
	dst = kbin.AppendUvarint(dst, uint32(len(s)))
	return append(dst, s...)
}

func readString(r *kbin.Reader) string { return string(r.Span(int(r.Uvarint()))) }

func appendTristate(dst []byte, b *bool) []byte {
	switch {
	case b == nil:
		return kbin.AppendInt8(dst, -1)
	case *b:
		return kbin.AppendInt8(dst, 1)
	}
	return kbin.AppendInt8(dst, 0)
}

func readTristate(r *kbin.Reader) *bool {
	switch r.Int8() {
	case 0:
		return new(bool)
	case 1:
		t := true
		return &t
	}
	return nil
}

func (x *RegisterBroker) appendTo(dst []byte) []byte {
	dst = kbin.AppendInt32(dst, x.ID)
	dst = kbin.AppendUuid(dst, x.Incarnation)
	dst = kbin.AppendInt64(dst, x.Epoch)
	dst = appendString(dst, x.Rack)
	dst = kbin.AppendUvarint(dst, uint32(len(x.Listeners)))
	for _, l := range x.Listeners {
		dst = appendString(dst, l.Name)
		dst = appendString(dst, l.Host)
		dst = kbin.AppendInt32(dst, l.Port)
		dst = kbin.AppendInt16(dst, l.SecurityProtocol)
	}
	return kbin.AppendBool(dst, x.Fenced)
}

func (x *RegisterBroker) readFrom(r *kbin.Reader) {
	x.ID, x.Incarnation, x.Epoch, x.Rack = r.Int32(), r.Uuid(), r.Int64(), readString(r)
	n := r.Uvarint()
	if int(n) > len(r.Src) {
		invalidate(r)
		return
	}
	x.Listeners = make([]Endpoint, n)
	for i := range x.Listeners {
		x.Listeners[i] = Endpoint{Name: readString(r), Host: readString(r), Port: r.Int32(), SecurityProtocol: r.Int16()}
	}
	x.Fenced = r.Bool()
}

func (x *UnregisterBroker) appendTo(dst []byte) []byte {
	return kbin.AppendInt64(kbin.AppendInt32(dst, x.ID), x.Epoch)
}
func (x *UnregisterBroker) readFrom(r *kbin.Reader) { x.ID, x.Epoch = r.Int32(), r.Int64() }

func (x *Topic) appendTo(dst []byte) []byte { return kbin.AppendUuid(appendString(dst, x.Name), x.ID) }
func (x *Topic) readFrom(r *kbin.Reader)    { x.Name, x.ID = readString(r), r.Uuid() }

func (x *Partition) appendTo(dst []byte) []byte {
	dst = kbin.AppendUuid(dst, x.TopicID)
	dst = kbin.AppendInt32(dst, x.Partition)
	dst = appendInt32s(dst, x.Replicas)
	dst = appendInt32s(dst, x.ISR)
	dst = appendInt32s(dst, x.Adding)
	dst = appendInt32s(dst, x.Removing)
	dst = kbin.AppendInt32(dst, x.Leader)
	dst = kbin.AppendInt32(dst, x.LeaderEpoch)
	return kbin.AppendInt32(dst, x.PartitionEpoch)
}

func (x *Partition) readFrom(r *kbin.Reader) {
	x.TopicID, x.Partition = r.Uuid(), r.Int32()
	x.Replicas, x.ISR, x.Adding, x.Removing = readInt32s(r), readInt32s(r), readInt32s(r), readInt32s(r)
	x.Leader, x.LeaderEpoch, x.PartitionEpoch = r.Int32(), r.Int32(), r.Int32()
}

func (x *Config) appendTo(dst []byte) []byte {
	dst = kbin.AppendInt8(dst, x.ResourceType)
	dst = appendString(dst, x.ResourceName)
	dst = appendString(dst, x.Name)
	return appendNullableString(dst, x.Value)
}

func (x *Config) readFrom(r *kbin.Reader) {
	x.ResourceType, x.ResourceName, x.Name, x.Value = r.Int8(), readString(r), readString(r), readNullableString(r)
}

func (x *PartitionChange) appendTo(dst []byte) []byte {
	dst = kbin.AppendUuid(dst, x.TopicID)
	dst = kbin.AppendInt32(dst, x.Partition)
	dst = kbin.AppendInt32(dst, x.Leader)
	dst = appendNullableInt32s(dst, x.ISR, x.isrSet)
	dst = appendNullableInt32s(dst, x.Replicas, x.replSet)
	dst = appendNullableInt32s(dst, x.Adding, x.addSet)
	return appendNullableInt32s(dst, x.Removing, x.removSet)
}

func (x *PartitionChange) readFrom(r *kbin.Reader) {
	x.TopicID, x.Partition, x.Leader = r.Uuid(), r.Int32(), r.Int32()
	x.ISR, x.isrSet = readNullableInt32s(r)
	x.Replicas, x.replSet = readNullableInt32s(r)
	x.Adding, x.addSet = readNullableInt32s(r)
	x.Removing, x.removSet = readNullableInt32s(r)
}

func (x *RemoveTopic) appendTo(dst []byte) []byte { return kbin.AppendUuid(dst, x.ID) }
func (x *RemoveTopic) readFrom(r *kbin.Reader)    { x.ID = r.Uuid() }

func (x *ProducerIDs) appendTo(dst []byte) []byte {
	return kbin.AppendInt64(kbin.AppendInt64(kbin.AppendInt32(dst, x.BrokerID), x.BrokerEpoch), x.NextProducerID)
}
func (x *ProducerIDs) readFrom(r *kbin.Reader) {
	x.BrokerID, x.BrokerEpoch, x.NextProducerID = r.Int32(), r.Int64(), r.Int64()
}

func (x *BrokerChange) appendTo(dst []byte) []byte {
	dst = kbin.AppendInt64(kbin.AppendInt32(dst, x.ID), x.Epoch)
	return appendTristate(appendTristate(dst, x.Fenced), x.ShuttingDown)
}
func (x *BrokerChange) readFrom(r *kbin.Reader) {
	x.ID, x.Epoch, x.Fenced, x.ShuttingDown = r.Int32(), r.Int64(), readTristate(r), readTristate(r)
}
