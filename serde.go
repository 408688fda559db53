package kafkit

import (
	"encoding/json"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// Serializer turns a key or value of type T into record bytes for topic.
//
// Null handling follows Kafka's serializers: a nil bytes result is a null key
// or value (a tombstone when it is the value), which is what each
// implementation here returns for a nil T; use it to delete a compacted key.
type Serializer[T any] interface {
	Serialize(topic string, v T) ([]byte, error)
}

// Deserializer turns record bytes read from topic into a T. Each
// implementation here returns T's zero value (nil for pointers, maps, slices)
// for nil bytes, Kafka's null, without error.
type Deserializer[T any] interface {
	Deserialize(topic string, b []byte) (T, error)
}

// Serde is a Serializer and Deserializer of the same type, as every
// implementation here is.
type Serde[T any] interface {
	Serializer[T]
	Deserializer[T]
}

// BytesSerde passes bytes through unchanged: nil stays nil (null) and an
// empty slice stays empty, as Kafka's ByteArraySerializer does.
type BytesSerde struct{}

func (BytesSerde) Serialize(_ string, v []byte) ([]byte, error)   { return v, nil }
func (BytesSerde) Deserialize(_ string, b []byte) ([]byte, error) { return b, nil }

// StringSerde encodes strings as their UTF-8 bytes, like Kafka's
// StringSerializer. A Go string cannot be null: "" serializes to empty,
// non-nil bytes, and null (nil) bytes deserialize to "". To produce a null
// key or value, use BytesSerde or a pointer type with JSONSerde.
type StringSerde struct{}

func (StringSerde) Serialize(_ string, v string) ([]byte, error)   { return []byte(v), nil }
func (StringSerde) Deserialize(_ string, b []byte) (string, error) { return string(b), nil }

// JSONSerde encodes T with encoding/json. A nil T (nil pointer, map, slice or
// interface) serializes to null bytes rather than the JSON text "null", and
// null bytes deserialize to T's zero value, so tombstones round-trip as nil.
type JSONSerde[T any] struct{}

func (JSONSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	if isNil(v) {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("kafkit: JSON serialize for topic %q: %w", topic, err)
	}
	return b, nil
}

func (JSONSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("kafkit: JSON deserialize from topic %q: %w", topic, err)
	}
	return v, nil
}

// isNil reports whether v is a nil interface or a nil pointer, map, slice,
// channel or func held in T.
func isNil[T any](v T) bool {
	rv := reflect.ValueOf(any(v))
	if !rv.IsValid() {
		return true
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Chan, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// ProtobufSerde encodes a generated protobuf message type (a pointer such as
// *mypb.Order) in the protobuf binary format. A nil message serializes to null
// bytes and null bytes deserialize to a nil message; empty, non-nil bytes are
// a valid message with every field at its default. There is no schema-registry
// framing: the bytes are the bare message.
type ProtobufSerde[T proto.Message] struct{}

func (ProtobufSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	if isNil(v) {
		return nil, nil
	}
	b, err := proto.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("kafkit: protobuf serialize for topic %q: %w", topic, err)
	}
	if b == nil {
		b = []byte{} // a message with only defaults is not a null
	}
	return b, nil
}

func (ProtobufSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var zero T
	if b == nil {
		return zero, nil
	}
	// A nil pointer of a generated type still knows its message type.
	v, ok := zero.ProtoReflect().New().Interface().(T)
	if !ok {
		return zero, fmt.Errorf("kafkit: protobuf deserialize from topic %q: %T does not create messages of its own type", topic, zero)
	}
	if err := proto.Unmarshal(b, v); err != nil {
		return zero, fmt.Errorf("kafkit: protobuf deserialize from topic %q: %w", topic, err)
	}
	return v, nil
}
