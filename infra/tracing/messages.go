package tracing

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// MessageIDs are the SQS message ids a consumer span handles.
const MessageIDs = attribute.Key("messaging.message.ids")

// StartMessages starts a consumer's span over the messages of msgs at
// indexes idx (one message, or one aggregate's run): a child of the
// relay's span their traceparent attribute names when they share one
// trace, linked to each otherwise (see StartFollowing).
func StartMessages(ctx context.Context, name string, msgs []events.SQSMessage, idx []int) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noop
	}
	parents := make([]trace.SpanContext, 0, len(idx))
	ids := make([]string, 0, len(idx))
	for _, i := range idx {
		ids = append(ids, msgs[i].MessageId)
		if a, ok := msgs[i].MessageAttributes[MessageAttribute]; ok && a.StringValue != nil {
			parents = append(parents, Remote(*a.StringValue))
		}
	}
	return StartFollowing(ctx, name, parents, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(MessageIDs.StringSlice(ids)))
}

// End ends span, marked failed with err when there is one.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
