// Command projector is the Lambda function on the projections queue: it
// applies each event to the read models.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.Start("projector", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Projector(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
