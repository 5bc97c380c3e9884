package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/infra/auth"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseServe(t *testing.T) {
	o, err := parseServe([]string{"--parameter-overrides", "MaxReceiveCount=2 EmailSender=me@example.org"}, env(map[string]string{"PORT": "8080"}))
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
	if o, _ := parseServe([]string{"--port", "3001"}, env(map[string]string{"PORT": "8080"})); o.port != 3001 {
		t.Errorf("--port does not win over PORT: %d", o.port)
	}
	for _, bad := range [][]string{{"--parameter-overrides", "NoValue"}, {"extra"}, {"--log-level", "loud"}} {
		if _, err := parseServe(bad, env(nil)); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if _, err := parseServe(nil, env(map[string]string{"PORT": "http"})); err == nil {
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
