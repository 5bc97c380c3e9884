package auth

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// RoleAdmin is the role that may do everything.
const RoleAdmin = "admin"

// Authorizer context keys. API Gateway REST (v1) passes only string, number
// and boolean values from a TOKEN authorizer's context on to the
// integration, so the roles travel as one string holding a JSON array: a
// role may contain any character a verified token can carry (spaces,
// commas, quotes), and a separator-joined list would split "billing admin"
// into [billing admin].
const (
	contextSub   = "sub"
	contextRoles = "roles"
)

// maxClaimBytes is the longest sub or role a principal carries. Longer ones
// are refused at verification rather than cut.
const maxClaimBytes = 256

// Principal is the verified caller: its subject and its roles.
type Principal struct {
	Sub   string
	Roles []string
}

// IsAdmin reports whether p holds RoleAdmin.
func (p Principal) IsAdmin() bool {
	return slices.Contains(p.Roles, RoleAdmin)
}

// AuthorizerContext encodes p as the context of an authorizer response.
// PrincipalFromContext reads it back, exactly.
func (p Principal) AuthorizerContext() map[string]any {
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	b, _ := json.Marshal(roles) // a []string always encodes
	return map[string]any{
		contextSub:   p.Sub,
		contextRoles: string(b),
	}
}

// PrincipalFromContext reads the principal the authorizer put in
// events.APIGatewayProxyRequestContext.Authorizer. It reports false when
// there is no subject or the roles are not the JSON array AuthorizerContext
// writes (an older authorizer's answer, still cached by API Gateway, say),
// which a route must treat as unauthenticated: the roles cannot be known.
func PrincipalFromContext(m map[string]any) (Principal, bool) {
	sub, _ := m[contextSub].(string)
	encoded, _ := m[contextRoles].(string)
	var roles []string
	if sub == "" || !strings.HasPrefix(encoded, "[") || json.Unmarshal([]byte(encoded), &roles) != nil {
		return Principal{}, false
	}
	if len(roles) == 0 {
		roles = nil
	}
	return Principal{Sub: sub, Roles: roles}, true
}

// carriable reports whether a sub or a role reaches the route functions
// exactly and can be logged safely: valid UTF-8, no control character, at
// most maxClaimBytes bytes.
func carriable(s string) bool {
	return len(s) <= maxClaimBytes && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || (r >= 0x7f && r < 0xa0)
	})
}
