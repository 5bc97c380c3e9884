// Command authorizer is the API Gateway TOKEN authorizer: it verifies the
// caller's bearer JWT and hands its sub and roles to the route functions.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "authorizer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := lambdafn.Authorizer(getenv, logger)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	lambda.StartWithOptions(h.Handle, lambda.WithContext(ctx))
	return nil
}
