package lambdafn

import (
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/teamapi"
)

// commandSettings is what the commands function reads from its environment.
type commandSettings struct {
	tables        dynamo.Tables
	snapshotEvery int // 0 disables snapshots
	cacheSize     int // users kept folded between commands; 0 disables the cache
}

// Commands builds the handler of the command routes from EVENTS_TABLE,
// GUARDS_TABLE and SNAPSHOTS_TABLE (required), SNAPSHOT_INTERVAL (events
// between snapshots, default 100, 0 for none) and STATE_CACHE_SIZE (users
// kept folded between commands, default 4,096, 0 for none), KEYS_TABLE and
// PII_KEY_ID (the users' data keys: userCipher).
func Commands(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*httpapi.Commands, error) {
	cfg = withSDKLogger(cfg, logger)
	s, err := loadCommandSettings(getenv)
	if err != nil {
		return nil, err
	}
	// The append window is the writers' half of the feed's invariant: no
	// event commits later than AppendWindow after its occurred-at.
	ddb := dynamodb.NewFromConfig(cfg)
	c, err := userCipher(cfg, ddb, getenv)
	if err != nil {
		return nil, err
	}
	opts := []dynamo.Option{dynamo.WithAppendWindow(dynamo.AppendWindow)}
	recorder := metrics.New(os.Stdout, getenv("METRICS_NAMESPACE"), "commands")
	hopts := []httpapi.Option{httpapi.WithMetrics(recorder)}
	if c != nil {
		opts = append(opts, dynamo.WithCipher(c))
		hopts = append(hopts, httpapi.WithKeys(c.Keys()))
	}
	store := dynamo.New(ddb, s.tables, opts...)
	svc := userService(store, s.snapshotEvery, s.cacheSize)
	// The Team API on the same function and store: teams' commands read
	// whether a user is active from the same User service.
	teams := teamapi.NewCommands(teamapi.CommandsDeps{
		Teams: teamService(store, s.snapshotEvery, s.cacheSize), Users: svc, Guards: store, Logger: logger, Metrics: recorder,
	})
	hopts = append(hopts, httpapi.WithAPI(teams.API()))
	return httpapi.NewCommands(svc, logger, hopts...), nil
}

func loadCommandSettings(getenv Getenv) (commandSettings, error) {
	r := required{getenv: getenv}
	s := commandSettings{
		tables: dynamo.Tables{
			Events:    r.get("EVENTS_TABLE"),
			Guards:    r.get("GUARDS_TABLE"),
			Snapshots: r.get("SNAPSHOTS_TABLE"),
		},
	}
	if err := r.err(); err != nil {
		return commandSettings{}, err
	}
	n, err := snapshotInterval(getenv)
	if err != nil {
		return commandSettings{}, err
	}
	s.snapshotEvery = n
	if s.cacheSize, err = stateCacheSize(getenv); err != nil {
		return commandSettings{}, err
	}
	return s, nil
}
