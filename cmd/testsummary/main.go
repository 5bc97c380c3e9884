// Command testsummary reads `go test -json` on stdin, writes the output a
// plain `go test` would show (ok and FAIL lines, build errors, and the
// output of the tests that failed) as it streams, and ends with one line
// that counts the tests:
//
//	make test: 1234 passed, 0 failed, 5 skipped (tests and subtests; 27 packages, 0 failed, 0 failed to build)
//
// Tests and subtests count alike: a table test with three cases counts
// four. Packages without test files are not counted. The exit status is 1
// when a test or a package failed, a build failed, or no package reported
// at all, so that a pipeline ending in it fails as `go test` would.
//
//	go test -json ./... | go run ./cmd/testsummary [-label "make test"] [-summary file]
//
// With -summary the closing line goes to that file instead of stdout, so
// that make test can print it last, after the IAM report.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testsummary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	label := fs.String("label", "go test", "what the closing line names")
	summaryPath := fs.String("summary", "", "write the closing line to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out := bufio.NewWriter(stdout)
	s := newSummary(out)
	if err := s.read(stdin); err != nil {
		out.Flush()
		fmt.Fprintf(stderr, "testsummary: read go test -json: %v\n", err)
		return 1
	}
	line := *label + ": " + s.line() + "\n"
	if *summaryPath != "" {
		if err := os.WriteFile(*summaryPath, []byte(line), 0o644); err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "testsummary: %v\n", err)
			return 1
		}
	} else {
		out.WriteString(line)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "testsummary: %v\n", err)
		return 1
	}
	if s.bad() {
		return 1
	}
	return 0
}

// event is one line of `go test -json` (cmd/test2json), with the build
// events of Go 1.24 and later (ImportPath, build-output, build-fail,
// FailedBuild).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

type testKey struct{ pkg, test string }

// summary counts the events and holds each running test's output until
// the test ends: printed if it failed, dropped if it passed, as a plain
// `go test` does; a skipped test is named with its reason, since under
// make test a skip is a test that did not run.
type summary struct {
	out     *bufio.Writer
	running map[testKey][]string

	passed, failed, skipped  int
	packages, packagesFailed int
	buildFailed              map[string]bool // the packages whose build failed
}

func newSummary(out *bufio.Writer) *summary {
	return &summary{out: out, running: map[testKey][]string{}, buildFailed: map[string]bool{}}
}

// read handles stdin line by line; a line that is not a JSON event (an
// emulator's message, a go command error) is passed through unchanged.
// The output is flushed after each line so that the log streams.
func (s *summary) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			s.handle(line)
			if ferr := s.out.Flush(); ferr != nil {
				return fmt.Errorf("write: %w", ferr)
			}
		}
		if errors.Is(err, io.EOF) {
			s.flushUnfinished()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *summary) handle(line string) {
	var e event
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Action == "" {
		s.write(line)
		if !strings.HasSuffix(line, "\n") {
			s.write("\n")
		}
		return
	}
	switch e.Action {
	case "build-output":
		s.write(e.Output)
		return
	case "build-fail":
		s.buildFailed[packageOf(e.ImportPath)] = true
		return
	}
	if e.Test == "" {
		s.packageEvent(e)
		return
	}
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "output":
		if !framing(e.Output) {
			s.running[k] = append(s.running[k], e.Output)
		}
	case "pass":
		s.passed++
		delete(s.running, k)
	case "skip":
		// Under make test a skip is a test that did not run: say which,
		// and why (its output holds the reason).
		s.skipped++
		s.write(fmt.Sprintf("skipped: %s %s\n", e.Package, e.Test))
		for _, o := range s.running[k] {
			if !strings.HasPrefix(strings.TrimSpace(o), "--- SKIP") {
				s.write(o)
			}
		}
		delete(s.running, k)
	case "fail":
		s.failed++
		for _, o := range s.running[k] {
			s.write(o)
		}
		delete(s.running, k)
	}
}

func (s *summary) packageEvent(e event) {
	switch e.Action {
	case "output":
		// A plain go test swallows the PASS of a passing package's binary.
		if e.Output != "PASS\n" {
			s.write(e.Output)
		}
		if strings.Contains(e.Output, "[build failed]") || strings.Contains(e.Output, "[setup failed]") {
			// Before Go 1.24 this line is all the stream says of a failed build.
			s.buildFailed[e.Package] = true
		}
	case "pass":
		s.packages++
	case "fail":
		s.packages++
		if e.FailedBuild != "" {
			s.buildFailed[e.Package] = true
		}
		if !s.buildFailed[e.Package] {
			s.packagesFailed++
		}
		// A test binary that died (panic, timeout) leaves tests that never
		// ended: their output explains the failure.
		s.flushPackage(e.Package)
	case "skip": // no test files
	}
}

// flushPackage prints the held output of pkg's tests that never ended.
func (s *summary) flushPackage(pkg string) {
	for k, lines := range s.running {
		if k.pkg != pkg {
			continue
		}
		for _, o := range lines {
			s.write(o)
		}
		delete(s.running, k)
	}
}

// flushUnfinished prints the held output of every test still running at
// the end of the input: go test itself was stopped.
func (s *summary) flushUnfinished() {
	for k, lines := range s.running {
		for _, o := range lines {
			s.write(o)
		}
		delete(s.running, k)
	}
}

func (s *summary) write(text string) { s.out.WriteString(text) }

func (s *summary) bad() bool {
	return s.failed > 0 || s.packagesFailed > 0 || len(s.buildFailed) > 0 || s.packages == 0
}

func (s *summary) line() string {
	l := fmt.Sprintf("%d passed, %d failed, %d skipped (tests and subtests; %s, %d failed, %d failed to build)",
		s.passed, s.failed, s.skipped, plural(s.packages, "package"), s.packagesFailed, len(s.buildFailed))
	if s.packages == 0 && len(s.buildFailed) == 0 {
		l += "; no package reported"
	}
	return l
}

// framing tells the lines of go test -v that a plain go test does not
// print: a test starting, pausing, resuming or being named again.
func framing(output string) bool {
	for _, p := range []string{"=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME "} {
		if strings.HasPrefix(output, p) {
			return true
		}
	}
	return false
}

// packageOf turns "pkg [pkg.test]" (a build-fail's ImportPath) into "pkg".
func packageOf(importPath string) string {
	if i := strings.Index(importPath, " "); i >= 0 {
		return importPath[:i]
	}
	return importPath
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
