// Command authorizer is the API Gateway TOKEN authorizer: it verifies the
// caller's bearer JWT and hands its sub and roles to the route functions.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.StartWithoutAWS("authorizer", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Authorizer(getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
