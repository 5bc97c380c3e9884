package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/lambdafn"
	"github.com/chronicle-go/chronicle/infra/template"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// function is a function of the template, built and ready to invoke.
type function struct {
	id      string // logical id
	name    string // physical name
	arn     string
	timeout time.Duration
	env     map[string]string
	// reserved is the function's reserved concurrency, 0 for none: it
	// bounds the batches its queue mappings run at once.
	reserved int
	// handler is the function's Handle method. Each invocation wraps it
	// in its own lambda.NewHandler: the wrapper's Invoke returns bytes of
	// a pooled buffer that it has already put back, which one Lambda
	// sandbox (one invocation at a time) never notices and concurrent
	// invocations would share.
	handler any
	// remote, when set, runs the function as its bootstrap under the
	// emulator instead (Config.RIE).
	remote *rie.Pool
	// idle hands an invocation to a sandbox waiting for one (see run).
	idle chan func() bool
}

// sandboxIdle is how long an in-process sandbox waits for its next
// invocation before it ends, as Lambda retires an idle environment.
const sandboxIdle = time.Minute

// run runs invoke in one of fn's sandboxes: a goroutine that runs one
// invocation at a time and waits for the next, as a Lambda execution
// environment does, or a new one when none is idle. A goroutine per
// invocation cost each command its stack's growth again, to the SDK's
// depth, which Lambda's runtime loop, on one long-lived goroutine, does
// not pay. invoke reports false when the function panicked: the sandbox
// ends then, as Lambda discards an environment whose runtime crashed.
func (fn *function) run(invoke func() bool) {
	select {
	case fn.idle <- invoke: // a sandbox was waiting: it has it
	default:
		go fn.sandbox(invoke)
	}
}

func (fn *function) sandbox(invoke func() bool) {
	t := time.NewTimer(sandboxIdle)
	defer t.Stop()
	for {
		if !invoke() {
			return
		}
		t.Reset(sandboxIdle)
		select {
		case invoke = <-fn.idle:
		case <-t.C:
			return
		}
	}
}

// buildFunctions resolves each function's environment and builds its
// handler with infra/lambdafn, as its Lambda main does.
func (r *Runner) buildFunctions() error {
	checker, err := r.iamChecker()
	if err != nil {
		return err
	}
	r.functions = map[string]*function{}
	for _, f := range r.plan.functions {
		env, err := r.environment(f)
		if err != nil {
			return fmt.Errorf("function %s: %w", f.Name, err)
		}
		logger := r.fnLog.With("function", f.Name)
		cfg := r.cfg.AWS
		if checker != nil {
			cfg.APIOptions = append(slices.Clone(cfg.APIOptions), checker.APIOptions(f.Name))
		}
		h, err := lambdafn.Handler(codeName(f.Name), cfg, func(k string) string { return env[k] }, logger)
		if err != nil {
			return fmt.Errorf("function %s: %w", f.Name, err)
		}
		name := r.res.physicalName(f.Name)
		fn := &function{
			id: f.Name, name: name, arn: functionARN(r.region, name),
			timeout: time.Duration(f.Timeout) * time.Second, env: env,
			handler: h, reserved: f.ReservedConcurrency, idle: make(chan func() bool),
		}
		if err := r.launch(fn, f); err != nil {
			return fmt.Errorf("function %s: %w", f.Name, err)
		}
		r.functions[f.Name] = fn
	}
	return nil
}

// iamChecker is the IAM check of Config.IAM, nil when it is off. The
// roles resolve against the created resources; what Lambda does with each
// role is checked at once.
func (r *Runner) iamChecker() (*iamcheck.Checker, error) {
	if len(r.cfg.IAM) == 0 {
		return nil, nil
	}
	policies, err := iamcheck.Policies(r.tpl, r.res)
	if err != nil {
		return nil, fmt.Errorf("IAM check: %w", err)
	}
	logDenied := func(rec iamcheck.Record) {
		if rec.Denied != "" {
			r.log.Error("IAM: call not granted by the function's role", "function", rec.Function,
				"action", rec.Action, "resource", rec.Resource, "error", rec.Denied)
		}
	}
	checker := iamcheck.NewChecker(policies, accountID, append(slices.Clone(r.cfg.IAM), logDenied)...)
	// A denial is reported to the sinks; provisioning goes on, as in AWS,
	// where the deployment succeeds and the calls fail.
	_ = checker.CheckLambda(r.tpl, r.res)
	return checker, nil
}

// environment is what a function sees: the variables Lambda sets, the
// template's (globals merged), resolved, and passedThrough. A variable that
// refers to a parameter with no value is left unset, as the function's
// default (JwksUrl, say: without it the authorizer takes local HS256 tokens).
func (r *Runner) environment(f template.Function) (map[string]string, error) {
	name := r.res.physicalName(f.Name)
	env := map[string]string{
		"AWS_REGION":                      r.region,
		"AWS_DEFAULT_REGION":              r.region,
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.MemorySize),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + name,
		"_HANDLER":                        f.Handler,
	}
	for _, k := range passedThrough {
		if v := r.cfg.Getenv(k); v != "" {
			env[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.Environment)) {
		v, err := r.tpl.Resolve(f.Environment[k], r.res)
		if errors.Is(err, template.ErrNoValue) {
			r.log.Info("variable left unset: its parameter has no value", "function", f.Name, "variable", k, "reason", err.Error())
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", k, err)
		}
		env[k] = v
	}
	return env, nil
}

// verifySenders verifies in SES the sender address of every function that
// sends mail (its EMAIL_SENDER): the emulators, like SES in its sandbox,
// refuse mail from an unverified identity.
func (r *Runner) verifySenders(ctx context.Context) error {
	done := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(r.functions)) {
		from := r.functions[id].env["EMAIL_SENDER"]
		if from == "" {
			continue
		}
		addr, err := mail.ParseAddress(from)
		if err != nil {
			return fmt.Errorf("function %s: EMAIL_SENDER %q: %w", id, from, err)
		}
		if done[addr.Address] {
			continue
		}
		done[addr.Address] = true
		_, err = r.ses.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(addr.Address)})
		var exists *sestypes.AlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("verify sender %s in SES: %w", addr.Address, err)
		}
	}
	return nil
}

// errTimeout is the error of an invocation that ran past its function's timeout.
var errTimeout = errors.New("Task timed out")

// invocationError is a function error, as Lambda reports it.
type invocationError struct {
	outcome string
	err     error
}

func (e *invocationError) Error() string { return e.err.Error() }
func (e *invocationError) Unwrap() error { return e.err }

// invoke runs fn on event, as Lambda would: the event and the answer go
// through JSON, the context carries the Lambda context and the function's
// timeout as deadline, and a panic is the function's error. The answer is
// decoded into out. The returned error is an *invocationError.
func (r *Runner) invoke(ctx context.Context, fn *function, event, out any) (requestID string, err error) {
	requestID = uuid.NewString()
	// The invocation's span, as Lambda's segment in X-Ray: a child of the
	// gateway's for the API, a root for an event source mapping's batch.
	ctx, span := tracing.Start(ctx, fn.id, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.Function.String(fn.id), tracing.InvocationID.String(requestID)))
	defer func() {
		tracing.End(span, err)
	}()
	ctx = tracing.WithFunction(ctx, fn.id)
	payload, err := json.Marshal(event)
	if err != nil {
		return requestID, &invocationError{OutcomeError, fmt.Errorf("encode event: %w", err)}
	}
	if fn.remote != nil {
		return requestID, r.invokeRemote(ctx, fn, requestID, payload, out)
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID, InvokedFunctionArn: fn.arn})
	ctx, cancel := context.WithTimeout(ctx, fn.timeout)
	defer cancel()

	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	fn.run(func() (ok bool) {
		defer func() {
			if v := recover(); v != nil {
				r.fnLog.Error("function panicked", "function", fn.id, "aws_request_id", requestID,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				done <- result{err: &invocationError{OutcomePanic, fmt.Errorf("panic: %v", v)}}
			}
		}()
		b, err := lambda.NewHandler(fn.handler).Invoke(ctx, payload)
		done <- result{b, err}
		return true
	})
	select {
	case res := <-done:
		var ie *invocationError
		switch {
		case errors.As(res.err, &ie):
			return requestID, ie
		case res.err != nil:
			return requestID, &invocationError{OutcomeError, res.err}
		}
		if out != nil {
			if err := json.Unmarshal(res.b, out); err != nil {
				return requestID, &invocationError{OutcomeInvalid, fmt.Errorf("decode answer: %w", err)}
			}
		}
		return requestID, nil
	case <-ctx.Done():
		// Lambda would stop the sandbox; the goroutine sees its context end.
		return requestID, &invocationError{OutcomeTimeout, fmt.Errorf("%w after %s", errTimeout, fn.timeout)}
	}
}

// outcomeOf is the outcome of an invocation that returned err.
func outcomeOf(err error) string {
	var ie *invocationError
	if errors.As(err, &ie) {
		return ie.outcome
	}
	if err != nil {
		return OutcomeError
	}
	return OutcomeOK
}

// report logs one line about an invocation and tells Observe.
func (r *Runner) report(ctx context.Context, inv Invocation, requestID string, err error) {
	level := slog.LevelInfo
	switch {
	case inv.Outcome == OutcomePartial:
		level = slog.LevelWarn
	case inv.Outcome != OutcomeOK:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("function", inv.Function),
		slog.String("trigger", inv.Trigger),
		slog.String("source", inv.Source),
		slog.Float64("duration_ms", float64(inv.Duration.Microseconds())/1000),
		slog.String("outcome", inv.Outcome),
		slog.String("aws_request_id", requestID),
	}
	if inv.Status != 0 {
		attrs = append(attrs, slog.Int("status", inv.Status))
	}
	if inv.Trigger == triggerSQS || inv.Trigger == triggerStream {
		attrs = append(attrs, slog.Int("records", inv.Records), slog.Int("failures", inv.Failures))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	r.log.LogAttrs(ctx, level, "invoke", attrs...)
	if r.cfg.Observe != nil {
		r.cfg.Observe(inv)
	}
}

// Triggers of an invocation.
const (
	triggerAPI        = "api"
	triggerAuthorizer = "authorizer"
	triggerSQS        = "sqs"
	triggerStream     = "dynamodb"
)
