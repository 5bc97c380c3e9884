package lambdafn

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/infra/tracing"
)

// tracedHandler is a function's handler in a span of its own, the child
// of Lambda's segment (the X-Ray header of the invocation), flushed before
// the answer: Lambda may freeze the process as soon as it has it. The
// aws-lambda-go instrumentation of OpenTelemetry contrib does this too,
// but its module is not served to this project.
type tracedHandler struct {
	name  string
	inner lambda.Handler
	flush func(context.Context)
}

func (h tracedHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	header, _ := ctx.Value("x-amzn-trace-id").(string)
	if header == "" {
		header = os.Getenv("_X_AMZN_TRACE_ID")
	}
	parent := xray.Propagator{}.Extract(ctx, propagation.MapCarrier{"x-amzn-trace-id": header})
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(tracing.Function.String(h.name))}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		opts = append(opts, trace.WithAttributes(tracing.InvocationID.String(lc.AwsRequestID)))
	}
	ctx, span := tracing.Tracer().Start(tracing.WithFunction(parent, h.name), h.name, opts...)
	b, err := h.inner.Invoke(ctx, payload)
	if err != nil {
		span.RecordError(err)
	}
	span.End()
	h.flush(ctx)
	return b, err
}
