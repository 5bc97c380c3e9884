//go:build unix

// Command bench runs every benchmark of the repository and writes
// BENCHMARKS.md and its JSON twin, BENCHMARKS.json: the machine, the date,
// and each figure with its ratio to a floor or a peer measured in the same
// run. It is what make bench runs.
//
//	go run ./cmd/bench [-out BENCHMARKS.md] [-json BENCHMARKS.json] [-groups memory,store,...] [-latency dynamodb=4ms,sqs=10ms] [-keep-logs]
//
// The groups, in the order they run:
//
//	memory     the in-memory kernel against the plain Go aggregate of bench/peer and hallgren/eventsourcing
//	store      append latency and aggregate loads against raw SDK calls, then cold starts
//	api        command throughput over HTTP (the local runner) against a raw handler
//	api-latency  the same at 1 and 8 clients, every AWS call of both delayed as
//	           in a region (-latency, package infra/simlatency)
//	lag        projection lag against a raw stream → SQS → PutItem pipeline
//	projector  projector throughput against a raw receive + PutItem loop
//	scaling    the read side against the write side by projector concurrency (scaling.go)
//	tracing    the commands function with OpenTelemetry tracing on and off:
//	           create p50 (interleaved), size, init (cmd/bench/tracing.go)
//	pii        personal data sealed vs in clear: warm command p50, a 10,000-event
//	           replay, cold create, KMS calls per command (cmd/bench/pii.go)
//	others     every other benchmark of the repository, once
//
// Every group that needs AWS runs on a DynamoDB Local and a moto of its own
// (cmd/emulators -print-env), stopped when the group ends; with
// AWS_ENDPOINT_URL set, all run against that endpoint instead. Test
// binaries and functions are all built first, so that no build shares the
// machine with a measurement. A failed group is reported as such in the
// report, which is written all the same, and the exit code is 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chronicle-go/chronicle/infra/simlatency"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

type options struct {
	out, json string
	groups    []string
	keepLogs  bool
	latency   simlatency.Delays // of the api-latency group
}

var allGroups = []string{"memory", "store", "api", "api-latency", "lag", "projector", "feed", "scaling", "tracing", "pii", "others"}

func parseOptions(args []string) (options, error) {
	var o options
	var groups string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", "the report")
	fs.StringVar(&o.json, "json", "BENCHMARKS.json", "the report's JSON twin")
	fs.StringVar(&groups, "groups", strings.Join(allGroups, ","), "the groups to run")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the logs and binaries of a successful run")
	latency := fs.String("latency", simlatency.Default, "the delay of each AWS call in the api-latency group")
	usage := "usage: bench [-out BENCHMARKS.md] [-json BENCHMARKS.json] [-groups %s] [-latency %s] [-keep-logs]"
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w\n"+usage, err, strings.Join(allGroups, ","), simlatency.Default)
	}
	d, err := simlatency.Parse(*latency)
	if err != nil || d == nil {
		return o, fmt.Errorf("-latency %q: want delays such as %s (%v)", *latency, simlatency.Default, err)
	}
	o.latency = d
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for g := range strings.SplitSeq(groups, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if !slices.Contains(allGroups, g) {
			return o, fmt.Errorf("-groups: no group %q: want some of %s", g, strings.Join(allGroups, ","))
		}
		o.groups = append(o.groups, g)
	}
	return o, nil
}

// bench is one run: where its files go and what it has measured.
type bench struct {
	getenv  func(string) string
	log     io.Writer // progress
	goCmd   string
	repo    string
	work    string // binaries and logs
	samples []Sample
	failed  map[string]string // package → why its figures are missing
	report  Report
	// external is set when AWS_ENDPOINT_URL names the endpoint to use.
	external bool
	emuBin   string
	ddbVer   string
	bins     map[string]testBinary // by package
	fns      []function
	fnErr    error
	latency  simlatency.Delays // of the api-latency group
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	opts, err := parseOptions(args)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	start := time.Now()
	repo, err := os.Getwd()
	if err == nil {
		_, err = os.Stat(filepath.Join(repo, "bench", "go.mod"))
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: run me from the repository's root (make bench):", err)
		return 2
	}
	work, err := os.MkdirTemp("", "chronicle-bench-*")
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	b := &bench{getenv: getenv, log: stderr, goCmd: or(getenv("GO"), "go"), repo: repo, work: work,
		failed: map[string]string{}, external: getenv("AWS_ENDPOINT_URL") != ""}
	b.report.Generated = start.UTC()
	b.report.Machine = readMachine(ctx, b.goCmd, repo)
	b.progress("machine: %s; binaries and logs in %s", b.report.Machine, work)

	b.latency = opts.latency
	ok := b.runAll(ctx, opts.groups)
	b.report.Machine.DynamoDBLocal = b.ddbVer
	b.report.Elapsed = time.Since(start)
	if err := b.write(opts); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	b.progress("wrote %s and %s in %s", opts.out, opts.json, b.report.Elapsed.Round(time.Second))
	if !ok || ctx.Err() != nil {
		b.progress("some groups failed; their logs are in %s", filepath.Join(work, "logs"))
		return 1
	}
	if opts.keepLogs {
		b.progress("logs kept in %s", work)
	} else {
		os.RemoveAll(work)
	}
	return 0
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// group is a set of benchmarks run together.
type group struct {
	name, measures, tables, rounds string
	aws                            bool     // needs the emulators
	needs                          []string // test binaries, by package
	run                            func(ctx context.Context, env []string, log io.Writer) error
}

// runAll builds what the groups need, runs them in order and computes the
// figures. It reports whether every group succeeded.
func (b *bench) runAll(ctx context.Context, names []string) bool {
	binDir, logDir := filepath.Join(b.work, "bin"), filepath.Join(b.work, "logs")
	for _, d := range []string{binDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.progress("%v", err)
			return false
		}
	}
	others, err := discoverOthers(b.repo)
	if err != nil {
		b.progress("find benchmarks: %v", err)
		return false
	}
	groups := b.groups(others)
	var selected []group
	for _, g := range groups {
		if slices.Contains(names, g.name) {
			selected = append(selected, g)
		}
	}

	// Build everything first.
	buildStart := time.Now()
	b.bins = map[string]testBinary{}
	buildErr := map[string]error{}
	needAWS := false
	for _, g := range selected {
		needAWS = needAWS || g.aws
		for _, pkg := range g.needs {
			if _, done := b.bins[pkg]; done || buildErr[pkg] != nil {
				continue
			}
			b.progress("build %s tests", pkg)
			tb, err := b.compile(ctx, binDir, pkg)
			if err != nil {
				buildErr[pkg] = err
				b.failed[pkg] = "build failed"
				continue
			}
			b.bins[pkg] = tb
		}
	}
	if slices.Contains(names, "store") {
		b.progress("build the functions (host and linux/arm64)")
		b.fns, b.fnErr = buildFunctions(ctx, b.goCmd, b.repo, binDir, functionNames(b.repo))
	}
	if needAWS && !b.external {
		b.emuBin = filepath.Join(binDir, "emulators")
		if out, err := runCmd(ctx, b.repo, nil, b.goCmd, "build", "-o", b.emuBin, "./cmd/emulators"); err != nil {
			b.progress("build cmd/emulators: %v\n%s", err, out)
			return false
		}
	}
	b.progress("built in %s", time.Since(buildStart).Round(time.Second))

	ok := true
	for _, g := range selected {
		if ctx.Err() != nil {
			break
		}
		rec := Group{Name: g.name, Measures: g.measures, Tables: g.tables, Rounds: g.rounds, Emulators: "none"}
		var missing []error
		for _, pkg := range g.needs {
			if err := buildErr[pkg]; err != nil {
				missing = append(missing, err)
			}
		}
		if len(missing) > 0 && len(missing) == len(g.needs) {
			rec.Error = errors.Join(missing...).Error()
			b.report.Groups = append(b.report.Groups, rec)
			b.progress("[%s] skipped: %v", g.name, rec.Error)
			ok = false
			continue
		}
		err := b.runGroup(ctx, g, &rec, logDir)
		if err == nil && len(missing) > 0 {
			err = errors.Join(missing...)
		}
		if err != nil {
			rec.Error = err.Error()
			ok = false
			b.progress("[%s] failed after %s: %v", g.name, rec.Elapsed.Round(time.Second), err)
		} else {
			b.progress("[%s] done in %s", g.name, rec.Elapsed.Round(time.Second))
		}
		b.report.Groups = append(b.report.Groups, rec)
	}

	specs := append(figureSpecs(), tracingSpecs()...)
	if len(b.fns) > 0 {
		var names []string
		for _, f := range b.fns {
			if f.name != floorFunction {
				names = append(names, f.name)
			}
		}
		specs = append(specs, coldStartSpecs(names)...)
	}
	var keep []spec
	for _, sp := range specs {
		if slices.Contains(names, groupOf(sp)) {
			keep = append(keep, sp)
		}
	}
	b.report.Figures = computeFigures(keep, b.samples, b.failed)
	b.report.Samples = b.samples
	return ok
}

// groupOf names the group that measures a figure.
func groupOf(sp spec) string {
	switch {
	case sp.pkg == pkgPeer:
		return "memory"
	case sp.section == secFeed:
		return "feed"
	case sp.pkg == pkgDynamo, sp.section == secColdStart:
		return "store"
	case sp.bench == "BenchmarkProjectionLag":
		return "lag"
	case sp.section == secScaling:
		return "scaling"
	case sp.section == secAPILatency:
		return "api-latency"
	case sp.pkg == pkgLoadtest:
		return "api"
	case sp.pkg == pkgProjector:
		return "projector"
	case sp.section == secTracing:
		return "tracing"
	case sp.section == secPII:
		return "pii"
	}
	return ""
}

// runGroup runs g on emulators of its own when it needs AWS.
func (b *bench) runGroup(ctx context.Context, g group, rec *Group, logDir string) error {
	logFile, err := os.Create(filepath.Join(logDir, g.name+".log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	rec.LoadBefore = loadAverage()
	start := time.Now()
	defer func() {
		rec.Elapsed = time.Since(start)
		rec.LoadAfter = loadAverage()
	}()
	var env []string
	if g.aws {
		switch {
		case b.external:
			rec.Emulators = "the endpoint of AWS_ENDPOINT_URL"
		default:
			b.progress("[%s] start the emulators", g.name)
			emu, err := startEmulators(ctx, b.emuBin, filepath.Join(logDir, g.name+"-emulators.log"))
			if err != nil {
				return err
			}
			defer emu.stop()
			env = emu.env
			rec.Emulators = "fresh DynamoDB Local + moto"
			if b.ddbVer == "" {
				b.ddbVer = dynamoDBLocalVersion(ctx, emu.jar)
			}
		}
	}
	b.progress("[%s] %s", g.name, g.measures)
	return g.run(ctx, env, logFile)
}

// runBench runs a test binary's benchmarks and keeps their samples.
func (b *bench) runBench(ctx context.Context, pkg string, inv invocation, env []string, log io.Writer, round int) error {
	tb, ok := b.bins[pkg]
	if !ok {
		return fmt.Errorf("no test binary for %s", pkg)
	}
	samples, err := tb.run(ctx, inv, env, log, round)
	b.samples = append(b.samples, samples...)
	if err != nil {
		b.failed[pkg] = "see the group's log"
	}
	return err
}

// compile builds a package's test binary: in the bench module for bench/...
func (b *bench) compile(ctx context.Context, binDir, pkg string) (testBinary, error) {
	env := os.Environ()
	modRoot := b.repo
	if rest, ok := strings.CutPrefix(pkg, "bench/"); ok {
		modRoot = filepath.Join(b.repo, "bench")
		env = append(env, "GOFLAGS="+strings.TrimSpace(b.getenv("GOFLAGS")+" -mod=mod"))
		tb, err := compile(ctx, b.goCmd, modRoot, filepath.Join(modRoot, rest), binDir, env)
		tb.pkg = pkg
		return tb, err
	}
	return compile(ctx, b.goCmd, modRoot, filepath.Join(b.repo, filepath.FromSlash(pkg)), binDir, env)
}

// write writes the report's two files.
func (b *bench) write(o options) error {
	j, err := b.report.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.json, j, 0o644); err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(b.report.Markdown()), 0o644)
}

// functionNames lists functions/*: the Lambda functions.
func functionNames(repo string) []string {
	entries, err := os.ReadDir(filepath.Join(repo, "functions"))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(repo, "functions", e.Name(), "main.go")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	return names
}

// runCmd runs a command in dir and returns its combined output.
func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
