//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/infra/simlatency"
)

// Rounds of each group: enough for a median, within the 15 minutes make
// bench may take on two cores.
const (
	memoryRounds    = 5
	storeRounds     = 3
	apiRounds       = 3
	lagRounds       = 3
	projectorRounds = 3
	coldStartRounds = 7
)

// figureBenchmarks are the benchmarks the figures come from, by package;
// the others group runs every other one.
var figureBenchmarks = map[string][]string{
	pkgDynamo:    {"BenchmarkAppendLatency", "BenchmarkAggregateLoad"},
	pkgLoadtest:  {"BenchmarkCommandThroughput", "BenchmarkCommandLatency", "BenchmarkProjectionLag", "BenchmarkScaling"},
	pkgProjector: {"BenchmarkProjectorThroughput"},
}

// groups defines every group, given the other benchmarks by package.
func (b *bench) groups(others map[string][]string) []group {
	oneRound := func(pkg, bench string, count int) func(context.Context, []string, io.Writer) error {
		return func(ctx context.Context, env []string, log io.Writer) error {
			return b.runBench(ctx, pkg, invocation{bench: bench, benchtime: "1x", count: count, timeout: 10 * time.Minute}, env, log, 0)
		}
	}
	var otherPkgs []string
	for pkg := range others {
		otherPkgs = append(otherPkgs, pkg)
	}
	slices.Sort(otherPkgs)
	return []group{
		{
			name: "memory", measures: "CPU time per operation (user + system, the garbage collector's included) of decide + evolve, a 10,000-event replay and a command on a 10-event aggregate: Chronicle, plain Go and hallgren/eventsourcing in alternation",
			tables: "—", rounds: fmt.Sprintf("%d runs of each, alternating, -benchtime 500ms", memoryRounds),
			needs: []string{pkgPeer},
			run: func(ctx context.Context, env []string, log io.Writer) error {
				for r := range memoryRounds {
					inv := invocation{bench: ".", benchtime: "500ms", benchmem: true, timeout: 5 * time.Minute}
					if err := b.runBench(ctx, pkgPeer, inv, env, log, r); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			name: "store", measures: "append latency, aggregate loads; then every function's cold start",
			tables: "events, guards and snapshots with the store's key schemas, without a stream (neither side reads it)",
			rounds: fmt.Sprintf("%d, each of 500 appends and 500 puts interleaved, and 3–50 loads of each kind interleaved; cold starts: %d", storeRounds, coldStartRounds),
			aws:    true,
			needs:  []string{pkgDynamo},
			run: func(ctx context.Context, env []string, log io.Writer) error {
				err := oneRound(pkgDynamo, "^(BenchmarkAppendLatency|BenchmarkAggregateLoad)$", storeRounds)(ctx, env, log)
				return errors.Join(err, b.coldStarts(ctx, env, log))
			},
		},
		{
			name: "api", measures: "commands/s and latency over HTTP at 1, 8 and 32 clients, service and floor in alternation",
			tables: "template.yaml's, served by the local runner with the relay's stream mapping left out (the read side idle); floor: one table without a stream",
			rounds: fmt.Sprintf("%d, each a 4 s phase of the service then one of the floor, per client count", apiRounds),
			aws:    true,
			needs:  []string{pkgLoadtest},
			run:    oneRound(pkgLoadtest, "^BenchmarkCommandThroughput$", apiRounds),
		},
		{
			name: "api-latency", measures: "as api at 1 and 8 clients, every AWS call of the service and of the floor delayed by " + b.latency.String(),
			tables: "as api",
			rounds: fmt.Sprintf("%d, each a 4 s phase of the service then one of the floor, per client count", apiRounds),
			aws:    true,
			needs:  []string{pkgLoadtest},
			run: func(ctx context.Context, env []string, log io.Writer) error {
				inv := invocation{bench: "^BenchmarkCommandLatency$", benchtime: "1x", count: apiRounds, timeout: 10 * time.Minute,
					env: []string{simlatency.EnvVar + "=" + b.latency.String()}}
				return b.runBench(ctx, pkgLoadtest, inv, env, log, 0)
			},
		},
		{
			name: "lag", measures: "projection lag at 10 commands/s, service and floor in alternation",
			tables: "template.yaml's, every event source mapping running; floor: its own events table with a NEW_IMAGE stream",
			rounds: fmt.Sprintf("%d, each 12 s of the service then 12 s of the floor", lagRounds),
			aws:    true,
			needs:  []string{pkgLoadtest},
			run:    oneRound(pkgLoadtest, "^BenchmarkProjectionLag$", lagRounds),
		},
		{
			name: "projector", measures: "events/s through the projector from a FIFO queue, and through the raw loop, users interleaved and in bursts",
			tables: "read model as template.yaml's; events table without a stream (read only to heal gaps); floor: a table without a stream",
			rounds: fmt.Sprintf("%d, each 600 messages interleaved through the projector then the floor, then 600 in bursts", projectorRounds),
			aws:    true,
			needs:  []string{pkgProjector},
			run:    oneRound(pkgProjector, "^BenchmarkProjectorThroughput$", projectorRounds),
		},
		b.feedGroup(),
		b.scalingGroup(),
		b.tracingGroup(),
		b.piiGroup(),
		{
			name: "others", measures: "every other benchmark of the repository, once",
			tables: "as each benchmark makes them (infra/dynamo's and infra/rebuild's events tables have no stream)",
			rounds: "1, -benchtime 500ms; the rebuild with " + rebuildEvents(b.getenv) + " events",
			aws:    true,
			needs:  otherPkgs,
			run: func(ctx context.Context, env []string, log io.Writer) error {
				var errs []error
				for _, pkg := range otherPkgs {
					if _, ok := b.bins[pkg]; !ok {
						continue // its build failed: reported with the group
					}
					inv := invocation{bench: "^(" + strings.Join(others[pkg], "|") + ")$", benchtime: "500ms", benchmem: true,
						timeout: 10 * time.Minute, env: []string{"CHRONICLE_REBUILD_EVENTS=" + rebuildEvents(b.getenv)}}
					before := len(b.samples)
					err := b.runBench(ctx, pkg, inv, env, log, 0)
					b.report.Others = append(b.report.Others, otherRows(pkg, others[pkg], b.samples[before:], err)...)
					errs = append(errs, err)
				}
				return errors.Join(errs...)
			},
		},
	}
}

// rebuildEvents is the size of infra/rebuild's benchmark in make bench: a
// tenth of its default, which takes minutes; CHRONICLE_REBUILD_EVENTS
// chooses another.
func rebuildEvents(getenv func(string) string) string {
	return or(getenv("CHRONICLE_REBUILD_EVENTS"), "10000")
}

// otherRows are the others group's rows of one package.
func otherRows(pkg string, names []string, samples []Sample, err error) []Other {
	var rows []Other
	for _, s := range samples {
		rows = append(rows, Other{Package: pkg, Benchmark: s.Benchmark, Metrics: s.Metrics})
	}
	if err != nil {
		for _, n := range names {
			if !slices.ContainsFunc(rows, func(o Other) bool { return strings.HasPrefix(o.Benchmark, n) }) {
				rows = append(rows, Other{Package: pkg, Benchmark: n, Error: "no result; see the others group's log"})
			}
		}
	}
	return rows
}

// coldStarts builds nothing (runAll built the functions): it times each
// function's init, in alternation, and records their sizes.
func (b *bench) coldStarts(ctx context.Context, env []string, log io.Writer) error {
	if b.fnErr != nil {
		b.failed["functions/"+floorFunction] = "build failed"
		return b.fnErr
	}
	api, err := startRuntimeAPI()
	if err != nil {
		return err
	}
	defer api.close()
	endpoints := emulatorEndpoints(env)
	if b.external {
		endpoints = []string{"AWS_ENDPOINT_URL=" + b.getenv("AWS_ENDPOINT_URL")}
	}
	for _, fn := range b.fns {
		b.samples = append(b.samples, Sample{Package: "functions/" + fn.name, Benchmark: "size",
			Metrics: map[string]float64{"bytes": float64(fn.sizeBytes)}})
	}
	for r := range coldStartRounds {
		for _, fn := range b.fns {
			d, err := api.initTime(ctx, fn, endpoints)
			if err != nil {
				b.failed["functions/"+fn.name] = err.Error()
				return err
			}
			fmt.Fprintf(log, "cold start %s round %d: %s\n", fn.name, r, d)
			b.samples = append(b.samples, Sample{Package: "functions/" + fn.name, Benchmark: "init", Round: r,
				Metrics: map[string]float64{"ms": float64(d) / float64(time.Millisecond)}})
		}
	}
	return nil
}

// benchFunc finds benchmark functions in a test file.
var benchFunc = regexp.MustCompile(`(?m)^func (Benchmark\w+)\(b \*testing\.B\)`)

// discoverOthers finds the repository's benchmarks that are no figure's
// source, by package: what the others group runs. The bench module is
// left out: its benchmarks are all figures.
func discoverOthers(repo string) (map[string][]string, error) {
	found := map[string][]string{}
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != repo && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" ||
				name == "node_modules" || name == "bin" || path == filepath.Join(repo, "bench")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repo, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		for _, m := range benchFunc.FindAllSubmatch(src, -1) {
			name := string(m[1])
			if !slices.Contains(figureBenchmarks[pkg], name) && !slices.Contains(found[pkg], name) {
				found[pkg] = append(found[pkg], name)
			}
		}
		return nil
	})
	return found, err
}
