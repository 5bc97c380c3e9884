// Package authtest generates the tokens the authorizer ↔ route contract is
// tested with: any sub, any roles and scope, any other claims a verified
// token can carry, and the principal a route must see for each (or that the
// authorizer must refuse it). The contract tests in infra/auth and in the
// local runner share it, so that both check the same property.
package authtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chronicle-go/chronicle/infra/auth"
)

// Claims are what a token says about its caller. Extra holds claims the
// service ignores, which must change nothing.
type Claims struct {
	Sub   string
	Roles []string // nil: no "roles" claim
	Scope string   // "": no "scope" claim
	Extra map[string]any
}

// fragments are the strings most likely to break an encoding: separators,
// quotes, JSON that looks like a list of roles, the admin role with
// something around it, unicode spaces, control characters.
var fragments = []string{
	auth.RoleAdmin, "billing admin", " admin", "admin ", "admin,ops", "a,b", `"admin"`, `["admin"]`, `{"roles":["admin"]}`,
	"null", "[]", "", " ", "#", "a#b", "auth0|42", "ü", "管理者", "😀", "\u00a0admin", "admin\u2028", `\`, `\u0061dmin`,
	"<script>", "&amp;", "'", "%20", "+", "=", "admin\tops", "\x00", "\u0085", "\x7f", "\u200b", "Admin", "ADMIN",
	strings.Repeat("r", 256), strings.Repeat("é", 128), strings.Repeat("x", 257),
}

// alphabet is what random strings are made of, besides fragments.
var alphabet = []rune("abcAZ09 _-:|#,.\"'\\/[]{}\u00a0\u3000éü管😀\t\n")

// String returns a random string: a fragment, a random run of alphabet, or
// a concatenation of both.
func String(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0, 1:
		return fragments[r.IntN(len(fragments))]
	case 2:
		b := make([]rune, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	default:
		return String(r) + String(r)
	}
}

// Random returns random claims. Most have a sub and are carriable; some are
// not, so that refusals are tested too.
func Random(r *rand.Rand) Claims {
	var c Claims
	c.Sub = String(r)
	if r.IntN(3) > 0 && c.Sub == "" {
		c.Sub = "user-" + fmt.Sprint(r.IntN(1000))
	}
	if r.IntN(5) > 0 {
		c.Roles = []string{} // a present but empty list, unless filled
		for range r.IntN(6) {
			if len(c.Roles) > 0 && r.IntN(4) == 0 {
				c.Roles = append(c.Roles, c.Roles[r.IntN(len(c.Roles))]) // a duplicate
				continue
			}
			c.Roles = append(c.Roles, String(r))
		}
	}
	if r.IntN(3) == 0 {
		words := make([]string, r.IntN(4))
		for i := range words {
			words[i] = String(r)
		}
		c.Scope = strings.Join(words, " ")
	}
	if r.IntN(2) == 0 {
		c.Extra = map[string]any{
			"email":        String(r),
			"groups":       []string{auth.RoleAdmin, String(r)},
			"custom:roles": auth.RoleAdmin,
			"nested":       map[string]any{"roles": []string{auth.RoleAdmin}, "sub": String(r)},
			"principalId":  String(r),
		}
	}
	return c
}

// Sign returns an HS256 token with c and the registered claims a verifier
// configured with issuer and audience accepts at now.
func (c Claims) Sign(secret []byte, issuer, audience string, now time.Time) (string, error) {
	m := jwt.MapClaims{}
	for k, v := range c.Extra {
		m[k] = v
	}
	m["iss"], m["aud"], m["iat"], m["exp"] = issuer, audience, now.Unix(), now.Add(time.Hour).Unix()
	if c.Sub != "" {
		m["sub"] = c.Sub
	}
	if c.Roles != nil {
		m["roles"] = c.Roles
	}
	if c.Scope != "" {
		m["scope"] = c.Scope
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, m).SignedString(secret)
}

// MaxClaimBytes is the longest sub or role the authorizer carries.
const MaxClaimBytes = 256

// Want is the principal a route must see for a token with c, or false when
// the authorizer must refuse the token (401): it has no sub, or a sub or
// role that could not be carried exactly (a control character, more than
// MaxClaimBytes bytes). Roles are the "roles" claim then the words of
// "scope", in order, without empty ones and without duplicates.
func (c Claims) Want() (auth.Principal, bool) {
	if c.Sub == "" || !carriable(c.Sub) {
		return auth.Principal{}, false
	}
	var roles []string
	for _, r := range slices.Concat(c.Roles, strings.Fields(c.Scope)) {
		if r == "" || slices.Contains(roles, r) {
			continue
		}
		if !carriable(r) {
			return auth.Principal{}, false
		}
		roles = append(roles, r)
	}
	return auth.Principal{Sub: c.Sub, Roles: roles}, true
}

func carriable(s string) bool {
	return len(s) <= MaxClaimBytes && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || (r >= 0x7f && r < 0xa0)
	})
}

// Equal reports whether two principals are the same caller with the same
// roles in the same order (no roles and an empty list are the same).
func Equal(a, b auth.Principal) bool {
	return a.Sub == b.Sub && slices.Equal(a.Roles, b.Roles)
}
