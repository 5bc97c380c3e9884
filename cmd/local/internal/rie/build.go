// Package rie runs the functions' bootstrap binaries as Lambda runs them,
// without Docker: each under the AWS Lambda Runtime Interface Emulator
// (the program sam local invoke runs inside its container), which here is
// a plain process that starts the bootstrap, serves it the Lambda Runtime
// API and takes invocations on
// /2015-03-31/functions/function/invocations.
//
// Both are built from source with the go command and kept under the
// user's cache directory (chronicle/rie and chronicle/bootstrap): the
// emulator once per version, the bootstraps by go build, which relinks
// only what changed. A linux/arm64 bootstrap (what make build ships) runs
// on another host through qemu-aarch64-static, behind the host's emulator.
package rie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// The emulator's module and the version built: the module proxy serves it
// under a pseudo-version only (the repository's tags are not module
// versions).
const (
	EmulatorModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	EmulatorVersion = "v0.0.0-20261030222936-bef5c4ba774d"
	emulatorPackage = EmulatorModule + "/cmd/aws-lambda-rie"
)

// LambdaBuildFlags are the flags of the Makefile's LAMBDA_BUILD (make
// build, sam build), after "go build": the bootstraps run here are built
// as the shipped ones are. A test keeps the two in step.
var LambdaBuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// Platform is what a bootstrap is built for.
type Platform struct{ OS, Arch string }

// Host is the platform of this machine; Shipped that of the template's
// functions (Architectures: [arm64], provided.al2023).
var (
	Host    = Platform{"linux", runtime.GOARCH}
	Shipped = Platform{"linux", "arm64"}
)

func (p Platform) String() string { return p.OS + "_" + p.Arch }

// CacheDir is chronicle under the user's cache directory.
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(dir, "chronicle"), nil
}

// Emulator returns the path of the emulator built for the host, building
// it first when the cache does not have it (go install of the pinned
// version: tens of seconds once, the module proxy needed then).
func Emulator(ctx context.Context) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "rie", EmulatorVersion)
	path := filepath.Join(dir, "aws-lambda-rie")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil { // built by another process meanwhile
		return path, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goCommand(), "install", emulatorPackage+"@"+EmulatorVersion)
	// GOFLAGS cleared: a -mod or -tags meant for this module must not
	// apply to another's; CGO off: a static binary.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the emulator (go install %s@%s): %w\n%s", emulatorPackage, EmulatorVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), path); err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	return path, nil
}

// Bootstraps builds functions/<name> of the module at root for p, as the
// Makefile's build targets do, and returns each binary's path by name.
// One go build builds them all, in parallel; an unchanged binary is not
// relinked. Builds of one platform are serialized across processes.
func Bootstraps(ctx context.Context, root string, p Platform, names ...string) (map[string]string, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "bootstrap", p.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bootstraps: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	args := append([]string{"build"}, LambdaBuildFlags...)
	args = append(args, "-o", dir+string(filepath.Separator))
	paths := map[string]string{}
	for _, n := range names {
		args = append(args, "./functions/"+n)
		paths[n] = filepath.Join(dir, n)
	}
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the bootstraps for %s (go %s): %w\n%s", p, strings.Join(args, " "), err, out)
	}
	return paths, nil
}

// ModuleRoot is the directory of the go.mod above dir (the repository).
func ModuleRoot(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, goCommand(), "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := string(bytes.TrimSpace(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the chronicle module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// goCommand is $GO (as make passes it), else go.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// lock takes an exclusive lock on path (created), waiting for it; the
// returned function releases it.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		f.Close() // the flock ends with the descriptor
		return nil, ctx.Err()
	}
}
