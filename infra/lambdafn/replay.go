package lambdafn

import (
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/service"
)

// Replay builds the replay queue's handler, which rebuilds projections a
// time-bounded slice per message, from EVENTS_TABLE, READMODEL_TABLE and
// REPLAY_QUEUE_URL (where it sends itself the next slice), all required.
// Its EMF metrics (RebuildEvents, RebuildEventsPerSecond) go to stdout.
func Replay(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*rebuild.Replay, error) {
	cfg = withSDKLogger(cfg, logger)
	r := required{getenv: getenv}
	events, readModel, queue := r.get("EVENTS_TABLE"), r.get("READMODEL_TABLE"), r.get("REPLAY_QUEUE_URL")
	if err := r.err(); err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	store := dynamo.New(ddb, dynamo.Tables{Events: events})
	rb := rebuild.New(ddb, events, store, readmodel.New(ddb, readModel), service.Registry(), service.Projections(), logger)
	c, err := userCipher(cfg, ddb, getenv)
	if err != nil {
		return nil, err
	}
	if c != nil {
		rb.OpenWith(c.Open) // store reads the events as stored: sealed
	}
	return rebuild.NewReplay(rb, sqs.NewFromConfig(cfg), queue, logger, metrics.New(os.Stdout, getenv("METRICS_NAMESPACE"), "replay")), nil
}
