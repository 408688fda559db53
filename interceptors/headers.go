package interceptors

import (
	"context"
	"errors"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// HeaderCarrier adapts record headers to an OpenTelemetry
// propagation.TextMapCarrier: (*HeaderCarrier)(&r.Headers).
type HeaderCarrier []kafkit.Header

var _ propagation.TextMapCarrier = (*HeaderCarrier)(nil)

// Get returns the value of the last header named key, or "". Kafka allows
// repeated header keys; the last one is the most recently added.
func (c *HeaderCarrier) Get(key string) string {
	hs := *c
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value)
		}
	}
	return ""
}

// Set replaces every header named key with one holding value, so a record
// sent again (or a consumed record forwarded) carries one traceparent, not
// two. It builds a new slice: the old one may share its backing array with
// other records' headers.
func (c *HeaderCarrier) Set(key, value string) {
	hs := make([]kafkit.Header, 0, len(*c)+1)
	for _, h := range *c {
		if h.Key != key {
			hs = append(hs, h)
		}
	}
	*c = append(hs, kafkit.Header{Key: key, Value: []byte(value)})
}

// Keys returns the header keys in order, repeats included.
func (c *HeaderCarrier) Keys() []string {
	keys := make([]string, len(*c))
	for i, h := range *c {
		keys[i] = h.Key
	}
	return keys
}

// defaultPropagator is what Tracing injects with unless configured otherwise,
// and what ExtractContext reads: W3C trace context and baggage.
func defaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// ExtractContext returns ctx carrying the remote span context (and baggage)
// found in a consumed record's headers, so a consumer's span continues the
// producer's trace. Headers without trace context leave ctx as it was.
func ExtractContext(ctx context.Context, headers []kafkit.Header) context.Context {
	c := HeaderCarrier(headers)
	return defaultPropagator().Extract(ctx, &c)
}

// errorType is the error.type attribute for a failed record: the Kafka error
// name as kerr spells it (NOT_LEADER_FOR_PARTITION, ...) when the broker gave one, otherwise the
// Go type name as the semantic conventions recommend.
func errorType(err error) attribute.KeyValue {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return semconv.ErrorTypeKey.String(ke.Message)
	}
	return semconv.ErrorType(err)
}
