//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The cold-start figures: each function built as make build builds it, its
// size (linux/arm64, what Lambda runs), and its init time: from exec to its
// first request for an invocation to the Lambda Runtime API, which is where
// Lambda's Init Duration ends. Init is timed on the host's architecture (an
// arm64 binary does not run here), in a fresh process each time, against a
// Runtime API served here, with the emulators' endpoints in the
// environment. The floor is bench/floorfn, a function that does nothing,
// built the same way.

// lambdaFlags are make build's (LAMBDA_BUILD).
var lambdaFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// floorFunction names the floor among the functions.
const floorFunction = "floor"

// function is one Lambda function's binaries.
type function struct {
	name      string
	hostBin   string // for the init time
	armBin    string // for the size
	sizeBytes int64
}

// buildFunctions builds every function of functions/ and the floor, for the
// host and for linux/arm64.
func buildFunctions(ctx context.Context, goCmd, repo, binDir string, names []string) ([]function, error) {
	var fns []function
	for _, name := range append(names, floorFunction) {
		dir, pkg := repo, "./functions/"+name
		env := os.Environ()
		if name == floorFunction {
			dir, pkg = filepath.Join(repo, "bench"), "./floorfn"
			env = append(env, "GOFLAGS=-mod=mod")
		}
		fn := function{name: name, hostBin: filepath.Join(binDir, "host", name), armBin: filepath.Join(binDir, "arm64", name)}
		for _, b := range []struct{ out, goos, goarch string }{{fn.hostBin, runtime.GOOS, runtime.GOARCH}, {fn.armBin, "linux", "arm64"}} {
			args := append(append([]string{"build"}, lambdaFlags...), "-o", b.out, pkg)
			cmd := exec.CommandContext(ctx, goCmd, args...)
			cmd.Dir = dir
			cmd.Env = append(env, "CGO_ENABLED=0", "GOOS="+b.goos, "GOARCH="+b.goarch)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("build %s for %s: %w\n%s", name, b.goarch, err, bytes.TrimSpace(out))
			}
		}
		st, err := os.Stat(fn.armBin)
		if err != nil {
			return nil, err
		}
		fn.sizeBytes = st.Size()
		fns = append(fns, fn)
	}
	return fns, nil
}

// functionEnv is what every function needs to build its handler: the
// template's variables, with names that need not exist (construction does
// no I/O; the emulators' endpoints are there should one start to).
var functionEnv = []string{
	"EVENTS_TABLE=bench-events", "GUARDS_TABLE=bench-guards", "SNAPSHOTS_TABLE=bench-snapshots",
	"READMODEL_TABLE=bench-readmodel", "MEMBERSHIP_TABLE=bench-membership", "ROUTES=*=http://127.0.0.1:9/queue/projections.fifo",
	"EMAIL_SENDER=no-reply@example.com", "REPLAY_QUEUE_URL=http://127.0.0.1:9/queue/replay",
	"PROJECTION_QUEUES=user-view=http://127.0.0.1:9/queue/projections.fifo", "MAX_RECEIVE_COUNT=5",
	"SNAPSHOT_INTERVAL=100",
}

// runtimeAPI is a Lambda Runtime API that tells when a function asks for
// its first invocation, or reports an init error.
type runtimeAPI struct {
	addr  string
	ready chan error
	srv   *http.Server
}

func startRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	api := &runtimeAPI{addr: ln.Addr().String(), ready: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case api.ready <- nil:
		default:
		}
		<-r.Context().Done() // no invocation: the process is killed now
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		select {
		case api.ready <- fmt.Errorf("init error: %s", body):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	api.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = api.srv.Serve(ln) }()
	return api, nil
}

func (api *runtimeAPI) close() { _ = api.srv.Close() }

// initTime starts bin as Lambda would and returns how long it took to ask
// for its first invocation.
func (api *runtimeAPI) initTime(ctx context.Context, fn function, env []string) (time.Duration, error) {
	for len(api.ready) > 0 {
		<-api.ready
	}
	cmd := exec.Command(fn.hostBin)
	cmd.Env = append(append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + api.addr,
		"AWS_LAMBDA_FUNCTION_NAME=" + fn.name, "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "_HANDLER=bootstrap",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
	}, env...), functionEnv...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	select {
	case err := <-api.ready:
		d := time.Since(start)
		return d, err
	case err := <-exited:
		exited <- err // for the deferred wait
		return 0, fmt.Errorf("%s exited during init (%v): %s", fn.name, err, strings.TrimSpace(stderr.String()))
	case <-time.After(30 * time.Second):
		return 0, errors.New(fn.name + " did not ask for an invocation within 30s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// emulatorEndpoints keeps the endpoint variables of an emulator
// environment, for the functions.
func emulatorEndpoints(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "AWS_ENDPOINT_URL") {
			out = append(out, kv)
		}
	}
	return out
}
