package lambdafn

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/propagators/aws/xray"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// BenchmarkTracingCommandLatency is make bench's tracing group: the p50
// of a create through the commands function's handler, with tracing off
// (no provider: what a function without EnableTracing runs) and on (the
// SDK with X-Ray ids, a batch processor flushed after each invocation as
// in Lambda, otelaws on the DynamoDB client, the invocation and command
// spans), in blocks of 10 interleaved, against DynamoDB Local. The
// exporter discards: the OTLP export to the collector layer, a local
// HTTP call in Lambda, is not in the figure.
func BenchmarkTracingCommandLatency(b *testing.B) {
	cfg := awstest.Config(b)
	ctx := b.Context()
	tables := dynamo.Tables{Events: awstest.TableName("trace-events"), Guards: awstest.TableName("trace-guards"),
		Snapshots: awstest.TableName("trace-snapshots")}
	ddb := dynamodb.NewFromConfig(cfg)
	if err := dynamo.CreateTables(ctx, ddb, tables); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dynamo.DeleteTables(context.WithoutCancel(ctx), ddb, tables) })
	getenv := env(map[string]string{"EVENTS_TABLE": tables.Events, "GUARDS_TABLE": tables.Guards, "SNAPSHOTS_TABLE": tables.Snapshots})
	logger := slog.New(slog.DiscardHandler)

	// The handlers write their EMF metric lines to the stdout they are
	// built with, where go test writes the benchmark's result: away with
	// them.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = stdout; devnull.Close() }()

	off, err := Commands(cfg, getenv, logger) // before any provider: no otelaws
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithIDGenerator(xray.NewIDGenerator()))
	tracing.Install(tp)
	b.Cleanup(func() { tracing.SetEnabled(false) })
	onCmds, err := Commands(cfg, getenv, logger)
	if err != nil {
		b.Fatal(err)
	}
	on := tracedHandler{name: "commands", inner: lambda.NewHandler(onCmds.Handle), flush: func(ctx context.Context) { _ = tp.ForceFlush(ctx) }}
	offH := lambda.NewHandler(off.Handle)

	const perMode, block = 200, 10
	var lat [2][]time.Duration // off, on
	invoke := func(mode int) {
		payload := createEvent(b)
		tracing.SetEnabled(mode == 1)
		h := offH
		if mode == 1 {
			h = on
		}
		start := time.Now()
		out, err := h.Invoke(ctx, payload)
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 201 {
			b.Fatalf("create: %d %s %v", resp.StatusCode, resp.Body, err)
		}
		lat[mode] = append(lat[mode], d)
	}
	for range 10 { // warm both: connections, caches
		invoke(0)
		invoke(1)
	}
	lat = [2][]time.Duration{}
	b.ResetTimer()
	for range b.N {
		for i := 0; i < perMode/block; i++ {
			first := i % 2 // alternate which mode goes first
			for _, mode := range []int{first, 1 - first} {
				for range block {
					invoke(mode)
				}
			}
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2]) / float64(time.Millisecond)
	}
	offP, onP := p50(lat[0]), p50(lat[1])
	b.ReportMetric(offP, "off-p50-ms")
	b.ReportMetric(onP, "on-p50-ms")
	b.ReportMetric(onP/offP, "ratio")
	b.ReportMetric(0, "ns/op")
}

// createEvent is API Gateway's proxy event of POST /users by an admin.
func createEvent(tb testing.TB) []byte {
	id := uuid.NewString()
	body := fmt.Sprintf(`{"name":"Bench %s","email":"bench-%s@example.com"}`, id[:8], id)
	ev := events.APIGatewayProxyRequest{
		Resource: "/users", Path: "/users", HTTPMethod: "POST",
		Headers: map[string]string{"Content-Type": "application/json", "X-Request-Id": id},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: id, ResourcePath: "/users", HTTPMethod: "POST", Stage: "dev",
			Authorizer: auth.Principal{Sub: "bench", Roles: []string{auth.RoleAdmin}}.AuthorizerContext(),
		},
		Body: body,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
