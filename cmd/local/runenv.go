package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The env file lets another shell reach the emulators of a running make
// run: the runner (with --write-env) writes the endpoints it was given,
// the stack name and its URL as export lines, and removes the file when it
// stops; "local env" prints it for eval. The first line names the writer's
// pid, so that a file left by a killed runner is recognised as stale and a
// runner never removes the file of another.
const envHeader = "# chronicle-local pid "

// runEnvVars are copied from the runner's environment into the file.
var runEnvVars = []string{
	"AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
	"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SES", "AWS_ENDPOINT_URL_SESV2", "AWS_ENDPOINT_URL_KMS",
	"AWS_REGION", "AWS_DEFAULT_REGION",
}

// defaultEnvFile is chronicle/run.env under the user's cache directory.
func defaultEnvFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "chronicle", "run.env")
}

// envFileContent is what a runner of process pid serving url on stack
// writes: only the emulators' test credentials are copied, never real ones.
func envFileContent(pid int, url, stack string, getenv func(string) string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d, serving %s\n", envHeader, pid, url)
	vars := slices.Clone(runEnvVars)
	if getenv("AWS_ACCESS_KEY_ID") == "test" && getenv("AWS_SECRET_ACCESS_KEY") == "test" {
		vars = append(vars, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
	}
	for _, k := range vars {
		if v := getenv(k); v != "" {
			fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
		}
	}
	fmt.Fprintf(&b, "export CHRONICLE_STACK=%s\n", shellQuote(stack))
	fmt.Fprintf(&b, "export CHRONICLE_URL=%s\n", shellQuote(url))
	return b.Bytes()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeEnvFile writes the file whole (a reader never sees half of it) and
// returns the function that removes it, if it is still this process's.
func writeEnvFile(path string, content []byte) (remove func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("env file: %w", err)
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, content) {
			os.Remove(path)
		}
	}, nil
}

// runningEnv returns the env file's content and the URL of the runner
// that wrote it, or an error saying why there is none to use.
func runningEnv(path string) (content []byte, url string, err error) {
	if path == "" {
		return nil, "", errors.New("no cache directory for the env file")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("no make run is running (no %s): start one with make run", path)
	}
	if err != nil {
		return nil, "", err
	}
	first, _ := bufio.NewReader(bytes.NewReader(b)).ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimSpace(first), envHeader)
	pidText, url, _ := strings.Cut(rest, ", serving ")
	pid, perr := strconv.Atoi(pidText)
	if !ok || perr != nil {
		return nil, "", fmt.Errorf("%s: not written by chronicle-local", path)
	}
	if !alive(pid) {
		return nil, "", fmt.Errorf("no make run is running (%s is left from process %d, which has gone): start one with make run", path, pid)
	}
	return b, url, nil
}

// alive says whether process pid exists (signal 0 checks without sending).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// printEnv is "local env": the export lines of the running make run.
func printEnv(args []string, stdout, stderr io.Writer) int {
	fset := newFlagSet("env", stderr)
	path := fset.String("file", defaultEnvFile(), "the env file a runner started with --write-env writes")
	fset.Usage = func() {
		fmt.Fprintln(stderr, `usage: local env [--file path]

Prints, as export lines for eval "$(go run ./cmd/local env)", the endpoints
of the emulators of the running make run, CHRONICLE_STACK (the local
stack's name, for the chronicle CLI) and CHRONICLE_URL. Exits 1 when no
make run is running.

flags:`)
		fset.PrintDefaults()
	}
	if code, done := parseSub(fset, args); done {
		return code
	}
	b, _, err := runningEnv(*path)
	if err != nil {
		fmt.Fprintln(stderr, "local env:", err)
		return 1
	}
	stdout.Write(b)
	return 0
}
