package lambdafn

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/service"
)

// Relay builds the events-stream handler from ROUTES, "type=URL,URL;*=URL"
// (required: a relay with no route would acknowledge every event and deliver
// none).
func Relay(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*relay.Relay, error) {
	cfg = withSDKLogger(cfg, logger)
	routes, err := loadRoutes(getenv)
	if err != nil {
		return nil, err
	}
	return relay.New(sqs.NewFromConfig(cfg), routes, logger, time.Now,
		relay.WithMetrics(metrics.New(os.Stdout, getenv("METRICS_NAMESPACE"), "relay"))), nil
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
	eventsTable     string // read to heal gaps
	readModelTable  string
	maxReceiveCount int    // of its queue: the last receive before the DLQ is logged as such
	queueURL        string // its own queue: failed messages are backed off there
}

// Projector builds the projections-queue handler from EVENTS_TABLE and
// READMODEL_TABLE, both required, MAX_RECEIVE_COUNT (the queue's, so
// that the last failure before the DLQ counts as a DLQ send; optional) and
// QUEUE_URL (its queue's URL, for the backoff of failed messages; optional:
// without it they wait the queue's visibility timeout).
func Projector(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*projector.Projector, error) {
	cfg = withSDKLogger(cfg, logger)
	s, err := loadProjectorSettings(getenv)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	c, err := userCipher(cfg, ddb, getenv)
	if err != nil {
		return nil, err
	}
	// The events are read as stored (sealed): the projector opens a copy
	// to decode, and keeps the records it writes to the activity sealed.
	events := dynamo.New(ddb, dynamo.Tables{Events: s.eventsTable})
	rm := readmodel.New(ddb, s.readModelTable)
	var opts []projector.Option
	if c != nil {
		opts = append(opts, projector.WithOpener(c.Open))
	}
	return projector.New(events, service.Registry(), rm, service.Projections(), logger, time.Now, append(opts,
		projector.WithMetrics(metrics.New(os.Stdout, getenv("METRICS_NAMESPACE"), "projector")),
		projector.WithFailureLog(deadletter.New(ddb, s.readModelTable)), projector.WithMaxReceiveCount(s.maxReceiveCount),
		projector.WithBackoff(backoff(cfg, s.queueURL, logger)))...), nil
}

// backoff is the relay.Backoff of a consumer of the queue at url: nil
// without one.
func backoff(cfg aws.Config, url string, logger *slog.Logger) *relay.Backoff {
	if url == "" {
		return nil
	}
	return &relay.Backoff{Client: sqs.NewFromConfig(cfg), QueueURL: url, Log: logger}
}

func loadProjectorSettings(getenv Getenv) (projectorSettings, error) {
	r := required{getenv: getenv}
	s := projectorSettings{eventsTable: r.get("EVENTS_TABLE"), readModelTable: r.get("READMODEL_TABLE"), queueURL: getenv("QUEUE_URL")}
	if err := r.err(); err != nil {
		return projectorSettings{}, err
	}
	n, err := maxReceiveCount(getenv)
	s.maxReceiveCount = n
	return s, err
}

// maxReceiveCount reads MAX_RECEIVE_COUNT: 0 (unknown) when unset.
func maxReceiveCount(getenv Getenv) (int, error) {
	v := getenv("MAX_RECEIVE_COUNT")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("MAX_RECEIVE_COUNT=%q: want a positive integer", v)
	}
	return n, nil
}

// notifierSettings is what the notifier reads from its environment.
type notifierSettings struct {
	readModelTable  string // holds the sent-mail records
	mail            notifier.Config
	maxReceiveCount int
	queueURL        string // its own queue: failed messages are backed off there
}

// Notifier builds the notifications-queue handler from READMODEL_TABLE and
// EMAIL_SENDER (an address SES has verified, bare or "Name <address>"), both
// required, MAX_RECEIVE_COUNT and QUEUE_URL (as the projector's; optional).
func Notifier(cfg aws.Config, getenv Getenv, logger *slog.Logger) (*notifier.Notifier, error) {
	cfg = withSDKLogger(cfg, logger)
	s, err := loadNotifierSettings(getenv)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(cfg)
	c, err := userCipher(cfg, ddb, getenv)
	if err != nil {
		return nil, err
	}
	var opts []notifier.Option
	if c != nil {
		// Warm: a batch's new users' keys are read together (the projector
		// needs no such thing: it already runs a batch's groups at once).
		opts = append(opts, notifier.WithOpener(c.Open), notifier.WithWarmer(c.Warm))
	}
	ledger := notifier.NewMails(ddb, s.readModelTable)
	// SESOptions: the SDK must not retry a send SES may have accepted.
	return notifier.New(sesv2.NewFromConfig(cfg, notifier.SESOptions), ledger, user.NewRegistry(), s.mail, logger, time.Now, append(opts,
		notifier.WithMetrics(metrics.New(os.Stdout, getenv("METRICS_NAMESPACE"), "notifier")),
		notifier.WithFailureLog(deadletter.New(ddb, s.readModelTable)), notifier.WithMaxReceiveCount(s.maxReceiveCount),
		notifier.WithBackoff(backoff(cfg, s.queueURL, logger)))...)
}

func loadNotifierSettings(getenv Getenv) (notifierSettings, error) {
	r := required{getenv: getenv}
	s := notifierSettings{readModelTable: r.get("READMODEL_TABLE"), mail: notifier.Config{From: r.get("EMAIL_SENDER")}, queueURL: getenv("QUEUE_URL")}
	if err := r.err(); err != nil {
		return notifierSettings{}, err
	}
	n, err := maxReceiveCount(getenv)
	s.maxReceiveCount = n
	return s, err
}
