package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
)

// invokeUsage is the help of "local invoke".
const invokeUsage = `usage: local invoke <LogicalId> --event <file|-> [--env-vars env.json] [flags]

Invokes one function of the template as sam local invoke does, without
Docker: its bootstrap, built for this machine (or --arch arm64, the
shipped build, under qemu-aarch64-static), runs as a plain process under
the AWS Lambda Runtime Interface Emulator, with the template's
environment (its references resolved to the stack's tables and queues),
timeout and memory. The answer goes to stdout; the function's logs, with
the START, END and REPORT lines (Init Duration on the first), to stderr.
A function error is printed as Lambda reports it and exits 1.

It uses the emulators of the running make run (its env file), else those
of AWS_ENDPOINT_URL[_<SERVICE>], else starts a pair of its own for the
one invocation; the stack's tables and queues are created when missing.
The bootstraps and the emulator are built into ~/.cache/chronicle.
Events: go run ./cmd/local generate-event.

flags:`

// invokeOptions are the flags of "local invoke".
type invokeOptions struct {
	id, event, envVars   string
	template, stack      string
	arch                 string
	verbose              bool
	params               map[string]string
	envFile              string
	startEmulatorsIfNone bool
}

// nestedInvoke marks an invoke that runs under emulators it started, so
// that it never starts them again.
const nestedInvoke = "CHRONICLE_INVOKE_UNDER_EMULATORS"

func invokeCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := invokeOptions{params: map[string]string{}, envFile: defaultEnvFile(), startEmulatorsIfNone: getenv(nestedInvoke) == ""}
	fs := newFlagSet("invoke", stderr)
	fs.StringVar(&o.event, "event", "", "the event: a JSON file, or - for stdin (required)")
	fs.StringVar(&o.envVars, "env-vars", "", `JSON file of variables to override, as sam's: {"CommandsFunction": {"SNAPSHOT_INTERVAL": "0"}, "Parameters": {...for all}}`)
	fs.StringVar(&o.template, "template", "template.yaml", "the SAM template")
	fs.StringVar(&o.stack, "stack-name", "", "stack whose tables and queues the function uses (default: the running make run's, else chronicle-local)")
	fs.StringVar(&o.arch, "arch", "host", `"host", or "arm64": the shipped linux/arm64 build, under qemu-aarch64-static`)
	fs.BoolVar(&o.verbose, "verbose", false, "also print the emulator's own log lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, invokeUsage)
		fs.PrintDefaults()
	}
	// The logical id may come before the flags, as sam takes it.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	rest := fs.Args()
	if o.id == "" && len(rest) > 0 {
		o.id, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 || o.id == "" || o.event == "" {
		fs.Usage()
		return 2
	}
	for k, v := range localParameters {
		o.params[k] = v
	}
	payload, err := readEvent(o.event, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "invoke:", err)
		return 1
	}

	// Where the emulators are: the running make run's, the environment's,
	// or a pair started for this invocation.
	env := getenv
	if content, _, err := runningEnv(o.envFile); err == nil && getenv("AWS_ENDPOINT_URL") == "" && getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		vars := parseExports(content)
		env = func(k string) string {
			if v, ok := vars[k]; ok {
				return v
			}
			return getenv(k)
		}
		if o.stack == "" {
			o.stack = vars["CHRONICLE_STACK"]
		}
	}
	if env("AWS_ENDPOINT_URL") == "" && env("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		if !o.startEmulatorsIfNone {
			fmt.Fprintln(stderr, "invoke: no emulator endpoints, even under cmd/emulators")
			return 1
		}
		fmt.Fprintln(stderr, "invoke: no make run is running: starting emulators for this invocation (go run ./cmd/emulators)")
		return underEmulators(ctx, args, o, payload, getenv, stdout, stderr)
	}
	if o.stack == "" {
		o.stack = "chronicle-local"
	}
	answer, err := invokeOnce(ctx, o, payload, env, stderr)
	var fe *rie.FunctionError
	switch {
	case errors.As(err, &fe):
		b, _ := json.Marshal(fe)
		fmt.Fprintln(stdout, string(b))
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "invoke:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(answer))
	return 0
}

// invokeOnce provisions (or reuses) the stack, starts the function's
// bootstrap under the emulator and invokes it once.
func invokeOnce(ctx context.Context, o invokeOptions, payload []byte, getenv func(string) string, stderr io.Writer) (json.RawMessage, error) {
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return nil, err
	}
	platform := rie.Host
	switch o.arch {
	case "host", "":
	case "arm64":
		platform = rie.Shipped
	default:
		return nil, fmt.Errorf("--arch %q: host or arm64", o.arch)
	}
	overrides, err := readEnvVars(o.envVars)
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := rie.ModuleRoot(ctx, cwd)
	if err != nil {
		return nil, err
	}
	// The runner's line about the invocation is of no use here: only
	// warnings (a variable left unset, say) are shown.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := runner.New(runner.Config{Template: o.template, Parameters: o.params, StackName: o.stack, AWS: cfg, Getenv: getenv, Logger: logger})
	if err != nil {
		return nil, err
	}
	code, err := r.CodeName(o.id)
	if err != nil {
		return nil, err
	}
	l, err := rie.NewLauncher(ctx, root, platform, []string{code}, getenv)
	if err != nil {
		return nil, err
	}
	l.PoolSize, l.Output, l.Verbose, l.Overrides = 1, stderr, o.verbose, overrides
	// A second runner, now with the launcher: New is cheap, and the build
	// needed the function's code name first.
	r, err = runner.New(runner.Config{Template: o.template, Parameters: o.params, StackName: o.stack, AWS: cfg, Getenv: getenv, Logger: logger, RIE: l})
	if err != nil {
		return nil, err
	}
	if err := r.Provision(ctx); err != nil {
		return nil, fmt.Errorf("provision stack %s: %w", o.stack, err)
	}
	defer r.Close()
	return r.Invoke(ctx, o.id, payload)
}

// underEmulators runs this invoke again under go run ./cmd/emulators,
// which starts DynamoDB Local and moto around it and stops them after.
func underEmulators(ctx context.Context, args []string, o invokeOptions, payload []byte, getenv func(string) string, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "invoke:", err)
		return 1
	}
	goCmd := getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	// The event was read already: it goes on through stdin.
	child := []string{"run", "./cmd/emulators", "--", self, "invoke", o.id, "--event", "-", "--template", o.template, "--arch", o.arch}
	if o.envVars != "" {
		child = append(child, "--env-vars", o.envVars)
	}
	if o.stack != "" {
		child = append(child, "--stack-name", o.stack)
	}
	if o.verbose {
		child = append(child, "--verbose")
	}
	cmd := exec.CommandContext(ctx, goCmd, child...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(payload), stdout, stderr
	cmd.Env = append(os.Environ(), nestedInvoke+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(stderr, "invoke:", err)
		return 1
	}
	return 0
}

// readEvent reads the event (a file, or stdin for -) and checks it is JSON.
func readEvent(path string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the event: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("the event %s is not JSON", path)
	}
	return b, nil
}

// readEnvVars reads sam's --env-vars file: variables by logical id, and
// under "Parameters" for every function. Values may be strings, numbers
// or booleans, as sam takes them.
func readEnvVars(path string) (map[string]map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--env-vars: %w", err)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("--env-vars %s: want {\"LogicalId\": {\"NAME\": \"value\"}}: %w", path, err)
	}
	out := map[string]map[string]string{}
	for id, vars := range doc {
		out[id] = map[string]string{}
		for k, v := range vars {
			switch v := v.(type) {
			case string:
				out[id][k] = v
			case float64, bool:
				out[id][k] = fmt.Sprint(v)
			default:
				return nil, fmt.Errorf("--env-vars %s: %s.%s: want a string, number or boolean", path, id, k)
			}
		}
	}
	return out, nil
}

// parseExports reads the export lines of the env file (see runenv.go).
func parseExports(content []byte) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		vars[k] = v
	}
	return vars
}
