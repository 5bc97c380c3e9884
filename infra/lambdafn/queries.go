package lambdafn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/service"
	"github.com/chronicle-go/chronicle/infra/teamapi"
	"github.com/chronicle-go/chronicle/infra/teamviews"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// querySettings is what the queries function reads from its environment.
type querySettings struct {
	tables        dynamo.Tables // Events and Snapshots; Guards, read only for the user a principal acts on teams through
	snapshotEvery int           // as the commands function's: 0 reads no snapshots
	readModel     string
	projections   []httpapi.Projection
}

// Queries builds the handler of the query routes from EVENTS_TABLE,
// GUARDS_TABLE (read only: the sub# guard, the user a principal acts on
// teams through), SNAPSHOTS_TABLE and READMODEL_TABLE (required), SNAPSHOT_INTERVAL (as for
// Commands: users load from their latest snapshot unless it is 0) and
// PROJECTION_QUEUES (optional: without it GET /ops/projections reports no
// queue depths).
func Queries(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*httpapi.Queries, error) {
	cfg = withSDKLogger(cfg, logger)
	s, err := loadQuerySettings(getenv)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	c, err := userCipher(cfg, ddb, getenv)
	if err != nil {
		return nil, err
	}
	var opts []dynamo.Option
	var open func(context.Context, []es.Record) error
	if c != nil {
		opts, open = append(opts, dynamo.WithCipher(c)), c.Open
	}
	store := dynamo.New(ddb, s.tables, opts...)
	rm := userviews.New(readmodel.New(ddb, s.readModel))
	users := userService(store, s.snapshotEvery, 0)
	teams, err := teamapi.NewQueries(teamapi.QueriesDeps{
		Teams: teamService(store, s.snapshotEvery, 0), Users: users, Events: store, Guards: store,
		Views: teamViews(ddb, s.readModel),
	})
	if err != nil {
		return nil, err
	}
	return httpapi.NewQueries(httpapi.QueriesDeps{
		Open:        open,
		Users:       users,
		Events:      store,
		Feed:        store,
		ReadModel:   rm,
		Queues:      sqs.NewFromConfig(cfg),
		Projections: s.projections,
		Health:      health(store, rm),
		Logger:      logger,
	}, httpapi.WithAPI(teams.API()), httpapi.WithCheckpointed(projection.Names(service.Projections())))
}

// teamViews is the read model of teams in the read-model table, which
// GET /teams/{id} reads before the event store and GET /users/{id}/teams
// reads alone: the Team projections' reader.
func teamViews(ddb *dynamodb.Client, table string) teamapi.Views {
	return teamviews.New(readmodel.New(ddb, table))
}

// probeID is an aggregate id no item has.
const probeID = "00000000-0000-0000-0000-000000000000"

// health reads a key that no item has from the event store and the read
// model: that both answer, and that the role may read them.
func health(events httpapi.EventLoader, rm httpapi.ReadModel) func(context.Context) error {
	return func(ctx context.Context) error {
		_, errEvents := events.Load(ctx, probeID, 1, 1)
		_, _, errView := rm.UserView(ctx, probeID)
		return errors.Join(errEvents, errView)
	}
}

func loadQuerySettings(getenv Getenv) (querySettings, error) {
	r := required{getenv: getenv}
	s := querySettings{
		tables:    dynamo.Tables{Events: r.get("EVENTS_TABLE"), Guards: r.get("GUARDS_TABLE"), Snapshots: r.get("SNAPSHOTS_TABLE")},
		readModel: r.get("READMODEL_TABLE"),
	}
	if err := r.err(); err != nil {
		return querySettings{}, err
	}
	n, err := snapshotInterval(getenv)
	if err != nil {
		return querySettings{}, err
	}
	s.snapshotEvery = n
	p, err := parseProjections(getenv("PROJECTION_QUEUES"))
	if err != nil {
		return querySettings{}, fmt.Errorf("PROJECTION_QUEUES: %w", err)
	}
	s.projections = p
	return s, nil
}

// parseProjections reads "name=queueURL|dlqURL;name=queueURL|dlqURL", as
// template.yaml writes it; the "|dlqURL" part is optional. Projections fed by
// one queue repeat its URLs.
func parseProjections(v string) ([]httpapi.Projection, error) {
	var out []httpapi.Projection
	seen := map[string]bool{}
	for item := range strings.SplitSeq(v, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, urls, ok := strings.Cut(item, "=")
		name, urls = strings.TrimSpace(name), strings.TrimSpace(urls)
		queue, dlq, _ := strings.Cut(urls, "|")
		queue, dlq = strings.TrimSpace(queue), strings.TrimSpace(dlq)
		switch {
		case !ok || name == "" || queue == "":
			return nil, fmt.Errorf("%q is not name=queueURL|dlqURL", item)
		case seen[name]:
			return nil, fmt.Errorf("projection %q listed twice", name)
		}
		seen[name] = true
		out = append(out, httpapi.Projection{Name: name, QueueURL: queue, DLQURL: dlq})
	}
	return out, nil
}
