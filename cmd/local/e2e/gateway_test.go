package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/cmd/local/internal/localjwt"
)

// What API Gateway answers itself, as the template's GatewayResponses
// shape it, and what the authorizer lets through.

func TestAuthorizerRejects(t *testing.T) {
	t.Parallel()
	path := "/users/" + uuid.NewString()
	cases := map[string]string{
		"no Authorization header":   "",
		"not a bearer token":        "Basic YWxpY2U6c2VjcmV0",
		"bearer without a token":    "Bearer ",
		"garbage":                   "Bearer not.a.jwt",
		"alg none":                  "Bearer " + b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(`{"sub":"eve","roles":["admin"],"exp":4102444800}`) + ".",
		"signed with another key":   "Bearer " + mintWith(t, func(m *localjwt.Minter) { m.Secret = []byte("not-the-secret") }),
		"expired":                   "Bearer " + mintWith(t, func(m *localjwt.Minter) { m.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } }),
		"for another audience":      "Bearer " + mintWith(t, func(m *localjwt.Minter) { m.Audience = "someone-else" }),
		"from another issuer":       "Bearer " + mintWith(t, func(m *localjwt.Minter) { m.Issuer = "https://evil.example/" }),
		"a token in the wrong case": "bearer-ish " + s.admin,
	}
	for name, header := range cases {
		t.Run(name, func(t *testing.T) {
			r := do(t, req{method: "GET", path: path, header: map[string]string{"Authorization": header}})
			p := r.wantProblem(t, http.StatusUnauthorized)
			if p.Title != "Unauthorized" || p.Type != "about:blank" { // the template's UNAUTHORIZED response
				t.Errorf("problem %+v", p)
			}
		})
	}
	t.Run("bearer scheme in any case passes", func(t *testing.T) {
		do(t, req{method: "GET", path: path, header: map[string]string{"Authorization": "bearer " + s.admin}}).
			wantProblem(t, http.StatusNotFound) // the function's 404: there is no such user
	})
}

// mintWith mints an admin token with the local minter, changed by change;
// it skips the test where the suite cannot mint (or mints RS256: these
// cases forge HS256 tokens).
func mintWith(t *testing.T, change func(*localjwt.Minter)) string {
	t.Helper()
	if s.minter == nil || s.minter.Key != nil {
		t.Skip("forges HS256 tokens: needs the local secret")
	}
	m := *s.minter
	change(&m)
	tok, err := m.Mint("eve", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoutesAPIGatewayDoesNotHave(t *testing.T) {
	t.Parallel()
	for _, r := range []req{
		{method: "GET", path: "/nope"},
		{method: "GET", path: "/nope", token: s.admin},
		{method: "PATCH", path: "/users", token: s.admin},                             // a method the resource lacks
		{method: "GET", path: "/users/" + uuid.NewString() + "/nope", token: s.admin}, // deeper than any route
		{method: "POST", path: "/healthz"},
	} {
		p := do(t, r).wantProblem(t, http.StatusNotFound) // MISSING_AUTHENTICATION_TOKEN, as the template maps it
		if p.Title != "Not Found" || p.Type != "about:blank" {
			t.Errorf("%s %s: %+v", r.method, r.path, p)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	id := "e2e-" + uuid.NewString()
	r := do(t, req{method: "GET", path: "/users/" + uuid.NewString(), token: s.admin, header: map[string]string{"X-Request-Id": id}})
	if got := r.header.Get("X-Request-Id"); got != id {
		t.Errorf("X-Request-Id %q, want %q echoed", got, id)
	}
	r = do(t, req{method: "GET", path: "/healthz"})
	if got := r.header.Get("X-Request-Id"); uuid.Validate(got) != nil {
		t.Errorf("X-Request-Id %q, want a new UUID", got)
	}
	// The request id becomes the correlation id of the events it causes.
	owner := newIdentity(t)
	rid := "corr-" + uuid.NewString()
	var w written
	do(t, req{method: "POST", path: "/users", token: owner.token, header: map[string]string{"X-Request-Id": rid},
		body: map[string]string{"name": "Peggy", "email": uniqueEmail("peggy")}}).want(t, http.StatusCreated).decode(t, &w)
	var h historyAnswer
	do(t, req{method: "GET", path: "/users/" + w.ID + "/history", token: owner.token}).want(t, http.StatusOK).decode(t, &h)
	if len(h.Events) != 1 || h.Events[0].CorrelationID != rid {
		t.Errorf("history %+v, want correlation id %s", h.Events, rid)
	}
}

func TestNonAdminCannotUseAdminRoutes(t *testing.T) {
	t.Parallel()
	u := newIdentity(t, "auditor") // roles other than admin give nothing extra
	for _, r := range []req{
		{method: "GET", path: "/ops/projections"},
		{method: "GET", path: "/users"},
		{method: "GET", path: "/users?status=active&limit=5"},
		{method: "GET", path: "/actors/" + s.adminSub + "/activity"},
		{method: "POST", path: "/users/" + uuid.NewString() + "/suspend", body: map[string]string{"reason": "x"}},
	} {
		r.token = u.token
		if p := do(t, r).wantProblem(t, http.StatusForbidden); strings.Contains(p.Detail, "panic") {
			t.Errorf("%+v", p)
		}
	}
}
