package lambdafn

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/chronicle-go/chronicle/infra/tracing"
)

// Builder builds a function's handler and returns its Handle method.
type Builder func(cfg aws.Config, getenv Getenv, logger *slog.Logger) (any, error)

// Start is a function's main: it loads the default AWS configuration,
// makes a JSON logger on stdout, builds the handler once with the process
// environment and serves invocations until the runtime stops the process.
// A failed build is printed and exits 1, which Lambda reports as an init
// error.
func Start(name string, build Builder) { run(name, loadAWS, build) }

// StartWithoutAWS is Start for a function that calls no AWS service (the
// authorizer): build gets a zero aws.Config, and the binary does not link
// the AWS configuration loader (about 1 MiB).
func StartWithoutAWS(name string, build Builder) { run(name, nil, build) }

// loadAWS loads the default AWS configuration.
func loadAWS(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	return cfg, nil
}

func run(name string, load func(context.Context) (aws.Config, error), build Builder) {
	if err := start(context.Background(), load, build); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func start(ctx context.Context, load func(context.Context) (aws.Config, error), build Builder) error {
	var cfg aws.Config
	if load != nil {
		var err error
		if cfg, err = load(ctx); err != nil {
			return err
		}
	}
	// Tracing first: the handler's AWS clients are instrumented only when
	// it is on (see infra/tracing).
	name := os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	flush, err := tracing.Setup(ctx, os.Getenv, name)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	h, err := build(cfg, os.Getenv, slog.New(slog.NewJSONHandler(os.Stdout, nil)))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if tracing.Enabled() {
		h = tracedHandler{name: name, inner: lambda.NewHandler(h), flush: flush}
	}
	lambda.StartWithOptions(h, lambda.WithContext(ctx))
	return nil
}
