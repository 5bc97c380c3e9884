// Command commands is the Lambda function behind the command routes of the
// API (the write side): it runs user commands against the DynamoDB event store.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.Start("commands", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Commands(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
