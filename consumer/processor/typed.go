package processor

import (
	"context"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
)

// Typed adapts a handler of deserialized records to a Handler. A record
// whose key or value fails to deserialize is a Permanent failure (a
// *consumer.DeserializeError): it goes to the dead-letter topic without
// reaching h, since retrying cannot change its bytes.
func Typed[K, V any](key kafkit.Deserializer[K], value kafkit.Deserializer[V], h func(ctx context.Context, r consumer.TypedRecord[K, V]) error) Handler {
	return func(ctx context.Context, r *kafkit.Record) error {
		tr, err := consumer.Deserialize(key, value, r)
		if err != nil {
			return Permanent(err)
		}
		return h(ctx, tr)
	}
}
