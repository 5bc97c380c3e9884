package tracing

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Attributes the service sets on its spans. RequestID is the API's
// X-Request-Id (the events' correlation id): the key a trace is found by,
// indexed in X-Ray as an annotation.
const (
	RequestID   = attribute.Key("request_id")
	EventID     = attribute.Key("chronicle.event_id")
	EventType   = attribute.Key("chronicle.event_type")
	AggregateID = attribute.Key("chronicle.aggregate_id")
	Version     = attribute.Key("chronicle.version")
	Function    = attribute.Key("faas.name")
	// xrayAnnotations names the attributes the ADOT collector's X-Ray
	// exporter turns into annotations (searchable) rather than metadata.
	xrayAnnotations = attribute.Key("aws.xray.annotations")
)

// MessageAttribute is the SQS message attribute that carries the trace
// context of the relay's span to the consumers.
const MessageAttribute = "traceparent"

// scope is the instrumentation scope of the service's own spans.
const scope = "github.com/chronicle-go/chronicle"

var enabled atomic.Bool

// Enabled says whether a provider is installed: without one every helper
// does nothing.
func Enabled() bool { return enabled.Load() }

// Install makes tp the global tracer provider, with the W3C and X-Ray
// propagators, and switches the helpers on.
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, xray.Propagator{}))
	enabled.Store(true)
}

// Tracer is the service's tracer, from the global provider.
func Tracer() trace.Tracer { return otel.Tracer(scope) }

// InstrumentAWS adds the otelaws middleware (a client span per AWS call,
// retries inside it) to cfg's clients when tracing is on.
func InstrumentAWS(cfg *aws.Config) {
	if !Enabled() {
		return
	}
	// A copy: cfg may share its options' array with other functions' configs.
	cfg.APIOptions = slices.Clone(cfg.APIOptions)
	instrumentAWS(cfg)
}

// TraceParent is the W3C traceparent of ctx's span, "" when there is none
// or tracing is off: what the command writes into its events' metadata.
func TraceParent(ctx context.Context) string {
	if !Enabled() {
		return ""
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// Remote is the span context a W3C traceparent ("00-<trace id>-<span
// id>-<flags>", as TraceParent writes it) names; invalid when tp is empty
// or malformed.
func Remote(tp string) trace.SpanContext {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[3]) != 2 {
		return trace.SpanContext{}
	}
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil {
		return trace.SpanContext{}
	}
	var flags trace.TraceFlags
	if parts[3] == "01" {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}

// Annotate sets the request id on span, searchable in X-Ray.
func Annotate(span trace.Span, requestID string) {
	if requestID == "" || !span.IsRecording() {
		return
	}
	span.SetAttributes(RequestID.String(requestID), xrayAnnotations.StringSlice([]string{string(RequestID)}))
}

// StartFollowing starts a span for work that serves the traces of parents
// (the contexts its inputs carry, invalid ones ignored): a child of the
// one trace they share, or, when they name several, a child of ctx's span
// with a link to each. With no valid parent it is a child of ctx's span.
// Off, it returns ctx and a no-op span.
func StartFollowing(ctx context.Context, name string, parents []trace.SpanContext, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noop
	}
	var valid []trace.SpanContext
	for _, p := range parents {
		if p.IsValid() {
			valid = append(valid, p)
		}
	}
	one := len(valid) > 0
	for _, p := range valid[min(1, len(valid)):] {
		if p.TraceID() != valid[0].TraceID() {
			one = false
		}
	}
	// The span runs in the function of ctx, whatever trace it joins.
	if fn, ok := ctx.Value(functionKey{}).(string); ok {
		opts = append(opts, trace.WithAttributes(Function.String(fn)))
	}
	parent := ctx
	if one {
		parent = trace.ContextWithRemoteSpanContext(ctx, valid[0])
	} else {
		for _, p := range valid {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: p}))
		}
	}
	return Tracer().Start(parent, name, opts...)
}

// EnvVar switches a function's tracing: "otlp" or "off" (see Setup).
const EnvVar = "CHRONICLE_TRACING"

// InvocationID is the Lambda request id of an invocation span.
const InvocationID = attribute.Key("faas.invocation_id")

// noop is the span of every helper while tracing is off.
var noop trace.Span = tracenoop.Span{}

// Start starts a span of the service's tracer, a child of ctx's span; off,
// it returns ctx and a no-op span without touching the global provider.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noop
	}
	return Tracer().Start(ctx, name, opts...)
}

type functionKey struct{}

// WithFunction records in ctx the function an invocation runs: the spans
// StartFollowing starts, which may join another trace, name it.
func WithFunction(ctx context.Context, name string) context.Context {
	if !Enabled() {
		return ctx
	}
	return context.WithValue(ctx, functionKey{}, name)
}

// SetEnabled switches the helpers off or back on, the installed provider
// left as it is: make bench compares a command with tracing on and off
// in one process, interleaved.
func SetEnabled(on bool) { enabled.Store(on) }
