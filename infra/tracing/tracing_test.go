package tracing_test

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/infra/tracing"
)

func TestOffDoesNothing(t *testing.T) {
	// Runs first, before any Install in this process.
	if tracing.Enabled() {
		t.Skip("a provider is installed already")
	}
	ctx, span := tracing.Start(t.Context(), "x")
	if span.IsRecording() || ctx != t.Context() {
		t.Fatal("Start with tracing off made a span or a new context")
	}
	if tp := tracing.TraceParent(ctx); tp != "" {
		t.Fatalf("TraceParent off = %q", tp)
	}
}

// TestConsumersJoinTheirTraces: a consumer span is the child of the one
// trace its inputs carry, and links the traces of a batch that serves
// several, staying in the invocation's own trace.
func TestConsumersJoinTheirTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	ctx := t.Context()
	for _, bad := range []string{"", "garbage", "00-zz-yy-01", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		if tracing.Remote(bad).IsValid() {
			t.Errorf("Remote(%q) is valid", bad)
		}
	}

	cmdCtx, cmd := tracing.Start(ctx, "command")
	tp := tracing.TraceParent(cmdCtx)
	cmd.End()
	if got := tracing.Remote(tp); got.TraceID() != cmd.SpanContext().TraceID() || got.SpanID() != cmd.SpanContext().SpanID() {
		t.Fatalf("Remote(TraceParent) = %v, want the command's span", got)
	}
	_, other := tracing.Start(ctx, "other request")
	other.End()
	otherTP := tracing.TraceParent(trace.ContextWithSpan(ctx, other))

	invCtx, inv := tracing.Start(ctx, "invocation")
	msg := func(tp string) events.SQSMessage {
		v := tp
		return events.SQSMessage{MessageId: "m-" + tp[:8], MessageAttributes: map[string]events.SQSMessageAttribute{
			tracing.MessageAttribute: {StringValue: &v, DataType: "String"}}}
	}
	msgs := []events.SQSMessage{msg(tp), msg(tp), msg(otherTP)}

	_, one := tracing.StartMessages(invCtx, "one trace", msgs, []int{0, 1})
	one.End()
	_, many := tracing.StartMessages(invCtx, "two traces", msgs, []int{0, 2})
	many.End()
	inv.End()

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	if p := spans["one trace"].Parent(); p.SpanID() != cmd.SpanContext().SpanID() || p.TraceID() != cmd.SpanContext().TraceID() {
		t.Errorf("one trace: parent %v, want the command %v", p, cmd.SpanContext())
	}
	if n := len(spans["one trace"].Links()); n != 0 {
		t.Errorf("one trace: %d links, want none", n)
	}
	m := spans["two traces"]
	if m.Parent().SpanID() != inv.SpanContext().SpanID() {
		t.Errorf("two traces: parent %v, want the invocation", m.Parent())
	}
	var linked []trace.TraceID
	for _, l := range m.Links() {
		linked = append(linked, l.SpanContext.TraceID())
	}
	if len(linked) != 2 || linked[0] != cmd.SpanContext().TraceID() || linked[1] != other.SpanContext().TraceID() {
		t.Errorf("two traces: links to %v, want the command's and the other request's traces", linked)
	}
}
