package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// jwksMinInterval keeps a flood of tokens with unknown kids from turning
	// into a flood of requests to the issuer.
	jwksMinInterval = time.Minute
	jwksMaxBytes    = 1 << 20
	minRSABits      = 2048
)

var (
	errNoKID = errors.New("token has no kid header")
	// errUnknownKey: the kid is not in the (fresh enough) key set.
	errUnknownKey = errors.New("no signing key for kid")
	// errKeysUnavailable: the key set could not be fetched; the token may be
	// fine, so this is our failure, not the caller's.
	errKeysUnavailable = errors.New("JWKS unavailable")
)

// jwks is a lazily fetched, kid-keyed cache of the issuer's RSA signing keys.
// Nothing runs in the background: a Lambda environment is frozen between
// invocations, so keys are (re)fetched on the request that needs them.
type jwks struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex // held across a fetch, so concurrent misses fetch once
	keys    map[string]*rsa.PublicKey
	fetched time.Time // last fetch attempt that was not cut short by its caller
	lastErr error     // outcome of that attempt
}

func newJWKS(url string, client *http.Client) *jwks {
	return &jwks{url: url, client: client, now: time.Now}
}

// key returns the key for kid, refetching the set when kid is unknown, at most
// once per jwksMinInterval.
func (s *jwks) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if !s.fetched.IsZero() && s.now().Sub(s.fetched) < jwksMinInterval {
		if s.lastErr != nil {
			return nil, s.lastErr
		}
		return nil, errUnknownKey
	}
	keys, err := s.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err) // the caller gave up; don't hold it against the issuer
	}
	s.fetched = s.now()
	if err != nil {
		s.lastErr = fmt.Errorf("%w: %w", errKeysUnavailable, err)
		return nil, s.lastErr // keep the keys we had
	}
	s.keys, s.lastErr = keys, nil
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

func (s *jwks) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: status %d", s.url, resp.StatusCode)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, jwksMaxBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode %s: %w", s.url, err)
	}
	keys := make(map[string]*rsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if pub, ok := k.rsaKey(); ok {
			keys[k.Kid] = pub
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s has no usable RS256 signing key", s.url)
	}
	return keys, nil
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518) an RS256 verifier needs.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// rsaKey reports false for keys that are not RS256 signing keys; a set may
// hold other keys, which are skipped rather than failing the whole set.
func (k jwk) rsaKey() (*rsa.PublicKey, bool) {
	if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
		return nil, false
	}
	n, err1 := decodeB64URL(k.N)
	e, err2 := decodeB64URL(k.E)
	if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
		return nil, false
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
		return nil, false
	}
	return pub, true
}

// decodeB64URL accepts base64url with or without padding; RFC 7518 says
// without, but some issuers pad.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
