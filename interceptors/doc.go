// Package interceptors holds stock interceptors: OpenTelemetry tracing
// (Tracing) and metrics (Metrics), and slog logging (Logging).
//
// Each type implements producer.Interceptor (OnSend, OnAck) and is meant to
// implement the consumer's interceptor interface too, so one value per
// concern can be handed to both clients. Trace context travels in record
// headers as W3C traceparent/tracestate (see HeaderCarrier): Tracing injects
// it on send, and ExtractContext reads it back on the consuming side.
//
// The package imports neither producer nor consumer: the interfaces belong to
// the clients, and these types satisfy them structurally.
package interceptors
