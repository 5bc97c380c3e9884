//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The tracing group: what OpenTelemetry costs the commands function
// (docs/tracing.md). Command p50 on and off comes from
// infra/lambdafn's BenchmarkTracingCommandLatency (interleaved in one
// process); the size compares the shipped bootstrap with one built with
// -tags chronicle_nootel (the OpenTelemetry API and the X-Ray propagator
// only: no SDK, exporter or otelaws); init, the shipped bootstrap with
// CHRONICLE_TRACING=otlp and =off, in alternation.

const (
	pkgLambdafn    = "infra/lambdafn"
	secTracing     = "Tracing (OpenTelemetry)"
	tracingRounds  = 3
	tracingInits   = 7
	tracingSamples = "tracing" // the samples' package of sizes and inits
)

func init() {
	figureBenchmarks[pkgLambdafn] = append(figureBenchmarks[pkgLambdafn], "BenchmarkTracingCommandLatency")
}

func (b *bench) tracingGroup() group {
	return group{
		name:     "tracing",
		measures: "the commands function with OpenTelemetry tracing on and off: create p50 (interleaved), linux/arm64 size, init",
		tables:   "events, guards and snapshots with the store's key schemas, without a stream",
		rounds: fmt.Sprintf("%d of 200 creates each way, in blocks of 10 alternating; init: %d of each, alternating",
			tracingRounds, tracingInits),
		aws:   true,
		needs: []string{pkgLambdafn},
		run: func(ctx context.Context, env []string, log io.Writer) error {
			if err := b.tracingCosts(ctx, env, log); err != nil {
				b.failed[tracingSamples] = err.Error()
				return err
			}
			inv := invocation{bench: "^BenchmarkTracingCommandLatency$", benchtime: "1x", count: tracingRounds, timeout: 20 * time.Minute}
			return b.runBench(ctx, pkgLambdafn, inv, env, log, 0)
		},
	}
}

// tracingCosts builds the commands function with and without the SDK and
// times its init with tracing on and off.
func (b *bench) tracingCosts(ctx context.Context, env []string, log io.Writer) error {
	dir, err := os.MkdirTemp(b.work, "tracing-*")
	if err != nil {
		return err
	}
	build := func(out, goos, goarch, tags string) (int64, error) {
		cmd := exec.CommandContext(ctx, b.goCmd, "build", "-tags", tags, "-trimpath", "-ldflags=-s -w", "-o", out, "./functions/commands")
		cmd.Dir = b.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if o, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("build commands (%s, %s): %v\n%s", tags, goarch, err, o)
		}
		st, err := os.Stat(out)
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	on, err := build(filepath.Join(dir, "arm64-on"), "linux", "arm64", "lambda.norpc")
	if err != nil {
		return err
	}
	off, err := build(filepath.Join(dir, "arm64-off"), "linux", "arm64", "lambda.norpc,chronicle_nootel")
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "commands linux/arm64: %d bytes with the SDK, %d without\n", on, off)
	b.samples = append(b.samples, Sample{Package: tracingSamples, Benchmark: "size",
		Metrics: map[string]float64{"on-bytes": float64(on), "off-bytes": float64(off)}})

	host := filepath.Join(dir, "host")
	if _, err := build(host, runtime.GOOS, runtime.GOARCH, "lambda.norpc"); err != nil {
		return err
	}
	api, err := startRuntimeAPI()
	if err != nil {
		return err
	}
	defer api.close()
	endpoints := emulatorEndpoints(env)
	fn := function{name: "commands", hostBin: host}
	for r := range tracingInits {
		m := map[string]float64{}
		modes := []string{"off", "otlp"}
		if r%2 == 1 {
			modes = []string{"otlp", "off"}
		}
		for _, mode := range modes {
			d, err := api.initTime(ctx, fn, append(endpoints, "CHRONICLE_TRACING="+mode))
			if err != nil {
				return err
			}
			fmt.Fprintf(log, "init commands CHRONICLE_TRACING=%s round %d: %s\n", mode, r, d)
			m[strings.Replace(mode, "otlp", "on", 1)+"-ms"] = float64(d) / float64(time.Millisecond)
		}
		b.samples = append(b.samples, Sample{Package: tracingSamples, Benchmark: "init", Round: r, Metrics: m})
	}
	return nil
}

// tracingSpecs are the group's figures.
func tracingSpecs() []spec {
	within := func(f Figure, _ []Figure) (string, *bool) {
		return fmt.Sprintf("≤ 1.1× tracing off: %.2f×", f.Ratio), met(f.Ratio <= 1.1)
	}
	return []spec{
		{section: secTracing, name: "Create through the commands handler, p50, tracing on", unit: "ms", pkg: pkgLambdafn,
			bench: "BenchmarkTracingCommandLatency", metric: "on-p50-ms", floorMetric: "off-p50-ms",
			floorName: "tracing off (no provider installed)", target: within},
		{section: secTracing, name: "commands: init (exec → ready), CHRONICLE_TRACING=otlp", unit: "ms", pkg: tracingSamples,
			bench: "init", metric: "on-ms", floorMetric: "off-ms", floorName: "the same binary, CHRONICLE_TRACING=off"},
		{section: secTracing, name: "commands: size (linux/arm64), with the SDK, exporter and otelaws", unit: "MiB", pkg: tracingSamples,
			bench: "size", metric: "on-bytes", floorMetric: "off-bytes", scale: 1.0 / (1 << 20),
			floorName: "built with -tags chronicle_nootel (API and propagator only)"},
	}
}
