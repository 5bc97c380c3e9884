package rie

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InvokePath is where the emulator takes invocations.
const InvokePath = "/2015-03-31/functions/function/invocations"

// Spec is one function to run under the emulator.
type Spec struct {
	// Emulator is the emulator's path (see Emulator).
	Emulator string
	// Command runs the bootstrap: its path, or, for a bootstrap of another
	// architecture, qemu-aarch64-static and its path (see Command).
	Command []string
	// Env is the function's whole environment: the emulator hands it on
	// to the bootstrap, and the bootstrap sees nothing else.
	Env map[string]string
	// Timeout and MemoryMB are the template's Timeout and MemorySize.
	Timeout  time.Duration
	MemoryMB int
	// Output receives the emulator's output: the bootstrap's logs, and the
	// START, END and REPORT lines of each invocation. Nil: discarded.
	Output io.Writer
	// Verbose keeps the emulator's own "(rapid)" log lines; otherwise only
	// its warnings and errors are passed on (it logs at info level, for
	// the INIT REPORT line that gives the init's duration).
	Verbose bool
}

// Command is how to run the bootstrap at path built for p on this host:
// directly, or through qemu-aarch64-static for linux/arm64 on another
// architecture.
func Command(p Platform, path string) ([]string, error) {
	if p == Host {
		return []string{path}, nil
	}
	if p != Shipped {
		return nil, fmt.Errorf("no way to run a %s bootstrap on %s", p, Host)
	}
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		return nil, fmt.Errorf("a %s bootstrap on %s needs qemu-aarch64-static (apt-get install qemu-user-static): %w", p, Host, err)
	}
	return []string{qemu, path}, nil
}

// Instance is one emulator running one bootstrap: one execution
// environment, which serves one invocation at a time.
type Instance struct {
	spec  Spec
	cmd   *exec.Cmd
	url   string
	http  *http.Client
	mu    sync.Mutex // one invocation at a time, as the emulator wants
	logs  *logWriter
	exit  chan struct{}
	began time.Time
}

// Start starts the emulator on free ports of 127.0.0.1 and waits until it
// takes invocations. The bootstrap itself starts (its init) at the first
// invocation, as in Lambda.
func Start(ctx context.Context, spec Spec) (*Instance, error) {
	if len(spec.Command) == 0 {
		return nil, errors.New("rie: no bootstrap command")
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 3 * time.Second // Lambda's default
	}
	if spec.MemoryMB <= 0 {
		spec.MemoryMB = 128
	}
	var lastErr error
	// A free port can be taken between the check and the emulator's
	// listen: try again on others.
	for range 3 {
		in, err := start(ctx, spec)
		if err == nil {
			return in, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, spec Spec) (*Instance, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	api := "127.0.0.1:" + strconv.Itoa(ports[0])
	addr := "127.0.0.1:" + strconv.Itoa(ports[1])
	args := []string{"--runtime-api-address", api, "--runtime-interface-emulator-address", addr}
	// The emulator takes the last of several arguments for the handler's
	// name (_HANDLER); the bootstrap's own name is the right one.
	cmd := exec.Command(spec.Emulator, append(args, spec.Command...)...)
	env := maps.Clone(spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.Itoa(int((spec.Timeout + time.Second - 1) / time.Second))
	env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.Itoa(spec.MemoryMB)
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	dir, err := os.MkdirTemp("", "chronicle-task-*")
	if err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	cmd.Dir = dir // the bootstrap's working directory, as /var/task
	logs := newLogWriter(spec.Output, spec.Verbose)
	cmd.Stdout, cmd.Stderr = logs, logs
	// A process group of its own: stopping the instance stops the
	// bootstrap too, and a Ctrl-C at the terminal reaches the parent only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the emulator: %w", err)
	}
	in := &Instance{
		spec: spec, cmd: cmd, url: "http://" + addr + InvokePath, logs: logs, exit: make(chan struct{}),
		http:  &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		began: time.Now(),
	}
	go func() {
		cmd.Wait()
		os.RemoveAll(dir)
		close(in.exit)
	}()
	if err := in.waitListening(ctx, addr); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// waitListening polls addr until the emulator listens, it exits, or 10 s.
func (in *Instance) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-in.exit:
			return fmt.Errorf("the emulator exited at start-up: %s", in.logs.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the emulator did not listen on %s within 10s: %s", addr, in.logs.tail())
		}
	}
}

// FunctionError is the error a function returned (or its panic), as the
// runtime reported it.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// ErrTimeout is the error of an invocation that ran past the function's
// timeout: the emulator answers "Task timed out after N.00 seconds".
var ErrTimeout = errors.New("task timed out")

// Invoke sends payload and returns the function's answer. A function's
// error is a *FunctionError; a timeout wraps ErrTimeout. It waits for an
// invocation in progress to end. requestID, when set, is the invocation's
// id (the function's context and logs carry it); else the emulator makes one.
func (in *Instance) Invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	select {
	case <-in.exit:
		return nil, fmt.Errorf("the emulator has exited: %s", in.logs.tail())
	default:
	}
	// The emulator enforces the timeout; this bound only guards against
	// an emulator that never answers.
	ctx, cancel := context.WithTimeout(ctx, in.spec.Timeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	if requestID != "" {
		req.Header.Set("X-Amzn-RequestId", requestID)
	}
	reports := in.logs.reportCount()
	// The emulator writes the REPORT line before it answers, but the line
	// crosses a pipe: wait for it (briefly), so that the logs of an
	// invocation are whole when it returns, before a Close mutes them.
	defer in.logs.waitReport(reports, time.Second)
	resp, err := in.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke through the emulator: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the emulator's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the emulator answered %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if bytes.HasPrefix(body, []byte("Task timed out after")) {
		return nil, fmt.Errorf("%w: %s", ErrTimeout, body)
	}
	if fe := functionError(body); fe != nil {
		return nil, fe
	}
	return body, nil
}

// functionError recognises the runtime's error document: the emulator
// answers 200 with it, and no X-Amz-Function-Error header, so it is told
// by its shape (an object of errorType, errorMessage and perhaps
// stackTrace), which none of the functions' answers have.
func functionError(body []byte) *FunctionError {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil || doc["errorType"] == nil {
		return nil
	}
	for k := range doc {
		if k != "errorType" && k != "errorMessage" && k != "stackTrace" && k != "requestId" {
			return nil
		}
	}
	var fe FunctionError
	if json.Unmarshal(body, &fe) != nil {
		return nil
	}
	return &fe
}

// InitDuration is the bootstrap's cold init as the emulator measured it
// (INIT START to the runtime's first /next), zero before the first
// invocation.
func (in *Instance) InitDuration() time.Duration { return in.logs.initDuration() }

// Close stops the emulator and the bootstrap.
func (in *Instance) Close() error {
	// The bootstrap, losing its Runtime API, would log that it failed to
	// get the next invocation: noise of the stop.
	in.logs.mute()
	if in.cmd.Process != nil {
		// The whole group: the emulator and the bootstrap it started.
		_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-in.exit:
	case <-time.After(5 * time.Second):
		return errors.New("rie: the emulator did not stop")
	}
	return nil
}

// freePorts returns n ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// logWriter passes the emulator's output on line by line. The emulator's
// REPORT line carries an "Init Duration" that measures only its start of
// the asynchronous init (a fraction of a millisecond); the init's real
// duration is in its own "INIT REPORT(durationMs: …)" log line, which is
// put into the REPORT line in its place, as Lambda and sam local invoke
// report it. The "(rapid)" lines themselves are dropped unless verbose
// (but for its warnings and errors).
type logWriter struct {
	out     io.Writer
	verbose bool

	mu      sync.Mutex
	partial []byte
	init    time.Duration
	pending time.Duration // measured, not yet put into a REPORT line
	reports int           // REPORT lines seen
	last    []string      // the last lines, for errors
}

func newLogWriter(out io.Writer, verbose bool) *logWriter {
	if out == nil {
		out = io.Discard
	}
	return &logWriter{out: out, verbose: verbose}
}

var (
	initReport   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	reportInit   = regexp.MustCompile(`Init Duration: [0-9.]+ ms\t`)
	reportPrefix = []byte("REPORT RequestId: ")
)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i+1]
		w.line(line)
		w.partial = w.partial[i+1:]
	}
	w.partial = slices.Clone(w.partial)
	return len(p), nil
}

func (w *logWriter) line(line []byte) {
	text := string(line)
	w.last = append(w.last, strings.TrimSpace(text))
	if len(w.last) > 20 {
		w.last = w.last[1:]
	}
	if m := initReport.FindStringSubmatch(text); m != nil {
		if ms, err := strconv.ParseFloat(m[1], 64); err == nil {
			w.pending = time.Duration(ms * float64(time.Millisecond))
			w.init = w.pending
		}
	}
	if bytes.HasPrefix(line, reportPrefix) {
		w.reports++
		if w.pending > 0 {
			text = reportInit.ReplaceAllLiteralString(text, fmt.Sprintf("Init Duration: %.2f ms\t", float64(w.pending)/float64(time.Millisecond)))
			w.pending = 0
		} else {
			text = reportInit.ReplaceAllLiteralString(text, "")
		}
	}
	if !w.verbose && strings.Contains(text, "(rapid)") && !strings.Contains(text, "[WARN") && !strings.Contains(text, "[ERROR") {
		return
	}
	io.WriteString(w.out, text)
}

func (w *logWriter) reportCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reports
}

// waitReport polls until a REPORT line after the first n has been seen,
// or for at most d.
func (w *logWriter) waitReport(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for w.reportCount() <= n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *logWriter) mute() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out = io.Discard
}

func (w *logWriter) initDuration() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.init
}

func (w *logWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 0 {
		return "no output"
	}
	return strings.Join(w.last, " | ")
}
