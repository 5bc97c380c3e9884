package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksTimeout bounds one JWKS fetch, whatever client the caller passes.
const jwksTimeout = 5 * time.Second

// Defaults of a local deployment (the HTTP contract's): the authorizer's JWT_ISSUER,
// JWT_AUDIENCE and LOCAL_JWT_SECRET when they are not set, which the local
// runner, the operator CLI's token command and the tests share.
const (
	LocalIssuer   = "chronicle-local"
	LocalAudience = "chronicle-api"
	LocalSecret   = "dev-secret"
)

// Config says which tokens a Verifier accepts. With JWKSURL set, only RS256
// tokens signed by a key of that set pass; otherwise only HS256 tokens signed
// with LocalSecret do.
type Config struct {
	Issuer      string
	Audience    string
	LocalSecret []byte
	JWKSURL     string
	// Leeway is the clock skew allowed on exp and nbf.
	Leeway time.Duration
	// HTTPClient fetches the JWKS; nil means a client with a short timeout.
	HTTPClient *http.Client
}

// Verifier checks bearer JWTs and turns them into principals. It is safe for
// concurrent use.
type Verifier struct {
	parser *jwt.Parser
	secret []byte
	keys   *jwks // nil in HS256 mode
}

// claims are the registered claims plus the two ways a token may carry roles.
type claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles,omitempty"`
	Scope string   `json:"scope,omitempty"`
}

// NewVerifier checks cfg and returns a Verifier for it. It does no I/O: the
// JWKS is fetched on first use.
func NewVerifier(cfg Config) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("auth: issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("auth: audience is required")
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("auth: leeway %s is negative", cfg.Leeway)
	}
	method := jwt.SigningMethodHS256.Alg()
	v := &Verifier{}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth: JWKS URL %q is not an absolute http(s) URL", cfg.JWKSURL)
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: jwksTimeout}
		}
		method = jwt.SigningMethodRS256.Alg()
		v.keys = newJWKS(cfg.JWKSURL, client)
	} else {
		if len(cfg.LocalSecret) == 0 {
			return nil, errors.New("auth: either a JWKS URL or a local secret is required")
		}
		v.secret = slices.Clone(cfg.LocalSecret)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{method}), // also rejects "none"
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	)
	return v, nil
}

// Verify checks a raw JWT (without the "Bearer " prefix): signature and
// algorithm, exp, nbf, iss, aud and sub. Errors wrap the jwt package's
// sentinels (jwt.ErrTokenExpired and so on) for errors.Is. ctx bounds a JWKS
// fetch, if one is needed.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	var c claims
	keyfunc := func(*jwt.Token) (any, error) { return v.secret, nil }
	if v.keys != nil {
		keyfunc = func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if kid == "" {
				return nil, errNoKID
			}
			return v.keys.key(ctx, kid)
		}
	}
	if _, err := v.parser.ParseWithClaims(token, &c, keyfunc); err != nil {
		return Principal{}, err
	}
	if c.Subject == "" {
		return Principal{}, fmt.Errorf("%w: sub", jwt.ErrTokenRequiredClaimMissing)
	}
	p := Principal{Sub: c.Subject, Roles: c.roles()}
	// Refused rather than altered: a route must see exactly the token's
	// principal, and one that cannot travel intact is not that principal.
	if !carriable(p.Sub) {
		return Principal{}, fmt.Errorf("%w: sub has a control character or more than %d bytes", jwt.ErrTokenInvalidClaims, maxClaimBytes)
	}
	for i, r := range p.Roles {
		if !carriable(r) {
			return Principal{}, fmt.Errorf("%w: role %d has a control character or more than %d bytes", jwt.ErrTokenInvalidClaims, i, maxClaimBytes)
		}
	}
	return p, nil
}

// roles is the union of the roles array and the scope string, in order,
// without duplicates. An empty role grants nothing and is left out.
func (c claims) roles() []string {
	var out []string
	for _, r := range slices.Concat(c.Roles, strings.Fields(c.Scope)) {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Mint signs an HS256 token for local use (the local runner, tests, the
// operator CLI); production tokens come from the identity provider.
func Mint(secret []byte, issuer, audience, sub string, roles []string, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case len(secret) == 0:
		return "", errors.New("auth: mint: empty secret")
	case sub == "":
		return "", errors.New("auth: mint: empty sub")
	case ttl <= 0:
		return "", fmt.Errorf("auth: mint: ttl %s is not positive", ttl)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Audience:  jwt.ClaimStrings{audience},
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: roles,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return s, nil
}
