package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/service"
)

// app is one invocation: its output, its configuration and, once asked
// for, its AWS clients.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	// global flags
	stack          string
	eventsTable    string
	snapshotsTable string
	readModelTable string
	asJSON         bool

	cfg    *aws.Config
	ddb    *dynamodb.Client
	sqsc   *sqs.Client
	logger *slog.Logger
}

// globalFlags adds the flags every command takes to fs, with their current
// values (from the environment, or from flags given before the command) as
// defaults.
func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.stack, "stack", a.stack, "stack name: tables and queues named as template.yaml does (CHRONICLE_STACK)")
	fs.StringVar(&a.eventsTable, "events-table", a.eventsTable, "events table (EVENTS_TABLE; default <stack>-events)")
	fs.StringVar(&a.snapshotsTable, "snapshots-table", a.snapshotsTable, "snapshots table (SNAPSHOTS_TABLE; default <stack>-snapshots)")
	fs.StringVar(&a.readModelTable, "readmodel-table", a.readModelTable, "read-model table (READMODEL_TABLE; default <stack>-readmodel)")
	fs.BoolVar(&a.asJSON, "json", a.asJSON, "print JSON")
}

// fromEnv sets the global settings from the environment.
func (a *app) fromEnv() {
	a.stack = a.env("CHRONICLE_STACK")
	a.eventsTable = a.env("EVENTS_TABLE")
	a.snapshotsTable = a.env("SNAPSHOTS_TABLE")
	a.readModelTable = a.env("READMODEL_TABLE")
}

func (a *app) env(k string) string {
	if a.getenv == nil {
		return ""
	}
	return a.getenv(k)
}

// table resolves a table: given explicitly, or <stack>-<suffix>.
func (a *app) table(explicit, suffix, flagName string) (string, error) {
	switch {
	case explicit != "":
		return explicit, nil
	case a.stack != "":
		return a.stack + "-" + suffix, nil
	}
	return "", usagef("no %s table: give --stack or --%s", suffix, flagName)
}

func (a *app) events() (string, error) { return a.table(a.eventsTable, "events", "events-table") }
func (a *app) readModel() (string, error) {
	return a.table(a.readModelTable, "readmodel", "readmodel-table")
}

// snapshots is the snapshots table, or "" when none is known (loads then
// replay whole streams, which is only slower).
func (a *app) snapshots() string {
	t, _ := a.table(a.snapshotsTable, "snapshots", "snapshots-table")
	return t
}

func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithDefaultRegion("us-east-1"),
		// Emulators send no flexible checksums; AWS needs none for these APIs.
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	a.cfg = &cfg
	return cfg, nil
}

func (a *app) dynamo(ctx context.Context) (*dynamodb.Client, error) {
	if a.ddb == nil {
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		a.ddb = dynamodb.NewFromConfig(cfg)
	}
	return a.ddb, nil
}

func (a *app) queues(ctx context.Context) (*sqs.Client, error) {
	if a.sqsc == nil {
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		a.sqsc = sqs.NewFromConfig(cfg)
	}
	return a.sqsc, nil
}

// log is where library logs go: nowhere unless CHRONICLE_DEBUG is set.
func (a *app) log() *slog.Logger {
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
		if a.env("CHRONICLE_DEBUG") != "" {
			a.logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	return a.logger
}

// eventStore is the event store, and the user service over it for loads.
func (a *app) eventStore(ctx context.Context) (*dynamo.Store, *es.Service[user.State, user.Command], error) {
	events, err := a.events()
	if err != nil {
		return nil, nil, err
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return nil, nil, err
	}
	tables := dynamo.Tables{Events: events, Snapshots: a.snapshots()}
	// The personal fields open with the users' keys; a forgotten user's
	// read as null.
	c, err := a.cipher(ctx, ddb)
	if err != nil {
		return nil, nil, err
	}
	var opts []dynamo.Option
	if c != nil {
		opts = append(opts, dynamo.WithCipher(c))
	}
	store := dynamo.New(ddb, tables, opts...)
	so := es.Options{}
	if tables.Snapshots != "" {
		so.SnapshotEvery = 1 // read snapshots; the tool never writes any
	}
	return store, user.NewService(snapshotGuard{store, tables.Snapshots != ""}, so), nil
}

// teamService is the Team service over store, for loads: it reads
// snapshots as eventStore's user service does, and writes nothing.
func (a *app) teamService(store *dynamo.Store) *team.Service {
	read := a.snapshots() != ""
	so := es.Options{}
	if read {
		so.SnapshotEvery = 1
	}
	return team.NewService(snapshotGuard{store, read}, so)
}

// snapshotGuard reads snapshots only when a snapshots table is known, and
// never writes any (the tool only reads the event store).
type snapshotGuard struct {
	*dynamo.Store
	read bool
}

func (s snapshotGuard) Snapshot(ctx context.Context, id string) (es.Snapshot, bool, error) {
	if !s.read {
		return es.Snapshot{}, false, nil
	}
	snap, ok, err := s.Store.Snapshot(ctx, id)
	if err != nil {
		// A missing or unreadable snapshots table only costs a longer load.
		return es.Snapshot{}, false, nil
	}
	return snap, ok, nil
}

func (s snapshotGuard) PutSnapshot(context.Context, es.Snapshot) error {
	return errors.New("chronicle: the operator tool writes no snapshots")
}

func (s snapshotGuard) Append(context.Context, es.AppendRequest) error {
	return errors.New("chronicle: the operator tool appends no events")
}

// readModelStore is the read-model store, with its generation cache off so
// that every read sees the latest switch.
func (a *app) readModelStore(ctx context.Context) (*readmodel.Store, error) {
	table, err := a.readModel()
	if err != nil {
		return nil, err
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return nil, err
	}
	return readmodel.New(ddb, table, readmodel.WithGenerationTTL(0)), nil
}

func (a *app) rebuilder(ctx context.Context) (*rebuild.Rebuilder, *readmodel.Store, error) {
	events, err := a.events()
	if err != nil {
		return nil, nil, err
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return nil, nil, err
	}
	rm, err := a.readModelStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.cipher(ctx, ddb)
	if err != nil {
		return nil, nil, err
	}
	// The events as stored (sealed): the rebuilder opens a copy to decode,
	// and the activity it writes stays sealed.
	store := dynamo.New(ddb, dynamo.Tables{Events: events, Snapshots: a.snapshots()})
	rb := rebuild.New(ddb, events, store, rm, service.Registry(), service.Projections(), a.log())
	if c != nil {
		rb.OpenWith(c.Open)
	}
	return rb, rm, nil
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal (for the progress bar).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
