package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/infra/auth"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseServe(t *testing.T) {
	o, err := parseServe([]string{"--parameter-overrides", "MaxReceiveCount=2 EmailSender=me@example.org"}, env(map[string]string{"PORT": "8080"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != 8080 || o.host != "127.0.0.1" || o.stack != "chronicle-local" || o.template != "template.yaml" {
		t.Errorf("options %+v", o)
	}
	want := map[string]string{"MaxReceiveCount": "2", "EmailSender": "me@example.org", "JwtIssuer": "chronicle-local"}
	for k, v := range want {
		if o.params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, o.params[k], v)
		}
	}
	if o, _ := parseServe([]string{"--port", "3001"}, env(map[string]string{"PORT": "8080"}), io.Discard); o.port != 3001 {
		t.Errorf("--port does not win over PORT: %d", o.port)
	}
	for _, bad := range [][]string{{"--parameter-overrides", "NoValue"}, {"extra"}, {"--log-level", "loud"}} {
		if _, err := parseServe(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if _, err := parseServe(nil, env(map[string]string{"PORT": "http"}), io.Discard); err == nil {
		t.Error("PORT=http: no error")
	}
}

// TestToken: the token command's output passes the local authorizer's
// verifier, with the secret of the environment.
func TestToken(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), func() {}, []string{"token", "--sub", "bob", "--roles", "admin,auditor"},
		env(map[string]string{"LOCAL_JWT_SECRET": "s3cret"}), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, LocalSecret: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(t.Context(), strings.TrimSpace(out.String()))
	if err != nil || p.Sub != "bob" || !p.IsAdmin() || len(p.Roles) != 2 {
		t.Errorf("principal %+v, %v", p, err)
	}
}

// TestServeRefusesWithoutEmulators: no endpoint variables, no run against
// whatever account the credentials point at.
func TestServeRefusesWithoutEmulators(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), func() {}, []string{"--port", "0"}, env(nil), &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "no emulator endpoints") {
		t.Errorf("exit %d, stderr %s", code, errOut.String())
	}
}

// TestHelpShowsPortDefaultOnce: --help exits 0 and names the port's
// default once (it said "(default $PORT, else 3000) (default 3000)").
func TestHelpShowsPortDefaultOnce(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), func() {}, []string{"--help"}, env(nil), &out, &errOut); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for line := range strings.Lines(errOut.String()) {
		if strings.Contains(line, "port to listen on") && strings.Count(line, "default") != 2 {
			t.Errorf("port usage: %q", line)
		}
	}
	if strings.Contains(errOut.String(), "else 3000") {
		t.Errorf("--help names the default twice:\n%s", errOut.String())
	}
}

// TestCheckPortNamesPORT: a port in use is reported before anything
// starts, naming PORT= to move the runner.
func TestCheckPortNamesPORT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var out, errOut bytes.Buffer
	code := run(context.Background(), func() {}, []string{"--check-port"}, env(map[string]string{"PORT": strconv.Itoa(port)}), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "PORT=") || !strings.Contains(errOut.String(), strconv.Itoa(port)) {
		t.Errorf("port %d in use: exit %d, stderr %s", port, code, errOut.String())
	}
	ln.Close()
	errOut.Reset()
	if code := run(context.Background(), func() {}, []string{"--check-port", "--port", strconv.Itoa(port)}, env(nil), &out, &errOut); code != 0 {
		t.Errorf("port %d free: exit %d, stderr %s", port, code, errOut.String())
	}
}

// TestStartFailureIsNotRunnerStopped: a runner that never served says it
// did not start, and at which step.
func TestStartFailureIsNotRunnerStopped(t *testing.T) {
	var out, errOut bytes.Buffer
	run(context.Background(), func() {}, []string{"--port", "0"}, env(nil), &out, &errOut)
	if s := errOut.String(); !strings.Contains(s, "runner did not start") || !strings.Contains(s, `"step":"endpoints"`) {
		t.Errorf("stderr %s", s)
	}
}

// TestEnvFile: what a runner writes, "local env" prints while the writer
// lives; a file whose writer has gone, or none, is exit 1 with a reason.
func TestEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chronicle", "run.env")
	var out, errOut bytes.Buffer
	if code := printEnv([]string{"--file", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no make run is running") {
		t.Errorf("no file: exit %d, stderr %s", code, errOut.String())
	}

	runnerEnv := env(map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:5000",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	})
	content := envFileContent(os.Getpid(), "http://127.0.0.1:3100", "chronicle-local", runnerEnv)
	remove, err := writeEnvFile(path, content)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := printEnv([]string{"--file", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	for _, want := range []string{"export AWS_ENDPOINT_URL_DYNAMODB='http://127.0.0.1:8000'\n",
		"export AWS_ACCESS_KEY_ID='test'\n", "export CHRONICLE_STACK='chronicle-local'\n", "export CHRONICLE_URL='http://127.0.0.1:3100'\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("env output lacks %q:\n%s", want, out.String())
		}
	}
	remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after remove: %v", err)
	}

	// Real credentials are not copied.
	if c := envFileContent(1, "u", "s", env(map[string]string{"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "x"})); strings.Contains(string(c), "AKIA") {
		t.Errorf("real credentials written:\n%s", c)
	}

	// A runner that was killed left the file: stale, not printed.
	if err := os.WriteFile(path, envFileContent(deadPid(t), "http://127.0.0.1:3100", "chronicle-local", runnerEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := printEnv([]string{"--file", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "has gone") {
		t.Errorf("stale file: exit %d, stderr %s", code, errOut.String())
	}
}

// deadPid is the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}
