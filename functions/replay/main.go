// Command replay is the Lambda function on the replay queue: it rebuilds a
// projection from the event store, one time-bounded slice per message, and
// sends itself the next slice until the new generation is active. Start it
// with `chronicle rebuild <projection> --remote`, or by sending
// {"projection":"user-view"} to the replay queue (group "rebuild#user-view").
//
// The wiring lives in infra/lambdafn, which the local runner shares.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

func main() {
	lambdafn.Start("replay", func(cfg aws.Config, getenv lambdafn.Getenv, logger *slog.Logger) (any, error) {
		h, err := lambdafn.Replay(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
