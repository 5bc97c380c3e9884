package localjwt_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/cmd/local/internal/localjwt"
	"github.com/chronicle-go/chronicle/infra/auth"
)

// TestTokensPassTheAuthorizer: both kinds of token pass the project's own
// verifier, configured as the deployments that accept them.
func TestTokensPassTheAuthorizer(t *testing.T) {
	ctx := t.Context()
	hs := localjwt.Minter{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, Secret: []byte(auth.LocalSecret)}
	tok, err := hs.Mint("alice", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, LocalSecret: []byte(auth.LocalSecret)})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(ctx, tok); err != nil || p.Sub != "alice" || !p.IsAdmin() {
		t.Errorf("HS256: %+v, %v", p, err)
	}

	path := filepath.Join(t.TempDir(), "key.pem")
	key, err := localjwt.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := localjwt.LoadOrCreateKey(path)
	if err != nil || !again.Equal(key) {
		t.Fatalf("second load: %v", err)
	}
	kid := localjwt.KeyID(key)
	jwks, err := localjwt.JWKS(key, kid)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	defer srv.Close()
	rs := localjwt.Minter{Issuer: "https://idp.test/", Audience: "chronicle-api", Key: key, KeyID: kid}
	tok, err = rs.Mint("bob", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err = auth.NewVerifier(auth.Config{Issuer: "https://idp.test/", Audience: "chronicle-api", JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(ctx, tok); err != nil || p.Sub != "bob" || p.IsAdmin() {
		t.Errorf("RS256: %+v, %v", p, err)
	}
}
