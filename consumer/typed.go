package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/kafkit/kafkit"
)

// TypedRecord is a consumed record with its key and value deserialized.
type TypedRecord[K, V any] struct {
	Key   K
	Value V
	// Record is the record as consumed: topic, partition, offset,
	// headers, timestamp, and the key and value bytes.
	Record *kafkit.Record
}

// DeserializeError reports a record whose key or value its deserializer
// rejected (Java's RecordDeserializationException).
type DeserializeError struct {
	Record *kafkit.Record
	IsKey  bool // the key failed, else the value
	Err    error
}

func (e *DeserializeError) Error() string {
	what := "value"
	if e.IsKey {
		what = "key"
	}
	return fmt.Sprintf("kafkit consumer: deserializing the %s of %s[%d]@%d: %v", what, e.Record.Topic, e.Record.Partition, e.Record.Offset, e.Err)
}

func (e *DeserializeError) Unwrap() error { return e.Err }

// Typed polls a Consumer and deserializes keys and values into Go values.
// Like the Consumer's Poll, its Poll is called from one goroutine; commits,
// seeks and Close go through the Consumer.
type Typed[K, V any] struct {
	c     *Consumer
	key   kafkit.Deserializer[K]
	value kafkit.Deserializer[V]
}

// NewTyped returns a Typed reading from c with the given deserializers.
func NewTyped[K, V any](c *Consumer, key kafkit.Deserializer[K], value kafkit.Deserializer[V]) (*Typed[K, V], error) {
	if c == nil || key == nil || value == nil {
		return nil, errors.New("kafkit consumer: NewTyped needs a consumer and key and value deserializers")
	}
	return &Typed[K, V]{c: c, key: key, value: value}, nil
}

// Poll polls the consumer (see Consumer.Poll) and deserializes what it
// returned. A record that fails to deserialize is left out of the result and
// reported as a *DeserializeError in the returned error (errors.Join of one
// per record), alongside the records that did deserialize. Unlike Java,
// which stops at the bad record until the application seeks past it, the
// position has already moved on: the caller decides whether to log the
// record, dead-letter it (the error holds it) or stop.
func (t *Typed[K, V]) Poll(ctx context.Context) ([]TypedRecord[K, V], error) {
	records, err := t.c.Poll(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TypedRecord[K, V], 0, len(records))
	var errs []error
	for _, r := range records {
		tr, err := Deserialize(t.key, t.value, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, tr)
	}
	return out, errors.Join(errs...)
}

// Deserialize turns one record into a TypedRecord; a failure is a
// *DeserializeError.
func Deserialize[K, V any](key kafkit.Deserializer[K], value kafkit.Deserializer[V], r *kafkit.Record) (TypedRecord[K, V], error) {
	tr := TypedRecord[K, V]{Record: r}
	var err error
	if tr.Key, err = key.Deserialize(r.Topic, r.Key); err != nil {
		return tr, &DeserializeError{Record: r, IsKey: true, Err: err}
	}
	if tr.Value, err = value.Deserialize(r.Topic, r.Value); err != nil {
		return tr, &DeserializeError{Record: r, Err: err}
	}
	return tr, nil
}
