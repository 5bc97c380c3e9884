//go:build unix

// Command emulators runs a command with local AWS emulators around it:
// DynamoDB Local (DynamoDB and DynamoDB Streams), moto (SQS, SES) and a
// second moto for KMS, so that the read side's key unwraps never queue
// behind the queues' traffic.
//
//	go run ./cmd/emulators [flags] -- <command> [args...]
//	go run ./cmd/emulators -print-env
//
// -print-env starts a pair of its own and keeps them up until signalled;
// to reach the emulators of a running make run, use
// eval "$(go run ./cmd/local env)" instead.
//
// The child sees the emulators through the SDK's own AWS_ENDPOINT_URL_<SERVICE>
// variables and CHRONICLE_REQUIRE_EMULATORS=1, so integration tests fail instead
// of skipping. When AWS_ENDPOINT_URL is already set (LocalStack, say), nothing is
// started and the child runs against that endpoint.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// childGrace is how long the child may take to exit after a forwarded signal
// before it is killed.
const childGrace = 10 * time.Second

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, logger))
}

type options struct {
	printEnv     bool
	startTimeout time.Duration
	// dataDir, when set, is where DynamoDB Local keeps its database, so
	// that tables and items outlive the run; "" keeps them in memory.
	dataDir string
	child   []string
}

const usage = "usage: emulators [-print-env] [-data-dir DIR] [-start-timeout 60s] -- <command> [args...]"

// parseOptions returns flag.ErrHelp, after writing the usage to help, for
// -h and --help.
func parseOptions(args []string, help io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("emulators", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.printEnv, "print-env", false, "start emulators of its own, print export lines and run until signalled\n(for those of a running make run: eval \"$(go run ./cmd/local env)\")")
	fs.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "how long to wait for the emulators to answer")
	fs.StringVar(&o.dataDir, "data-dir", "", "keep DynamoDB Local's tables in DIR across runs (moto's queues and mails are not kept)\n(default: in memory, lost when the emulators stop)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(help, usage+"\n\nRuns the command with DynamoDB Local and moto started around it and\nAWS_ENDPOINT_URL_<SERVICE> set to reach them.\n\nflags:")
		fs.SetOutput(help)
		fs.PrintDefaults()
		return o, err
	} else if err != nil {
		return o, fmt.Errorf("%w\n%s", err, usage)
	}
	o.child = fs.Args()
	switch {
	case o.printEnv && len(o.child) > 0:
		return o, errors.New("-print-env takes no command")
	case !o.printEnv && len(o.child) == 0:
		return o, errors.New("no command given\n" + usage)
	}
	return o, nil
}

// run returns the process exit code: the child's, or 2 for a usage error,
// or 1 when the emulators could not be brought up.
func run(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger) int {
	opts, err := parseOptions(args, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "emulators:", err)
		return 2
	}

	// Registered before anything starts, so no signal can kill this process
	// while emulators are running; they would be left behind.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if endpoint := getenv("AWS_ENDPOINT_URL"); endpoint != "" {
		if opts.printEnv {
			fmt.Fprintln(os.Stderr, "emulators: AWS_ENDPOINT_URL is set; nothing to start")
			return 2
		}
		logger.Info("AWS_ENDPOINT_URL is set, starting no emulators", "endpoint", endpoint)
		code, _ := runChild(opts.child, map[string]string{requireEnv: "1"}, sigs, nil, logger)
		return code
	}

	st, sig, err := startUnlessSignalled(ctx, sigs, getenv, opts, logger)
	if st != nil {
		defer st.stop(logger)
	}
	if sig != nil {
		logger.Info("interrupted during start-up", "signal", sig)
		return 128 + int(sig.(syscall.Signal))
	}
	if err != nil {
		logger.Error("emulators did not start", "err", err)
		if st != nil {
			st.keepLogs = true
			st.logPaths(logger)
		}
		return 1
	}

	env := childEnv(st, getenv)
	logger.Info("emulators ready",
		"dynamodb", st.ddb.url(), "moto", st.moto.url(), "kms", st.kms.url(), "logs", st.logDir)
	fmt.Fprintln(os.Stderr, "export "+exportLine(env))

	if opts.printEnv {
		for _, kv := range sortedEnv(env) {
			fmt.Printf("export %s=%s\n", kv[0], kv[1])
		}
		return waitForSignal(sigs, st, logger)
	}
	code, interrupted := runChild(opts.child, env, sigs, st, logger)
	if code != 0 && !interrupted {
		st.keepLogs = true
		st.logPaths(logger)
	}
	return code
}

// startUnlessSignalled starts the emulators; a signal during start-up cancels
// it and is returned, so the caller can exit as the signal asks.
func startUnlessSignalled(ctx context.Context, sigs <-chan os.Signal, getenv func(string) string,
	opts options, logger *slog.Logger) (*stack, os.Signal, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	var got os.Signal
	go func() {
		defer close(watcherDone)
		select {
		case got = <-sigs:
			cancel()
		case <-done:
		}
	}()
	st, err := startStack(ctx, getenv, opts.startTimeout, opts.dataDir, logger)
	close(done)
	<-watcherDone
	return st, got, err
}

// waitForSignal keeps the emulators up for -print-env until a signal arrives
// or an emulator dies.
func waitForSignal(sigs <-chan os.Signal, st *stack, logger *slog.Logger) int {
	select {
	case s := <-sigs:
		logger.Info("stopping emulators", "signal", s)
		return 0
	case e := <-st.exited:
		logger.Error("emulator exited", "emulator", e.name, "err", e.err, "log", e.logPath)
		st.keepLogs = true
		return 1
	}
}

// runChild runs the command with extra environment and returns its exit code
// and whether a signal was forwarded to it. A second signal, or a child that
// outlives childGrace after the first, is killed.
func runChild(argv []string, extra map[string]string, sigs <-chan os.Signal, st *stack, logger *slog.Logger) (code int, interrupted bool) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = mergeEnv(os.Environ(), extra)
	if err := cmd.Start(); err != nil {
		logger.Error("start command", "command", argv[0], "err", err)
		return 127, false
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var exited <-chan emulatorExit
	if st != nil {
		exited = st.exited
	}
	var grace <-chan time.Time
	signalled := false
	for {
		select {
		case err := <-waited:
			return exitCode(cmd.ProcessState, err), signalled
		case s := <-sigs:
			if signalled {
				logger.Info("second signal, killing command", "signal", s)
				_ = cmd.Process.Kill()
				continue
			}
			signalled = true
			logger.Info("forwarding signal to command", "signal", s)
			_ = cmd.Process.Signal(s)
			grace = time.After(childGrace)
		case <-grace:
			logger.Warn("command still running after signal, killing it", "grace", childGrace)
			_ = cmd.Process.Kill()
		case e := <-exited:
			// The child will see connection errors; say why once.
			logger.Error("emulator exited while the command runs",
				"emulator", e.name, "err", e.err, "log", e.logPath)
			exited = nil
		}
	}
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	if err != nil {
		return 1
	}
	return 0
}

const requireEnv = "CHRONICLE_REQUIRE_EMULATORS"

// childEnv is what the child needs to reach the emulators through the SDK's
// standard configuration. Region and credentials are only defaulted.
func childEnv(st *stack, getenv func(string) string) map[string]string {
	ddb, moto, kms := st.ddb.url(), st.moto.url(), st.kms.url()
	env := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB":         ddb,
		"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": ddb,
		"AWS_ENDPOINT_URL_SQS":              moto,
		"AWS_ENDPOINT_URL_SES":              moto,
		"AWS_ENDPOINT_URL_SESV2":            moto,
		"AWS_ENDPOINT_URL_KMS":              kms,
		requireEnv:                          "1",
	}
	// AWS_DEFAULT_REGION too, for the AWS CLI in a shell using -print-env.
	if getenv("AWS_REGION") == "" && getenv("AWS_DEFAULT_REGION") == "" {
		env["AWS_REGION"] = "us-east-1"
		env["AWS_DEFAULT_REGION"] = "us-east-1"
	}
	if getenv("AWS_ACCESS_KEY_ID") == "" && getenv("AWS_SECRET_ACCESS_KEY") == "" {
		env["AWS_ACCESS_KEY_ID"] = "test"
		env["AWS_SECRET_ACCESS_KEY"] = "test"
	}
	return env
}

// mergeEnv returns base with the extra variables set, replacing earlier values.
func mergeEnv(base []string, extra map[string]string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := extra[name]; !ok {
			out = append(out, kv)
		}
	}
	for _, kv := range sortedEnv(extra) {
		out = append(out, kv[0]+"="+kv[1])
	}
	return out
}

func exportLine(env map[string]string) string {
	parts := make([]string, 0, len(env))
	for _, kv := range sortedEnv(env) {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, " ")
}

// sortedEnv returns the variables as name/value pairs in name order, so what
// is printed is stable from run to run.
func sortedEnv(env map[string]string) [][2]string {
	out := make([][2]string, 0, len(env))
	for _, name := range slices.Sorted(maps.Keys(env)) {
		out = append(out, [2]string{name, env[name]})
	}
	return out
}
