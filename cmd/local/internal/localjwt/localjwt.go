// Package localjwt mints bearer tokens for local and test deployments: HS256
// with the local secret (auth.Mint, what the authorizer accepts without a
// JWKS), or RS256 with an RSA key whose JWKS the deployment's JwksUrl
// serves (the LocalStack path). Production tokens come from the identity
// provider.
package localjwt

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chronicle-go/chronicle/infra/auth"
)

// Minter signs tokens: with Key set, RS256 under KeyID; otherwise HS256
// with Secret.
type Minter struct {
	Issuer, Audience string
	Secret           []byte
	Key              *rsa.PrivateKey
	KeyID            string
	Now              func() time.Time // default time.Now
}

// Mint signs a token for sub with roles, valid for ttl.
func (m Minter) Mint(sub string, roles []string, ttl time.Duration) (string, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	if m.Key == nil {
		return auth.Mint(m.Secret, m.Issuer, m.Audience, sub, roles, ttl, now())
	}
	switch {
	case sub == "":
		return "", errors.New("mint: empty sub")
	case ttl <= 0:
		return "", fmt.Errorf("mint: ttl %s is not positive", ttl)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": m.Issuer, "aud": m.Audience, "sub": sub, "roles": roles,
		"iat": now().Unix(), "exp": now().Add(ttl).Unix(),
	})
	t.Header["kid"] = m.KeyID
	return t.SignedString(m.Key)
}

// LoadKey reads the PEM RSA private key at path.
func LoadKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return jwt.ParseRSAPrivateKeyFromPEM(b)
}

// LoadOrCreateKey reads the PEM RSA private key at path, or creates one
// (2048 bits, mode 0600) when there is none.
func LoadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		return key, os.WriteFile(path, out, 0o600)
	}
	if err != nil {
		return nil, err
	}
	return jwt.ParseRSAPrivateKeyFromPEM(b)
}

// KeyID names a key by its public part, so that tokens and JWKS agree.
func KeyID(key *rsa.PrivateKey) string {
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// JWKS is the JSON Web Key Set of key's public part, for the issuer's
// JwksUrl.
func JWKS(key *rsa.PrivateKey, kid string) ([]byte, error) {
	e := big.NewInt(int64(key.PublicKey.E)).Bytes()
	return json.MarshalIndent(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(key.PublicKey.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(e),
	}}}, "", "  ")
}
