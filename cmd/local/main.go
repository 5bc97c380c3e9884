// Command local runs the whole service on one machine from template.yaml:
// the REST API on 127.0.0.1:3000 with its authorizer, and the stream and
// queue consumers, against DynamoDB Local and moto (or LocalStack).
//
//	go run ./cmd/emulators -- go run ./cmd/local      (what make run does)
//	go run ./cmd/local token --sub alice --roles admin --ttl 1h
//	go run ./cmd/local jwks --key localstack/.jwt/key.pem
//
// Endpoints come from the SDK's AWS_ENDPOINT_URL[_<SERVICE>] variables,
// which cmd/emulators sets for its child. See cmd/local/internal/runner for
// how the template becomes behaviour.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/chronicle-go/chronicle/cmd/local/internal/localjwt"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stop, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the exit code. stop undoes the signal handling, so that a
// second Ctrl-C during shutdown kills the process.
func run(ctx context.Context, stop func(), args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return token(args[1:], getenv, stdout, stderr)
		case "jwks":
			return jwks(args[1:], stdout, stderr)
		case "env":
			return printEnv(args[1:], stdout, stderr)
		case "invoke":
			return invokeCommand(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
		case "generate-event":
			return generateEvent(args[1:], getenv, stdout, stderr)
		}
	}
	opts, err := parseServe(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "local:", err)
		return 2
	}
	if opts.checkPort {
		if err := checkPort(opts, getenv); err != nil {
			fmt.Fprintln(stderr, "local:", err)
			return 1
		}
		return 0
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))
	if err := serve(ctx, stop, opts, getenv, logger, stdout); err != nil {
		// A runner that never served says so, and at which step, apart
		// from one that failed while serving.
		if se, ok := errors.AsType[*startError](err); ok {
			logger.Error("runner did not start", "step", se.step, "error", se.err)
		} else {
			logger.Error("runner stopped", "error", err)
		}
		return 1
	}
	return 0
}

// startError is a failure before the runner served anything.
type startError struct {
	step string
	err  error
}

func (e *startError) Error() string { return e.step + ": " + e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func startFailed(step string, err error) error { return &startError{step: step, err: err} }

// checkPort fails, naming the way to move the runner, when its address is
// taken: make run calls it before it starts the emulators, which a second
// make run would otherwise start for nothing.
func checkPort(o serveOptions, getenv func(string) string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return portError(o, getenv, err)
	}
	return ln.Close()
}

func portError(o serveOptions, getenv func(string) string, err error) error {
	msg := fmt.Sprintf("cannot listen on %s:%d: %v", o.host, o.port, err)
	if _, url, rerr := runningEnv(defaultEnvFile()); rerr == nil {
		msg += " (a make run is serving " + url + ")"
	}
	return fmt.Errorf("%s\nstop what uses it, or choose another port: PORT=%d make run (or --port %d)", msg, o.port+1, o.port+1)
}

func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// parseSub parses a subcommand's flags; done reports that it must exit
// with code (0 after -h).
func parseSub(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0, true
	} else if err != nil {
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}

// localParameters are template parameters with no default that a local
// run needs; --parameter-overrides wins. JwksUrl is left without a value:
// then the authorizer takes HS256 tokens signed with LOCAL_JWT_SECRET.
var localParameters = map[string]string{
	"JwtIssuer":   auth.LocalIssuer,
	"EmailSender": "no-reply@example.com",
}

type serveOptions struct {
	template, host, stack string
	stateDir              string
	port                  int
	params                map[string]string
	printToken            bool
	writeEnv, checkPort   bool
	rie                   bool
	traces                bool
	riePool               int
	envFile               string
	logLevel              slog.Level
}

func parseServe(args []string, getenv func(string) string, out io.Writer) (serveOptions, error) {
	o := serveOptions{params: map[string]string{}, envFile: defaultEnvFile()}
	port := 3000
	if p := getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return o, fmt.Errorf("PORT=%q is not a port number", p)
		}
		port = n
	}
	fs := newFlagSet("local", out)
	fs.StringVar(&o.template, "template", "template.yaml", "the SAM template to serve")
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&o.port, "port", port, "port to listen on; $PORT, when set, is the default")
	fs.StringVar(&o.stack, "stack-name", "chronicle-local", "stack name: resources are named after it")
	var overrides string
	fs.StringVar(&overrides, "parameter-overrides", "", `template parameters, "Key=Value Key=Value" as sam deploy takes them`)
	fs.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "where the stream mappings' positions are kept across restarts (\"\": nowhere)")
	fs.BoolVar(&o.printToken, "print-token", false, "print an admin token for curl at start-up")
	fs.BoolVar(&o.writeEnv, "write-env", false, "while serving, write the emulators' endpoints to "+o.envFile+" for: eval \"$(go run ./cmd/local env)\"")
	fs.BoolVar(&o.rie, "rie", false, "run every function as its own bootstrap process under the Lambda Runtime Interface Emulator, as Lambda runs the shipped binary, instead of in process (built into ~/.cache/chronicle)")
	fs.BoolVar(&o.traces, "traces", true, "collect the functions' OpenTelemetry spans and serve each trace at GET /_local/traces/{request id} (chronicle trace prints it); with --rie, only the runner's own spans")
	fs.IntVar(&o.riePool, "rie-pool", 2, "with --rie: execution environments per function (each serves one invocation at a time)")
	fs.BoolVar(&o.checkPort, "check-port", false, "only check that the port is free (make run does, before it starts the emulators)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: local [flags]\n       local env\n       local invoke <LogicalId> --event <file|-> [--env-vars env.json]\n       local generate-event [api|authorizer|dynamodb|sqs]\n       local token [--sub alice] [--roles admin] [--ttl 1h]\n       local jwks --key file.pem\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("--log-level: %w", err)
	}
	for k, v := range localParameters {
		o.params[k] = v
	}
	for _, kv := range strings.Fields(overrides) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return o, fmt.Errorf("--parameter-overrides: %q is not Key=Value", kv)
		}
		o.params[k] = v
	}
	return o, nil
}

func serve(ctx context.Context, stop func(), o serveOptions, getenv func(string) string, logger *slog.Logger, stdout io.Writer) error {
	if getenv("AWS_ENDPOINT_URL") == "" && (getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" || getenv("AWS_ENDPOINT_URL_SQS") == "") {
		return startFailed("endpoints", errors.New("no emulator endpoints in the environment (AWS_ENDPOINT_URL, or AWS_ENDPOINT_URL_DYNAMODB and _SQS): "+
			"run it through make run, or go run ./cmd/emulators -- go run ./cmd/local, so that it never touches a real account"))
	}
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return startFailed("aws config", err)
	}
	// Tests that run the runner as a process check its functions' calls
	// against their roles (see infra/iamcheck).
	var iam []iamcheck.Sink
	if dir := getenv(iamcheck.LogDirEnv); dir != "" {
		sink, err := iamcheck.FileSink(dir)
		if err != nil {
			return startFailed("iam log", err)
		}
		iam = []iamcheck.Sink{sink}
	}
	launcher, err := rieLauncher(ctx, o, getenv)
	if err != nil {
		return startFailed("rie", err)
	}
	r, err := runner.New(runner.Config{
		Template: o.template, Parameters: o.params, StackName: o.stack, AWS: cfg, Getenv: getenv, Logger: logger,
		IAM:      iam,
		StateDir: o.stateDir,
		RIE:      launcher,
		Tracing:  o.traces,
	})
	if err != nil {
		return startFailed("template", err)
	}
	// Listen first: a port in use is the likeliest failure, and the cheapest.
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return startFailed("listen", portError(o, getenv, err))
	}
	if err := r.Provision(ctx); err != nil {
		ln.Close()
		if ctx.Err() != nil {
			logger.Info("interrupted during start-up")
			return nil
		}
		return startFailed("provision", err)
	}
	url := "http://" + ln.Addr().String()
	if o.writeEnv && o.envFile != "" {
		remove, err := writeEnvFile(o.envFile, envFileContent(os.Getpid(), url, o.stack, getenv))
		if err != nil {
			ln.Close()
			return startFailed("env file", err)
		}
		defer remove()
	}
	fmt.Fprintf(stdout, "\nChronicle is serving %s (stack %s, template %s)\n", url, o.stack, o.template)
	if o.writeEnv && o.envFile != "" {
		fmt.Fprintf(stdout, "In another shell, for the emulators and the chronicle CLI:  eval \"$(go run ./cmd/local env)\"\n")
	}
	if o.params["JwksUrl"] == "" { // else the authorizer takes RS256 tokens of an issuer, not ours
		// The token rides in the fragment, which the browser never sends:
		// the page reads it and drops it from the address bar.
		tok, err := minter(getenv).Mint("alice", []string{"admin"}, 8*time.Hour)
		if err != nil {
			return startFailed("token", err)
		}
		fmt.Fprintf(stdout, "Audit console (signed in as alice, admin, for 8h):  %s/console#token=%s\n", url, tok)
	}
	fmt.Fprintf(stdout, "Mint an admin token:  export TOKEN=$(go run ./cmd/local token --sub alice --roles admin --ttl 1h)\n")
	fmt.Fprintf(stdout, "Then:                 curl -s %s/users/... -H \"Authorization: Bearer $TOKEN\"\n", url)
	if o.traces {
		fmt.Fprintf(stdout, "A request's trace:    curl -s %s%s<X-Request-Id>   (or: chronicle trace <X-Request-Id>)\n", url, "/_local/traces/")
	}
	if o.printToken {
		tok, err := minter(getenv).Mint("alice", []string{"admin"}, time.Hour)
		if err != nil {
			return startFailed("token", err)
		}
		fmt.Fprintf(stdout, "Admin token (sub alice, 1h): %s\n", tok)
	}
	fmt.Fprintf(stdout, "Stop with Ctrl-C.\n\n")

	err = r.Serve(ctx, ln)
	stop()
	if err == nil {
		logger.Info("stopped: requests and batches in flight have finished")
	}
	return err
}

// defaultStateDir is chronicle/runner under the user's cache directory, or
// nothing when there is none.
func defaultStateDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "chronicle", "runner")
}

// awsConfig is the SDK's default configuration, with what the emulators
// need when the environment does not say: a region, test credentials, and
// checksums only where an operation requires them (the emulators send none).
func awsConfig(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion("us-east-1"),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
	}
	if getenv("AWS_ACCESS_KEY_ID") == "" && getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	return cfg, nil
}

func minter(getenv func(string) string) localjwt.Minter {
	secret := getenv("LOCAL_JWT_SECRET")
	if secret == "" {
		secret = auth.LocalSecret
	}
	return localjwt.Minter{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, Secret: []byte(secret)}
}

// token prints a bearer token: HS256 with LOCAL_JWT_SECRET (default
// dev-secret), as the local authorizer takes them, or RS256 with --key.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "alice", "subject: the actor recorded on events")
	roles := fs.String("roles", "", `roles, comma or space separated ("admin" may do everything)`)
	ttl := fs.Duration("ttl", time.Hour, "validity")
	m := minter(getenv)
	fs.StringVar(&m.Issuer, "issuer", m.Issuer, "iss claim")
	fs.StringVar(&m.Audience, "audience", m.Audience, "aud claim")
	key := fs.String("key", "", "RSA private key (PEM) to sign RS256 with, instead of HS256 with LOCAL_JWT_SECRET")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key != "" {
		k, err := localjwt.LoadKey(*key)
		if err != nil {
			fmt.Fprintln(stderr, "token:", err)
			return 1
		}
		m.Key, m.KeyID = k, localjwt.KeyID(k)
	}
	tok, err := m.Mint(*sub, strings.FieldsFunc(*roles, func(r rune) bool { return r == ',' || r == ' ' }), *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// jwks prints the JWKS of an RSA key (created when the file does not
// exist), for a deployment whose JwksUrl serves it.
func jwks(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jwks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "RSA private key (PEM); created when missing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key == "" {
		fmt.Fprintln(stderr, "jwks: --key is required")
		return 2
	}
	k, err := localjwt.LoadOrCreateKey(*key)
	if err != nil {
		fmt.Fprintln(stderr, "jwks:", err)
		return 1
	}
	b, err := localjwt.JWKS(k, localjwt.KeyID(k))
	if err != nil {
		fmt.Fprintln(stderr, "jwks:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}
