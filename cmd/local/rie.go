package main

import (
	"context"
	"os"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

// rieLauncher is the launcher of --rie (nil without it): the emulator and
// every function's bootstrap, built for this machine from the repository
// the runner runs in; the functions' logs go to stderr.
func rieLauncher(ctx context.Context, o serveOptions, getenv func(string) string) (*rie.Launcher, error) {
	if !o.rie {
		return nil, nil
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := rie.ModuleRoot(ctx, cwd)
	if err != nil {
		return nil, err
	}
	l, err := rie.NewLauncher(ctx, root, rie.Host, lambdafn.Names(), getenv)
	if err != nil {
		return nil, err
	}
	l.PoolSize, l.Output = o.riePool, os.Stderr
	return l, nil
}
