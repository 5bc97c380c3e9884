// Command commands is the Lambda function behind the command routes of the
// API (the write side): it runs user commands against the DynamoDB event store.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "commands:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := lambdafn.Commands(awsCfg, getenv, logger)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	lambda.StartWithOptions(h.Handle, lambda.WithContext(ctx))
	return nil
}
