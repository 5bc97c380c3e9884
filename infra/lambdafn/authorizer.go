package lambdafn

import (
	"log/slog"

	"github.com/chronicle-go/chronicle/infra/auth"
)

// Authorizer builds the API Gateway TOKEN authorizer from JWT_ISSUER
// (default chronicle-local), JWT_AUDIENCE (default chronicle-api) and
// JWKS_URL; without JWKS_URL it verifies HS256 tokens signed with
// LOCAL_JWT_SECRET (default dev-secret), for local use.
func Authorizer(getenv Getenv, logger *slog.Logger) (*auth.Authorizer, error) {
	v, err := auth.NewVerifier(authConfig(getenv))
	if err != nil {
		return nil, err
	}
	return auth.NewAuthorizer(v, logger), nil
}

// authConfig reads the environment; auth.NewVerifier validates the result.
func authConfig(getenv Getenv) auth.Config {
	cfg := auth.Config{
		Issuer:   envOr(getenv, "JWT_ISSUER", auth.LocalIssuer),
		Audience: envOr(getenv, "JWT_AUDIENCE", auth.LocalAudience),
		JWKSURL:  getenv("JWKS_URL"),
	}
	// The local secret is only a fallback: with a JWKS, HS256 tokens must not pass.
	if cfg.JWKSURL == "" {
		cfg.LocalSecret = []byte(envOr(getenv, "LOCAL_JWT_SECRET", auth.LocalSecret))
	}
	return cfg
}
