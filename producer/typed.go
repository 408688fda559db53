package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kafkit/kafkit"
)

// Typed sends records whose keys and values are Go values, turned into bytes
// by its serializers before the record reaches the Producer (and so before
// its interceptors and partitioner, which see the bytes). It is safe for
// concurrent use if its serializers are; several Typed may share one
// Producer, whose Flush and Close still apply.
type Typed[K, V any] struct {
	p     *Producer
	key   kafkit.Serializer[K]
	value kafkit.Serializer[V]
}

// NewTyped returns a Typed sending through p with the given key and value
// serializers.
func NewTyped[K, V any](p *Producer, key kafkit.Serializer[K], value kafkit.Serializer[V]) (*Typed[K, V], error) {
	if p == nil || key == nil || value == nil {
		return nil, errors.New("producer: NewTyped needs a producer and key and value serializers")
	}
	return &Typed[K, V]{p: p, key: key, value: value}, nil
}

// RecordOption sets an optional field of a record a Typed sends.
type RecordOption func(*kafkit.Record)

// WithPartition sends the record to partition p instead of the one the
// partitioner would choose.
func WithPartition(p int32) RecordOption { return func(r *kafkit.Record) { r.Partition = p } }

// WithHeaders appends headers to the record.
func WithHeaders(hs ...kafkit.Header) RecordOption {
	return func(r *kafkit.Record) { r.Headers = append(r.Headers, hs...) }
}

// WithTimestamp sets the record's CreateTime instead of the send time.
func WithTimestamp(ts time.Time) RecordOption { return func(r *kafkit.Record) { r.Timestamp = ts } }

// record serializes key and value into a new record for topic. A serializer's
// error is wrapped with ErrInvalidRecord and stays reachable with errors.Is
// and errors.As.
func (t *Typed[K, V]) record(topic string, key K, value V, opts []RecordOption) (*kafkit.Record, error) {
	k, err := t.key.Serialize(topic, key)
	if err != nil {
		return nil, fmt.Errorf("%w: serializing the key for topic %s: %w", ErrInvalidRecord, topic, err)
	}
	v, err := t.value.Serialize(topic, value)
	if err != nil {
		return nil, fmt.Errorf("%w: serializing the value for topic %s: %w", ErrInvalidRecord, topic, err)
	}
	r := &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Key: k, Value: v}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Send serializes key and value and sends them to topic like Producer.Send:
// it returns without waiting for the broker, and cb (may be nil) runs once
// with the record, its partition, offset and timestamp filled in, or the
// error. A serialization failure is returned at once and cb is not called.
func (t *Typed[K, V]) Send(ctx context.Context, topic string, key K, value V, cb func(*kafkit.Record, error), opts ...RecordOption) error {
	r, err := t.record(topic, key, value, opts)
	if err != nil {
		return err
	}
	return t.p.Send(ctx, r, cb)
}

// SendSync serializes key and value, sends them to topic and waits for the
// acknowledgement like Producer.SendSync. It returns the record it sent
// (nil if serialization failed), with its partition, offset and timestamp
// filled in on success.
func (t *Typed[K, V]) SendSync(ctx context.Context, topic string, key K, value V, opts ...RecordOption) (*kafkit.Record, error) {
	r, err := t.record(topic, key, value, opts)
	if err != nil {
		return nil, err
	}
	return r, t.p.SendSync(ctx, r)
}
