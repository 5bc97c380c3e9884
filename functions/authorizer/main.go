// Command authorizer is the API Gateway TOKEN authorizer: it verifies the
// caller's bearer JWT and hands its sub and roles to the route functions.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/chronicle-go/chronicle/infra/auth"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "authorizer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg := loadConfig(getenv)
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h := auth.NewAuthorizer(v, logger)
	lambda.StartWithOptions(h.Handle, lambda.WithContext(ctx))
	return nil
}

// loadConfig reads the environment; auth.NewVerifier validates the result.
func loadConfig(getenv func(string) string) auth.Config {
	cfg := auth.Config{
		Issuer:   envOr(getenv, "JWT_ISSUER", "chronicle-local"),
		Audience: envOr(getenv, "JWT_AUDIENCE", "chronicle-api"),
		JWKSURL:  getenv("JWKS_URL"),
	}
	// The local secret is only a fallback: with a JWKS, HS256 tokens must not pass.
	if cfg.JWKSURL == "" {
		cfg.LocalSecret = []byte(envOr(getenv, "LOCAL_JWT_SECRET", "dev-secret"))
	}
	return cfg
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
