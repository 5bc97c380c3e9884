package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "chronicle-local"
	testAudience = "chronicle-api"
	// wantResource is the fixture's method ARN widened to every route.
	wantResource = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/local/*/*"
)

var testSecret = []byte("dev-secret")

// rsaKeys are generated once: 2048-bit generation is slow under -race.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// tokenClaims builds claims valid now unless edit changes them.
func tokenClaims(edit func(*claims)) claims {
	now := time.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Audience:  jwt.ClaimStrings{testAudience},
			Subject:   "user-123",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Roles: []string{"admin"},
	}
	if edit != nil {
		edit(&c)
	}
	return c
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func hs256(t *testing.T, edit func(*claims)) string {
	return sign(t, jwt.SigningMethodHS256, testSecret, "", tokenClaims(edit))
}

func rs256(t *testing.T, key *rsa.PrivateKey, kid string, edit func(*claims)) string {
	return sign(t, jwt.SigningMethodRS256, key, kid, tokenClaims(edit))
}

// fixtureRequest is the TOKEN authorizer event from testdata, with header as
// its authorizationToken.
func fixtureRequest(t *testing.T, header string) events.APIGatewayCustomAuthorizerRequest {
	t.Helper()
	b, err := os.ReadFile("../../testdata/authorizer/token-request.json")
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayCustomAuthorizerRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	req.AuthorizationToken = header
	return req
}

// logLine checks that exactly one line was logged and returns it.
func logLine(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want 1:\n%s", len(lines), buf)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("log line %q: %v", lines[0], err)
	}
	return m
}

type authzCase struct {
	name      string
	header    string
	wantSub   string // "" means the call must be refused
	wantRoles string
	wantErr   string // when refused; "Unauthorized" is API Gateway's 401
	reason    string // logged reason category when refused
}

// checkHandle runs one case through a.Handle and checks the response, the error
// and the single log line.
func checkHandle(t *testing.T, a *Authorizer, logs *bytes.Buffer, tc authzCase) {
	t.Helper()
	ctx := lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	resp, err := a.Handle(ctx, fixtureRequest(t, tc.header))
	line := logLine(t, logs)
	if tok := strings.TrimPrefix(tc.header, "Bearer "); len(tok) > 8 && strings.Contains(logs.String(), tok) {
		t.Errorf("log contains the token: %s", logs)
	}
	if line["aws_request_id"] != "req-1" {
		t.Errorf("logged aws_request_id %v, want req-1", line["aws_request_id"])
	}

	if tc.wantSub == "" {
		if err == nil || err.Error() != tc.wantErr {
			t.Fatalf("err = %v, want %q (response %+v)", err, tc.wantErr, resp)
		}
		if line["reason"] != tc.reason {
			t.Errorf("logged reason %v, want %q", line["reason"], tc.reason)
		}
		return
	}
	if err != nil {
		t.Fatalf("err = %v (logged %v)", err, line)
	}
	if resp.PrincipalID != tc.wantSub {
		t.Errorf("PrincipalID = %q, want %q", resp.PrincipalID, tc.wantSub)
	}
	want := []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{wantResource}}}
	if got := resp.PolicyDocument.Statement; len(got) != 1 || got[0].Effect != want[0].Effect ||
		!slices.Equal(got[0].Action, want[0].Action) || !slices.Equal(got[0].Resource, want[0].Resource) {
		t.Errorf("statements = %+v, want %+v", got, want)
	}
	if resp.PolicyDocument.Version != "2012-10-17" {
		t.Errorf("policy version = %q", resp.PolicyDocument.Version)
	}
	// REST API authorizer context values must be strings.
	if resp.Context["sub"] != tc.wantSub || resp.Context["roles"] != tc.wantRoles {
		t.Errorf("context = %v, want sub %q roles %q", resp.Context, tc.wantSub, tc.wantRoles)
	}
	if line["sub"] != tc.wantSub {
		t.Errorf("logged sub %v, want %q", line["sub"], tc.wantSub)
	}
}

func TestAuthorizerHS256(t *testing.T) {
	hour := time.Hour
	cases := []authzCase{
		{name: "valid", header: "Bearer " + hs256(t, nil), wantSub: "user-123", wantRoles: `["admin"]`},
		{name: "scheme is case-insensitive", header: "bearer " + hs256(t, nil), wantSub: "user-123", wantRoles: `["admin"]`},
		{name: "scope string joins roles", header: "Bearer " + hs256(t, func(c *claims) {
			c.Roles, c.Scope = []string{"admin"}, "users:read  admin users:write"
		}), wantSub: "user-123", wantRoles: `["admin","users:read","users:write"]`},
		{name: "no roles", header: "Bearer " + hs256(t, func(c *claims) { c.Roles = nil }), wantSub: "user-123", wantRoles: `[]`},
		{name: "nbf in the past", header: "Bearer " + hs256(t, func(c *claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		}), wantSub: "user-123", wantRoles: `["admin"]`},
		{name: "expired within leeway", header: "Bearer " + hs256(t, func(c *claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Second))
		}), wantSub: "user-123", wantRoles: `["admin"]`},
		{name: "Mint", header: "Bearer " + mustMint(t, testSecret, testIssuer, testAudience, "u-9", []string{"admin", "ops"}, hour),
			wantSub: "u-9", wantRoles: `["admin","ops"]`},

		{name: "expired", header: "Bearer " + hs256(t, func(c *claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Minute))
		}), wantErr: "Unauthorized", reason: "expired"},
		{name: "nbf in the future", header: "Bearer " + hs256(t, func(c *claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(5 * time.Minute))
		}), wantErr: "Unauthorized", reason: "not_yet_valid"},
		{name: "no exp", header: "Bearer " + hs256(t, func(c *claims) { c.ExpiresAt = nil }), wantErr: "Unauthorized", reason: "missing_claim"},
		{name: "no sub", header: "Bearer " + hs256(t, func(c *claims) { c.Subject = "" }), wantErr: "Unauthorized", reason: "missing_claim"},
		{name: "role with a control character", header: "Bearer " + hs256(t, func(c *claims) { c.Roles = []string{"ops\nadmin"} }), wantErr: "Unauthorized", reason: "invalid_claim"},
		{name: "role too long", header: "Bearer " + hs256(t, func(c *claims) { c.Roles = []string{strings.Repeat("r", 257)} }), wantErr: "Unauthorized", reason: "invalid_claim"},
		{name: "sub with a control character", header: "Bearer " + hs256(t, func(c *claims) { c.Subject = "u\x00" }), wantErr: "Unauthorized", reason: "invalid_claim"},
		{name: "signed with another secret", header: "Bearer " + mustMint(t, []byte("other-secret"), testIssuer, testAudience, "u", nil, hour),
			wantErr: "Unauthorized", reason: "bad_signature"},
		{name: "wrong audience", header: "Bearer " + mustMint(t, testSecret, testIssuer, "someone-else", "u", nil, hour),
			wantErr: "Unauthorized", reason: "wrong_audience"},
		{name: "wrong issuer", header: "Bearer " + mustMint(t, testSecret, "evil", testAudience, "u", nil, hour),
			wantErr: "Unauthorized", reason: "wrong_issuer"},
		{name: "alg none", header: "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", tokenClaims(nil)),
			wantErr: "Unauthorized", reason: "bad_signature"},
		{name: "RS256 when HS256 is configured", header: "Bearer " + rs256(t, rsaKeys()[0], "k1", nil),
			wantErr: "Unauthorized", reason: "bad_signature"},
		{name: "garbage", header: "Bearer not.a-jwt", wantErr: "Unauthorized", reason: "malformed"},
		{name: "missing Bearer", header: hs256(t, nil), wantErr: "Unauthorized", reason: "not_bearer"},
		{name: "Basic scheme", header: "Basic dXNlcjpwYXNz", wantErr: "Unauthorized", reason: "not_bearer"},
		{name: "Bearer without token", header: "Bearer ", wantErr: "Unauthorized", reason: "missing_token"},
		{name: "empty header", header: "", wantErr: "Unauthorized", reason: "missing_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, LocalSecret: testSecret, Leeway: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			checkHandle(t, NewAuthorizer(v, slog.New(slog.NewJSONHandler(&logs, nil))), &logs, tc)
		})
	}
}

func mustMint(t *testing.T, secret []byte, iss, aud, sub string, roles []string, ttl time.Duration) string {
	t.Helper()
	s, err := Mint(secret, iss, aud, sub, roles, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwkOf is the public half of k as a JWK.
func jwkOf(kid string, k *rsa.PrivateKey) map[string]string {
	return map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

// jwksServer serves keys (or status, when not 200) and counts requests.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int32
	mu     sync.Mutex
	status int
	keys   []map[string]string
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	s := &jwksServer{status: http.StatusOK, keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		// A set may hold keys we cannot use; they are skipped.
		body := map[string]any{"keys": append([]any{map[string]string{"kty": "EC", "kid": "ec-1", "crv": "P-256"}}, anySlice(s.keys)...)}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.keys = status, keys
}

func anySlice(ks []map[string]string) []any {
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = k
	}
	return out
}

func TestAuthorizerRS256(t *testing.T) {
	k1, k2 := rsaKeys()[0], rsaKeys()[1]
	cases := []struct {
		authzCase
		status    int // of the JWKS endpoint; 0 means 200
		wantFetch int32
	}{
		{authzCase: authzCase{name: "valid", header: "Bearer " + rs256(t, k1, "k1", func(c *claims) { c.Scope = "users:read" }),
			wantSub: "user-123", wantRoles: `["admin","users:read"]`}, wantFetch: 1},
		{authzCase: authzCase{name: "unknown kid", header: "Bearer " + rs256(t, k2, "k2", nil),
			wantErr: "Unauthorized", reason: "unknown_key"}, wantFetch: 1},
		{authzCase: authzCase{name: "no kid", header: "Bearer " + rs256(t, k1, "", nil),
			wantErr: "Unauthorized", reason: "unknown_key"}, wantFetch: 0},
		{authzCase: authzCase{name: "known kid, wrong key", header: "Bearer " + rs256(t, k2, "k1", nil),
			wantErr: "Unauthorized", reason: "bad_signature"}, wantFetch: 1},
		{authzCase: authzCase{name: "HS256 token", header: "Bearer " + hs256(t, nil),
			wantErr: "Unauthorized", reason: "bad_signature"}, wantFetch: 0},
		{authzCase: authzCase{name: "HS256 token keyed with the public key", header: "Bearer " + sign(t, jwt.SigningMethodHS256,
			[]byte(jwkOf("k1", k1)["n"]), "k1", tokenClaims(nil)),
			wantErr: "Unauthorized", reason: "bad_signature"}, wantFetch: 0},
		{authzCase: authzCase{name: "JWKS down is a 500, not a 401", header: "Bearer " + rs256(t, k1, "k1", nil),
			wantErr: "authorizer: signing keys unavailable", reason: "jwks_unavailable"}, status: http.StatusBadGateway, wantFetch: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, jwkOf("k1", k1))
			if tc.status != 0 {
				srv.set(tc.status)
			}
			v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL,
				LocalSecret: testSecret, HTTPClient: srv.Client()}) // the secret must be ignored
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			checkHandle(t, NewAuthorizer(v, slog.New(slog.NewJSONHandler(&logs, nil))), &logs, tc.authzCase)
			if got := srv.hits.Load(); got != tc.wantFetch {
				t.Errorf("JWKS fetched %d times, want %d", got, tc.wantFetch)
			}
		})
	}
}

// TestJWKSRefetch follows a key rotation: keys are cached by kid, and an
// unknown kid triggers a refetch at most once per minute.
func TestJWKSRefetch(t *testing.T) {
	k1, k2 := rsaKeys()[0], rsaKeys()[1]
	srv := newJWKSServer(t, jwkOf("k1", k1))
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v.keys.now = func() time.Time { return now }
	ctx := context.Background()

	steps := []struct {
		name      string
		then      func() // runs before the token is checked
		token     string
		wantErr   error
		wantFetch int32
	}{
		{name: "first use fetches", token: rs256(t, k1, "k1", nil), wantFetch: 1},
		{name: "known kid is cached", token: rs256(t, k1, "k1", nil), wantFetch: 1},
		{name: "issuer rotates; within a minute no refetch",
			then:  func() { srv.set(http.StatusOK, jwkOf("k1", k1), jwkOf("k2", k2)) },
			token: rs256(t, k2, "k2", nil), wantErr: errUnknownKey, wantFetch: 1},
		{name: "a minute later the unknown kid refetches",
			then:  func() { now = now.Add(jwksMinInterval) },
			token: rs256(t, k2, "k2", nil), wantFetch: 2},
		{name: "old key still cached", token: rs256(t, k1, "k1", nil), wantFetch: 2},
		{name: "fetch failure is reported",
			then:  func() { now = now.Add(jwksMinInterval); srv.set(http.StatusInternalServerError) },
			token: rs256(t, k1, "k3", nil), wantErr: errKeysUnavailable, wantFetch: 3},
		{name: "and not retried within a minute", token: rs256(t, k1, "k3", nil), wantErr: errKeysUnavailable, wantFetch: 3},
		{name: "cached keys survive the failure", token: rs256(t, k2, "k2", nil), wantFetch: 3},
	}
	for _, s := range steps {
		if s.then != nil {
			s.then()
		}
		_, err := v.Verify(ctx, s.token)
		if (s.wantErr == nil && err != nil) || (s.wantErr != nil && !errors.Is(err, s.wantErr)) {
			t.Errorf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if got := srv.hits.Load(); got != s.wantFetch {
			t.Errorf("%s: fetched %d times, want %d", s.name, got, s.wantFetch)
		}
	}
}

func TestPrincipalContextRoundTrip(t *testing.T) {
	cases := []struct {
		name      string
		p         Principal
		wantAdmin bool
	}{
		{name: "admin", p: Principal{Sub: "auth0|42", Roles: []string{"admin", "users:read"}}, wantAdmin: true},
		{name: "no roles", p: Principal{Sub: "auth0|43"}},
		{name: "other roles", p: Principal{Sub: "u", Roles: []string{"administrator"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// As API Gateway hands it to a route: the authorizer's context,
			// plus principalId, in requestContext.authorizer.
			authz := tc.p.AuthorizerContext()
			authz["principalId"] = tc.p.Sub
			b, err := json.Marshal(map[string]any{"requestContext": map[string]any{"authorizer": authz}})
			if err != nil {
				t.Fatal(err)
			}
			var req events.APIGatewayProxyRequest
			if err := json.Unmarshal(b, &req); err != nil {
				t.Fatal(err)
			}
			got, ok := PrincipalFromContext(req.RequestContext.Authorizer)
			if !ok || got.Sub != tc.p.Sub || !slices.Equal(got.Roles, tc.p.Roles) {
				t.Fatalf("PrincipalFromContext = %+v, %v; want %+v", got, ok, tc.p)
			}
			if got.IsAdmin() != tc.wantAdmin {
				t.Errorf("IsAdmin = %v, want %v", got.IsAdmin(), tc.wantAdmin)
			}
		})
	}

	for name, m := range map[string]map[string]interface{}{
		"nil":          nil,
		"no sub":       {"roles": "admin"},
		"sub not text": {"sub": 42, "roles": `["admin"]`},
		"no roles":     {"sub": "u"},
		// An older authorizer's answer, still in API Gateway's cache: its
		// roles cannot be known, so there is no principal.
		"roles space-separated": {"sub": "u", "roles": "admin"},
		"roles not a list":      {"sub": "u", "roles": `"admin"`},
		"roles not strings":     {"sub": "u", "roles": `[1]`},
		"roles not JSON":        {"sub": "u", "roles": `["admin"`},
	} {
		if p, ok := PrincipalFromContext(m); ok {
			t.Errorf("%s: PrincipalFromContext = %+v, true; want false", name, p)
		}
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	ok := Config{Issuer: testIssuer, Audience: testAudience, LocalSecret: testSecret}
	cases := map[string]func(*Config){
		"no issuer":          func(c *Config) { c.Issuer = "" },
		"no audience":        func(c *Config) { c.Audience = "" },
		"no secret, no JWKS": func(c *Config) { c.LocalSecret = nil },
		"relative JWKS URL":  func(c *Config) { c.JWKSURL = "/jwks.json" },
		"non-http JWKS URL":  func(c *Config) { c.JWKSURL = "file:///etc/jwks.json" },
		"negative leeway":    func(c *Config) { c.Leeway = -time.Second },
	}
	for name, edit := range cases {
		cfg := ok
		edit(&cfg)
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
	if _, err := NewVerifier(ok); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestMintRejects(t *testing.T) {
	now := time.Now()
	for name, mint := range map[string]func() (string, error){
		"empty secret": func() (string, error) { return Mint(nil, testIssuer, testAudience, "u", nil, time.Hour, now) },
		"empty sub":    func() (string, error) { return Mint(testSecret, testIssuer, testAudience, "", nil, time.Hour, now) },
		"zero ttl":     func() (string, error) { return Mint(testSecret, testIssuer, testAudience, "u", nil, 0, now) },
	} {
		if _, err := mint(); err == nil {
			t.Errorf("%s: Mint succeeded", name)
		}
	}
}
