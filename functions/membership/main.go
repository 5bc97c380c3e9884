// Command membership is the Lambda function on the membership queue: the
// process manager that takes a deleted or forgotten user out of every team
// it was in.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.Start("membership", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Membership(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
