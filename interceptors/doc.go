// Package interceptors holds stock interceptors: OpenTelemetry tracing
// (Tracing) and metrics (Metrics), and slog logging (Logging).
//
// Each type implements producer.Interceptor (OnSend, OnAck) and
// consumer.Interceptor (OnConsume, OnCommit; consumer_*.go), so one value per
// concern can be handed to both clients. Tracing also starts "process"
// spans for handlers (StartProcess, used by consumer/processor), and
// Metrics reports consumer lag through ObserveLag. Trace context travels in record
// headers as W3C traceparent/tracestate (see HeaderCarrier): Tracing injects
// it on send, and ExtractContext reads it back on the consuming side.
//
// The package imports neither producer nor consumer: the interfaces belong to
// the clients, and these types satisfy them structurally.
package interceptors
