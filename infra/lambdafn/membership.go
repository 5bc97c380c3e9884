package lambdafn

import (
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/membership"
	"github.com/chronicle-go/chronicle/infra/metrics"
)

// membershipSettings is what the membership function reads from its
// environment.
type membershipSettings struct {
	tables          dynamo.Tables // the team streams and their idempotency records
	membershipTable string
	readModelTable  string // failure records of the messages it fails
	snapshotEvery   int
	maxReceiveCount int
	queueURL        string
}

// Membership builds the membership queue's handler, the process manager
// that takes deleted users out of their teams, from EVENTS_TABLE,
// GUARDS_TABLE, MEMBERSHIP_TABLE and READMODEL_TABLE (required),
// SNAPSHOT_INTERVAL, MAX_RECEIVE_COUNT and QUEUE_URL (as the projector's).
// Team events hold nothing personal, so its store has no cipher.
func Membership(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*membership.Manager, error) {
	cfg = withSDKLogger(cfg, logger)
	s, err := loadMembershipSettings(getenv)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	// The append window, as the commands function's: the feed's invariant
	// holds for every writer of the events table.
	store := dynamo.New(ddb, s.tables, dynamo.WithAppendWindow(dynamo.AppendWindow))
	// No state cache: each removal loads its team first, so that it is
	// decided on a state at least as recent as the join its idempotency
	// key names (a team's events reach the manager rarely, so a cache
	// would seldom be warm anyway).
	teams := team.NewService(store, es.Options{SnapshotEvery: s.snapshotEvery})
	return membership.New(membership.NewTable(ddb, s.membershipTable), teams, logger, time.Now,
		membership.WithMetrics(metrics.New(os.Stdout, getenv("METRICS_NAMESPACE"), "membership")),
		membership.WithFailureLog(deadletter.New(ddb, s.readModelTable)),
		membership.WithMaxReceiveCount(s.maxReceiveCount),
		membership.WithBackoff(backoff(cfg, s.queueURL, logger))), nil
}

func loadMembershipSettings(getenv Getenv) (membershipSettings, error) {
	r := required{getenv: getenv}
	s := membershipSettings{
		tables:          dynamo.Tables{Events: r.get("EVENTS_TABLE"), Guards: r.get("GUARDS_TABLE")},
		membershipTable: r.get("MEMBERSHIP_TABLE"),
		readModelTable:  r.get("READMODEL_TABLE"),
		queueURL:        getenv("QUEUE_URL"),
	}
	if err := r.err(); err != nil {
		return membershipSettings{}, err
	}
	var err error
	if s.snapshotEvery, err = snapshotInterval(getenv); err != nil {
		return membershipSettings{}, err
	}
	s.maxReceiveCount, err = maxReceiveCount(getenv)
	return s, err
}
