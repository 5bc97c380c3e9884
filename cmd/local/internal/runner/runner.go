// Package runner serves a SAM template locally, as API Gateway and Lambda
// would serve it in AWS, against emulators (DynamoDB Local and moto) or
// LocalStack.
//
// Everything it does comes from the template, read with infra/template:
//
//   - the tables (keys, indexes, stream, TTL) and queues (FIFO, visibility,
//     retention, dead-letter queue and receive count) it declares are
//     created, or reused when they exist, under the names the template gives
//     them for a stack name;
//   - the Api events of the functions are the routes of an HTTP server that
//     builds API Gateway's REST proxy event, runs the API's Lambda TOKEN
//     authorizer first, answers with the template's GatewayResponses where
//     API Gateway answers itself, and writes the function's proxy response;
//   - the DynamoDB and SQS events are event source mappings, polled as Lambda
//     polls them: batch size, batching window, partial batch responses,
//     bisect-on-error, retries and on-failure destination for streams;
//     visibility timeout, deletion of successes only, and the queue's own
//     redrive to its DLQ for SQS;
//   - each function runs in process, built by infra/lambdafn (the code its
//     Lambda main runs) with the environment the template gives it, its
//     intrinsics resolved against the created resources.
//
// It logs one line per invocation: function, trigger, duration, outcome.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/template"
)

// Config is what a Runner serves, and where.
type Config struct {
	// Template is the path of the SAM template.
	Template string
	// Parameters override the template's parameter values, as sam deploy
	// --parameter-overrides does.
	Parameters map[string]string
	// StackName stands for AWS::StackName: the resources' names derive from it.
	StackName string
	// AWS is the SDK configuration of the emulators (or of LocalStack).
	AWS aws.Config
	// Getenv reads the runner's environment, for the few variables it hands
	// on to every function (see passedThrough). Nil means none.
	Getenv func(string) string
	// Logger receives the runner's lines, one per invocation; FunctionLogger
	// what the functions log (default: Logger).
	Logger         *slog.Logger
	FunctionLogger *slog.Logger
	// Observe, when set, is told of every invocation after it ends.
	Observe func(Invocation)
	// IAM, when not empty, switches the IAM check on: every AWS call a
	// function's code makes, and those Lambda makes for it (its event source
	// mappings, its logs), is checked against the function's role in the
	// template, resolved to this stack's names (infra/iamcheck), and each
	// distinct call goes to these sinks; a call not granted is also logged as
	// an error. The emulators enforce no IAM: tests switch this on.
	IAM []iamcheck.Sink
	// StateDir, when set, is where the runner keeps what Lambda keeps in
	// the service: each stream mapping's position, so that a runner
	// killed and started again on the same stack resumes where it was
	// rather than at the stream's start. Empty: nothing is kept.
	StateDir string
	// RIE, when set, runs every function as its own bootstrap process
	// under the Lambda Runtime Interface Emulator (see remote.go), instead
	// of its handler in process: the gateway and the pollers invoke it over
	// HTTP. The IAM check then covers only what Lambda does for a function,
	// not its code's calls, which leave this process.
	RIE *rie.Launcher
	// StreamOutage, when set, is asked about each batch a stream mapping is
	// about to hand to a function (its logical id, the batch's records):
	// true fails the batch past its retries at once, without running the
	// function, and the mapping describes it to its on-failure destination
	// and moves on, as Lambda does after MaximumRetryAttempts. The tests of
	// an outage of a stream consumer set it: waiting out real retries (10,
	// bisected, with backoff) would cost minutes and prove nothing more.
	StreamOutage func(function string, records int) bool

	// Tracing, when set, makes the runner collect the spans of its
	// functions and serve them at GET /_local/traces/{id} (traces.go). It
	// installs the process's OpenTelemetry provider: one tracing runner
	// per process.
	Tracing bool
}

// Invocation is what Observe is told about one invocation.
type Invocation struct {
	Function string // logical id
	Trigger  string // "api", "authorizer", "sqs" or "dynamodb"
	Source   string // route ("GET /users/{id}") or the logical id of the queue or table
	Records  int    // batch size of an event source invocation
	Failures int    // records reported failed
	Status   int    // HTTP status of an API invocation's answer
	Outcome  string // see the outcome constants
	Duration time.Duration
	// Request is the proxy event of an API invocation.
	Request any
}

// Outcomes of an invocation.
const (
	OutcomeOK      = "ok"
	OutcomePartial = "partial_failure" // a batch answered with failed items
	OutcomeError   = "error"           // the function returned an error
	OutcomePanic   = "panic"
	OutcomeTimeout = "timeout" // the function ran past the template's Timeout
	OutcomeInvalid = "invalid_response"
)

// passedThrough are variables of the runner's environment that every
// function sees too: local settings the template leaves to the environment.
var passedThrough = []string{"LOCAL_JWT_SECRET"}

// Region and account of the ARNs the runner makes up; moto's default account.
const (
	defaultRegion = "us-east-1"
	accountID     = "123456789012"
)

// Runner serves one template. Create it with New, then Provision, then Serve.
type Runner struct {
	cfg    Config
	tpl    *template.Template
	plan   *plan
	log    *slog.Logger
	fnLog  *slog.Logger
	region string

	ddb     *dynamodb.Client
	streams *dynamodbstreams.Client
	sqs     *sqs.Client
	ses     *sesv2.Client

	res       *resources
	functions map[string]*function // by logical id, after Provision
	gw        *gateway

	inflight sync.WaitGroup // invocations of event source mappings

	traces *traceStore // nil: tracing off
}

// parsing serializes template parsing: goformation's intrinsics.ProcessYAML
// registers its YAML tags in a package-level map on every call, so two
// runners created at once (tests) would race.
var parsing sync.Mutex

func load(cfg Config) (*template.Template, *plan, error) {
	parsing.Lock()
	defer parsing.Unlock()
	tpl, err := template.Load(cfg.Template, template.WithParameters(cfg.Parameters))
	if err != nil {
		return nil, nil, err
	}
	p, err := readPlan(tpl, cfg.Template)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.Template, err)
	}
	return tpl, p, nil
}

// New reads the template and checks that the runner can serve it. It does
// no I/O on AWS.
func New(cfg Config) (*Runner, error) {
	if cfg.StackName == "" {
		return nil, errors.New("runner: no stack name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FunctionLogger == nil {
		cfg.FunctionLogger = cfg.Logger
	}
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	tpl, p, err := load(cfg)
	if err != nil {
		return nil, err
	}
	// DynamoDB Local's error answers fail the SDK's CRC32 check of the
	// body, which only logs a warning per call: noise locally.
	cfg.AWS.APIOptions = append(slices.Clone(cfg.AWS.APIOptions), withoutDynamoDBChecksum)
	region := cfg.AWS.Region
	if region == "" {
		region = defaultRegion
	}
	r := &Runner{
		cfg: cfg, tpl: tpl, plan: p, log: cfg.Logger, fnLog: cfg.FunctionLogger, region: region,
		ddb:     dynamodb.NewFromConfig(cfg.AWS),
		streams: dynamodbstreams.NewFromConfig(cfg.AWS),
		sqs:     sqs.NewFromConfig(cfg.AWS),
		ses:     sesv2.NewFromConfig(cfg.AWS),
	}
	r.res = newResources(r)
	if cfg.Tracing {
		r.traces = installTracing()
	}
	return r, nil
}

// Provision creates the template's tables, queues and SES identities, or
// reuses those that exist, then builds every function with its resolved
// environment.
func (r *Runner) Provision(ctx context.Context) error {
	start := time.Now()
	if err := r.createTables(ctx); err != nil {
		return err
	}
	if err := r.createQueues(ctx); err != nil {
		return err
	}
	if err := r.createKeys(ctx); err != nil {
		return err
	}
	if err := r.buildFunctions(); err != nil {
		return err
	}
	if err := r.verifySenders(ctx); err != nil {
		return err
	}
	gw, err := newGateway(r)
	if err != nil {
		return err
	}
	r.gw = gw
	r.log.Info("provisioned", "stack", r.cfg.StackName, "tables", len(r.plan.tables), "queues", len(r.plan.queues),
		"functions", len(r.functions), "routes", len(r.plan.routes), "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// shutdownGrace bounds how long Serve waits for requests and batches in
// flight after its context ends.
const shutdownGrace = 30 * time.Second

// Serve answers HTTP requests on ln and runs the event source mappings until
// ctx ends, then stops taking work, lets what is in flight finish and
// returns. Provision must have succeeded.
func (r *Runner) Serve(ctx context.Context, ln net.Listener) error {
	if r.gw == nil {
		return errors.New("runner: Serve before Provision")
	}
	srv := &http.Server{Handler: r.gw, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var pollers sync.WaitGroup
	for _, m := range r.plan.streamMappings {
		pollers.Go(func() { r.pollStream(ctx, m) })
	}
	for _, m := range r.plan.queueMappings {
		pollers.Go(func() { r.pollQueue(ctx, m) })
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if shutErr := srv.Shutdown(stopCtx); shutErr != nil {
		err = errors.Join(err, fmt.Errorf("http shutdown: %w", shutErr))
	}
	pollers.Wait()
	r.inflight.Wait()
	err = errors.Join(err, r.closeRemotes())
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// withoutDynamoDBChecksum removes the DynamoDB client's CRC32 validation
// of response bodies; clients of other services do not have it.
func withoutDynamoDBChecksum(stack *middleware.Stack) error {
	_, _ = stack.Deserialize.Remove("DynamoDB:ResponseChecksumValidation")
	return nil
}

// Destroy deletes the stack's tables and queues, those that exist.
func (r *Runner) Destroy(ctx context.Context) error {
	return errors.Join(r.deleteQueues(ctx), r.deleteTables(ctx))
}

// TableName is the name of the table with logical id id.
func (r *Runner) TableName(id string) string { return r.res.tableNames[id] }

// QueueURL is the URL of the queue with logical id id, once provisioned.
func (r *Runner) QueueURL(id string) string { return r.res.queues[id].url }

// KeyID is the KMS key id of the key with logical id id, once provisioned.
func (r *Runner) KeyID(id string) string { return r.res.keys[id] }

// Stage is the stage name of the API.
func (r *Runner) Stage() string { return r.plan.stage }
