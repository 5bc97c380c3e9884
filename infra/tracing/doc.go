// Package tracing ties the pieces of one request together with
// OpenTelemetry: the API call, its command and DynamoDB calls, and, across
// the stream and the queues, the relay, the projector and the notifier.
//
// The trace context travels where the work goes: in the event's metadata
// (es.Metadata.TraceParent, a W3C traceparent written by the command) and
// in each queue message's "traceparent" attribute (written by the relay).
// A consumer's span is a child of the context its input carries when the
// input serves one trace, and a span with links to each when it serves
// several (a batch).
//
// Tracing is off unless a provider is installed: in Lambda by Setup when
// CHRONICLE_TRACING=otlp (the template sets it behind EnableTracing), in
// the local runner by its collector (Install). Off, the helpers return at
// once and no SDK middleware is added to the AWS clients.
package tracing
