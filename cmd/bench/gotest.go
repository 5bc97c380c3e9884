//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sample is one result line of a benchmark: its metrics by unit, such as
// "ns/op", "p50-ms" or "events/s".
type Sample struct {
	Package   string             `json:"package"`
	Benchmark string             `json:"benchmark"` // without the -GOMAXPROCS suffix
	Round     int                `json:"round"`
	Metrics   map[string]float64 `json:"metrics"`
}

// procSuffix is the -GOMAXPROCS suffix go test adds to benchmark names.
var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads go test -bench output. A result line is the benchmark's
// name, its iteration count and value-unit pairs; whatever the benchmark
// itself printed to stdout may stand between the name and the rest, on the
// same line or on lines of their own, so a name waits for its numbers.
func parseBench(r io.Reader, pkg string, round int) ([]Sample, error) {
	var out []Sample
	pending := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(fields[0], "Benchmark") {
			pending = procSuffix.ReplaceAllString(fields[0], "")
			fields = fields[1:]
		}
		if pending == "" {
			continue
		}
		if m, ok := metrics(fields); ok {
			out = append(out, Sample{Package: pkg, Benchmark: pending, Round: round, Metrics: m})
			pending = ""
		}
	}
	return out, sc.Err()
}

// metrics reads "N v1 u1 v2 u2 ...", the part of a result line after the
// name.
func metrics(fields []string) (map[string]float64, bool) {
	if len(fields) < 3 || len(fields)%2 == 0 {
		return nil, false
	}
	if _, err := strconv.ParseInt(fields[0], 10, 64); err != nil {
		return nil, false
	}
	m := map[string]float64{}
	for i := 1; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil || strings.ContainsAny(fields[i+1], "{}\"") {
			return nil, false
		}
		m[fields[i+1]] = v
	}
	return m, true
}

// testBinary is a package's test binary, built once and run as often as a
// group needs.
type testBinary struct {
	pkg  string // import path relative to its module: "infra/dynamo"
	dir  string // the package's directory: tests run there
	path string
}

// compile builds the test binary of the package in dir (module root
// modRoot) into binDir.
func compile(ctx context.Context, goCmd, modRoot, dir, binDir string, env []string) (testBinary, error) {
	rel, err := filepath.Rel(modRoot, dir)
	if err != nil {
		return testBinary{}, err
	}
	name := strings.ReplaceAll(rel, string(filepath.Separator), "_") + ".test"
	tb := testBinary{pkg: filepath.ToSlash(rel), dir: dir, path: filepath.Join(binDir, name)}
	cmd := exec.CommandContext(ctx, goCmd, "test", "-c", "-o", tb.path, "./"+filepath.ToSlash(rel))
	cmd.Dir, cmd.Env = modRoot, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return tb, fmt.Errorf("go test -c ./%s: %w\n%s", tb.pkg, err, bytes.TrimSpace(out))
	}
	return tb, nil
}

// invocation is one run of a test binary.
type invocation struct {
	bench     string // -test.bench
	benchtime string
	count     int
	benchmem  bool
	env       []string // added to the environment
	timeout   time.Duration
}

// run runs the binary's benchmarks in its package's directory, writing
// everything it prints to log, and returns the samples of its stdout.
func (tb testBinary) run(ctx context.Context, inv invocation, env []string, log io.Writer, round int) ([]Sample, error) {
	args := []string{"-test.run", "^$", "-test.bench", inv.bench, "-test.count", strconv.Itoa(max(inv.count, 1)),
		"-test.timeout", inv.timeout.String()}
	if inv.benchtime != "" {
		args = append(args, "-test.benchtime", inv.benchtime)
	}
	if inv.benchmem {
		args = append(args, "-test.benchmem")
	}
	ctx, cancel := context.WithTimeout(ctx, inv.timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tb.path, args...)
	cmd.Dir = tb.dir
	cmd.Env = append(append(os.Environ(), env...), inv.env...)
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, log)
	cmd.Stderr = log
	fmt.Fprintf(log, "\n$ (cd %s && %s %s)\n", tb.dir, tb.path, strings.Join(args, " "))
	err := cmd.Run()
	samples, perr := parseBench(&stdout, tb.pkg, round)
	if err != nil {
		return samples, fmt.Errorf("%s -test.bench %s: %w%s", tb.pkg, inv.bench, err, failureLines(stdout.Bytes()))
	}
	return samples, perr
}

// failureLines picks go test's failure report out of its output.
func failureLines(out []byte) string {
	var keep []string
	for line := range strings.SplitSeq(string(out), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--- FAIL") || strings.Contains(t, "_test.go:") || strings.HasPrefix(t, "panic:") {
			keep = append(keep, t)
		}
	}
	if len(keep) > 8 {
		keep = keep[:8]
	}
	if len(keep) == 0 {
		return ""
	}
	return ": " + strings.Join(keep, "; ")
}
