//go:build !chronicle_nootel

package tracing

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Setup installs the provider of a Lambda function named service when
// getenv("CHRONICLE_TRACING") is "otlp": X-Ray trace ids, spans exported
// over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4318:
// the ADOT collector layer, which sends them to X-Ray). Anything else
// ("", "off") leaves tracing off and returns a flush that does nothing.
// flush exports what has ended: Lambda freezes the process between
// invocations, so it is called before each answer.
func Setup(ctx context.Context, getenv func(string) string, service string) (flush func(context.Context), err error) {
	switch v := getenv(EnvVar); v {
	case "", "off":
		return func(context.Context) {}, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("%s=%q: want otlp or off", EnvVar, v)
	}
	// The endpoint and its scheme come from OTEL_EXPORTER_OTLP_*; the
	// collector layer listens on plain HTTP in the sandbox.
	opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(2 * time.Second)}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		opts = append(opts, otlptracehttp.WithEndpoint("localhost:4318"), otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(service), semconv.CloudProviderAWS, semconv.CloudPlatformAWSLambda)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithIDGenerator(xray.NewIDGenerator()),
		sdktrace.WithResource(res),
		// Sampling follows the parent (X-Ray's decision, passed in
		// _X_AMZN_TRACE_ID); a root is always sampled.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	Install(tp)
	return func(ctx context.Context) { _ = tp.ForceFlush(ctx) }, nil
}

// instrumentAWS adds otelaws's middleware to cfg.
func instrumentAWS(cfg *aws.Config) { otelaws.AppendMiddlewares(&cfg.APIOptions) }
