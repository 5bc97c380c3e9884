package main

import (
	"testing"

	"github.com/chronicle-go/chronicle/infra/auth"
)

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name       string
		env        map[string]string
		wantIss    string
		wantAud    string
		wantSecret string
		wantJWKS   string
		wantErr    bool
	}{
		{name: "defaults", wantIss: "chronicle-local", wantAud: "chronicle-api", wantSecret: "dev-secret"},
		{name: "overrides", env: map[string]string{"JWT_ISSUER": "i", "JWT_AUDIENCE": "a", "LOCAL_JWT_SECRET": "s"},
			wantIss: "i", wantAud: "a", wantSecret: "s"},
		{name: "JWKS disables the local secret", env: map[string]string{"JWKS_URL": "https://idp.example/.well-known/jwks.json", "LOCAL_JWT_SECRET": "s"},
			wantIss: "chronicle-local", wantAud: "chronicle-api", wantJWKS: "https://idp.example/.well-known/jwks.json"},
		{name: "bad JWKS URL", env: map[string]string{"JWKS_URL": "idp.example/jwks"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(func(k string) string { return tc.env[k] })
			_, err := auth.NewVerifier(cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("NewVerifier(%+v) succeeded", cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != tc.wantIss || cfg.Audience != tc.wantAud || string(cfg.LocalSecret) != tc.wantSecret || cfg.JWKSURL != tc.wantJWKS {
				t.Errorf("config = %+v", cfg)
			}
		})
	}
}
