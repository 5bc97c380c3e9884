// Command relay is the Lambda function on the events table's stream: it
// forwards each new event to the FIFO queues of its subscribers.
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
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := lambdafn.Relay(awsCfg, getenv, logger)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	lambda.StartWithOptions(h.Handle, lambda.WithContext(ctx))
	return nil
}
