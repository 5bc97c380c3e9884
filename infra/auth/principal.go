package auth

import (
	"slices"
	"strings"
)

// RoleAdmin is the role that may do everything.
const RoleAdmin = "admin"

// Authorizer context keys. API Gateway REST (v1) only passes string values from
// a TOKEN authorizer's context on to the integration, so roles travel as one
// space-separated string.
const (
	contextSub   = "sub"
	contextRoles = "roles"
)

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
// PrincipalFromContext reads it back.
func (p Principal) AuthorizerContext() map[string]interface{} {
	return map[string]interface{}{
		contextSub:   p.Sub,
		contextRoles: strings.Join(p.Roles, " "),
	}
}

// PrincipalFromContext reads the principal the authorizer put in
// events.APIGatewayProxyRequestContext.Authorizer. It reports false when there
// is no subject, which a route must treat as unauthenticated.
func PrincipalFromContext(m map[string]interface{}) (Principal, bool) {
	sub, _ := m[contextSub].(string)
	if sub == "" {
		return Principal{}, false
	}
	roles, _ := m[contextRoles].(string)
	return Principal{Sub: sub, Roles: strings.Fields(roles)}, true
}
