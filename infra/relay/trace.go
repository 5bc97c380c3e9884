package relay

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// recordSpan is the relay's span of one event: a child of the command
// that appended it (the traceparent in its metadata), whatever else the
// batch holds. Its context goes to the consumers in the messages'
// traceparent attribute.
type recordSpan struct {
	ctx   context.Context
	span  trace.Span
	index int
	attrs map[string]types.MessageAttributeValue
}

// startRecordSpan starts rec's span; nil with tracing off.
func startRecordSpan(ctx context.Context, rec es.Record, index int) *recordSpan {
	if !tracing.Enabled() {
		return nil
	}
	ctx, span := tracing.StartFollowing(ctx, "relay "+rec.Type, []trace.SpanContext{tracing.Remote(rec.Metadata.TraceParent)},
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.EventID.String(rec.ID), tracing.EventType.String(rec.Type),
			tracing.AggregateID.String(rec.AggregateID), tracing.Version.Int64(rec.Version)))
	s := &recordSpan{ctx: ctx, span: span, index: index}
	if tp := tracing.TraceParent(ctx); tp != "" {
		s.attrs = map[string]types.MessageAttributeValue{
			tracing.MessageAttribute: {DataType: aws.String("String"), StringValue: aws.String(tp)},
		}
	}
	return s
}

// attributes are the message attributes of an entry: the trace context.
func (s *recordSpan) attributes() map[string]types.MessageAttributeValue {
	if s == nil {
		return nil
	}
	return s.attrs
}

// sendContext is the context of one SendMessageBatch call: within the
// record's span when every entry belongs to one trace (the call then shows
// in the request's tree), the batch's otherwise.
func sendContext(ctx context.Context, batch []message) context.Context {
	if len(batch) == 0 || batch[0].span == nil {
		return ctx
	}
	id := trace.SpanContextFromContext(batch[0].span.ctx).TraceID()
	for _, m := range batch[1:] {
		if m.span == nil || trace.SpanContextFromContext(m.span.ctx).TraceID() != id {
			return ctx
		}
	}
	return batch[0].span.ctx
}

// endRecordSpans ends the spans of a batch whose records from first on
// failed (Lambda sends them again).
func endRecordSpans(spans []*recordSpan, first int) {
	for _, s := range spans {
		if s.index >= first {
			s.span.SetStatus(codes.Error, "not relayed: sent again with the batch's retry")
		}
		s.span.End()
	}
}
