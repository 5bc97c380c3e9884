// Command notifier is the Lambda function on the notifications queue: it
// sends each new user's welcome mail through SES, once.
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.Start("notifier", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Notifier(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
