// Command queries is the Lambda function behind the query routes of the API
// (the read side): the read model, and the event store for history, time
// travel and read-your-writes.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.Start("queries", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Queries(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
