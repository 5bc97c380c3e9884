package lambdafn

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Relay builds the events-stream handler from ROUTES, "type=URL,URL;*=URL"
// (required: a relay with no route would acknowledge every event and deliver
// none).
func Relay(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*relay.Relay, error) {
	routes, err := loadRoutes(getenv)
	if err != nil {
		return nil, err
	}
	return relay.New(sqs.NewFromConfig(cfg), routes, logger, time.Now), nil
}

func loadRoutes(getenv Getenv) (relay.Routes, error) {
	v := getenv("ROUTES")
	if v == "" {
		return nil, errors.New("missing environment variable ROUTES")
	}
	routes, err := relay.ParseRoutes(v)
	if err != nil {
		return nil, fmt.Errorf("ROUTES: %w", err)
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("ROUTES=%q routes no event", v)
	}
	return routes, nil
}

// projectorSettings is what the projector reads from its environment.
type projectorSettings struct {
	eventsTable    string // read to heal gaps
	readModelTable string
}

// Projector builds the projections-queue handler from EVENTS_TABLE and
// READMODEL_TABLE, both required.
func Projector(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*projector.Projector, error) {
	s, err := loadProjectorSettings(getenv)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	events := dynamo.New(ddb, dynamo.Tables{Events: s.eventsTable})
	return projector.New(events, user.NewRegistry(), readmodel.New(ddb, s.readModelTable), logger, time.Now), nil
}

func loadProjectorSettings(getenv Getenv) (projectorSettings, error) {
	r := required{getenv: getenv}
	s := projectorSettings{eventsTable: r.get("EVENTS_TABLE"), readModelTable: r.get("READMODEL_TABLE")}
	if err := r.err(); err != nil {
		return projectorSettings{}, err
	}
	return s, nil
}

// notifierSettings is what the notifier reads from its environment.
type notifierSettings struct {
	readModelTable string // holds the sent-mail records
	mail           notifier.Config
}

// Notifier builds the notifications-queue handler from READMODEL_TABLE and
// EMAIL_SENDER (an address SES has verified, bare or "Name <address>"), both
// required.
func Notifier(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*notifier.Notifier, error) {
	s, err := loadNotifierSettings(getenv)
	if err != nil {
		return nil, err
	}
	ledger := readmodel.New(dynamodb.NewFromConfig(cfg), s.readModelTable)
	return notifier.New(sesv2.NewFromConfig(cfg), ledger, user.NewRegistry(), s.mail, logger, time.Now)
}

func loadNotifierSettings(getenv Getenv) (notifierSettings, error) {
	r := required{getenv: getenv}
	s := notifierSettings{readModelTable: r.get("READMODEL_TABLE"), mail: notifier.Config{From: r.get("EMAIL_SENDER")}}
	if err := r.err(); err != nil {
		return notifierSettings{}, err
	}
	return s, nil
}
