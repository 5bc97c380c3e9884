package teamapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/teamapi"
)

// The production dependencies satisfy the handlers' interfaces.
var (
	_ teamapi.Guards     = (*dynamo.Store)(nil)
	_ teamapi.Guards     = (*memory.Store)(nil)
	_ teamapi.UserLoader = (*user.Service)(nil)
	_ teamapi.TeamLoader = (*team.Service)(nil)
)

// foldViews is the read model of teams as a fold of the event store: what
// the projections (infra/teamviews) keep, read consistently. UserTeams
// folds every team the test created.
type foldViews struct {
	teams *team.Service
	mu    sync.Mutex
	ids   map[string]bool
}

func (v *foldViews) Team(ctx context.Context, id string) (team.View, bool, error) {
	agg, err := v.teams.Load(ctx, id)
	if err != nil || agg.Version == 0 {
		return team.View{}, false, err
	}
	return team.ViewOf(id, agg.Version, agg.UpdatedAt, agg.State), true, nil
}

func (v *foldViews) UserTeams(ctx context.Context, userID string) ([]team.Membership, error) {
	v.mu.Lock()
	ids := slices.Sorted(maps.Keys(v.ids))
	v.mu.Unlock()
	var out []team.Membership
	for _, id := range ids {
		agg, err := v.teams.Load(ctx, id)
		if err != nil {
			return nil, err
		}
		if m, ok := team.Memberships(id, agg.State)[userID]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func (v *foldViews) add(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ids[id] = true
}

// env is both functions' edges as lambdafn composes them (the User API
// with the Team API), over one in-memory event store.
type env struct {
	store *memory.Store
	users *user.Service
	teams *team.Service
	views *foldViews
	cmds  *httpapi.Commands
	qs    *httpapi.Queries
	admin string // an admin's sub
}

// newEnv is an env; opts tune the Team API's command dependencies.
func newEnv(t testing.TB, opts ...func(*teamapi.CommandsDeps)) *env {
	t.Helper()
	store := memory.New()
	e := &env{store: store, admin: "admin-" + uuid.NewString()[:8],
		users: user.NewService(store, es.Options{SnapshotEvery: 3, MaxAttempts: 8, CacheSize: 64}),
		teams: team.NewService(store, es.Options{SnapshotEvery: 3, MaxAttempts: 8, CacheSize: 64})}
	e.views = &foldViews{teams: e.teams, ids: map[string]bool{}}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps := teamapi.CommandsDeps{Teams: e.teams, Users: e.users, Guards: store, Logger: logger}
	for _, o := range opts {
		o(&deps)
	}
	tc := teamapi.NewCommands(deps)
	e.cmds = httpapi.NewCommands(e.users, logger, httpapi.WithAPI(tc.API()))
	e.qs = e.queries(t, e.views)
	return e
}

// queries is the queries function's edge reading the teams' views.
func (e *env) queries(t testing.TB, views teamapi.Views) *httpapi.Queries {
	t.Helper()
	tq, err := teamapi.NewQueries(teamapi.QueriesDeps{Teams: e.teams, Users: e.users, Events: e.store, Guards: e.store, Views: views})
	if err != nil {
		t.Fatal(err)
	}
	qs, err := httpapi.NewQueries(httpapi.QueriesDeps{Users: e.users, Events: e.store, ReadModel: nilReadModel{},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Health: func(context.Context) error { return nil }},
		httpapi.WithAPI(tq.API()))
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// withViews is e with another read model of teams.
func (e *env) withViews(t testing.TB, views teamapi.Views) *env {
	t.Helper()
	c := *e
	c.qs = e.queries(t, views)
	return &c
}

// nilReadModel is a user read model with nothing in it: the team tests
// read no user view.
type nilReadModel struct{ httpapi.ReadModel }

// req is one request: method, the route's resource, the concrete path.
type req struct {
	method, resource, path string
	params                 map[string]string
	body                   string
	headers                map[string]string
	query                  map[string]string
	sub                    string
	roles                  []string
}

// answer is what a function answered.
type answer struct {
	status  int
	headers map[string]string
	body    string
}

func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
}

// problem is the problem body of a.
func (a answer) problem(t testing.TB) (kind string, fields []string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	a.decode(t, &p)
	for _, f := range p.Errors {
		fields = append(fields, f.Field)
	}
	return strings.TrimPrefix(p.Type, "urn:chronicle:problem:"), fields
}

// do sends r to the function that serves it (by method: commands write,
// queries read) and checks the exchange against the OpenAPI document.
func (e *env) do(t testing.TB, r req) answer {
	t.Helper()
	ev := events.APIGatewayProxyRequest{Resource: r.resource, Path: r.path, HTTPMethod: r.method,
		PathParameters: r.params, Headers: map[string]string{}, QueryStringParameters: r.query, Body: r.body}
	if r.body != "" {
		ev.Headers["Content-Type"] = "application/json"
	}
	maps.Copy(ev.Headers, r.headers)
	if r.sub != "" {
		ev.RequestContext.Authorizer = auth.Principal{Sub: r.sub, Roles: r.roles}.AuthorizerContext()
	}
	h := e.qs.Handle
	if r.method != "GET" {
		h = e.cmds.Handle
	}
	resp, err := h(t.Context(), ev)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	apitest.ValidateProxy(t, ev, resp)
	return answer{status: resp.StatusCode, headers: resp.Headers, body: resp.Body}
}

// newUser creates the user of a new identity and returns its sub and id.
func (e *env) newUser(t testing.TB, name string) (sub, id string) {
	t.Helper()
	sub = name + "-" + uuid.NewString()[:8]
	a := e.do(t, req{method: "POST", resource: "/users", path: "/users", sub: sub,
		body: `{"name":"` + name + `","email":"` + sub + `@example.com"}`})
	if a.status != 201 {
		t.Fatalf("create user: %d %s", a.status, a.body)
	}
	var w struct{ ID string }
	a.decode(t, &w)
	return sub, w.ID
}

// suspend suspends user id, as an admin.
func (e *env) suspend(t testing.TB, id string) {
	t.Helper()
	a := e.do(t, req{method: "POST", resource: "/users/{id}/suspend", path: "/users/" + id + "/suspend",
		params: map[string]string{"id": id}, sub: e.admin, roles: []string{"admin"}, body: `{"reason":"test"}`})
	if a.status != 200 {
		t.Fatalf("suspend: %d %s", a.status, a.body)
	}
}

// The requests of the team routes.
func createTeam(sub string, body string, roles ...string) req {
	return req{method: "POST", resource: "/teams", path: "/teams", body: body, sub: sub, roles: roles}
}

func renameTeam(sub, id, body string, roles ...string) req {
	return req{method: "PUT", resource: "/teams/{id}/name", path: "/teams/" + id + "/name",
		params: map[string]string{"id": id}, body: body, sub: sub, roles: roles}
}

func setMember(sub, id, member, role string, roles ...string) req {
	return req{method: "PUT", resource: "/teams/{id}/members/{userId}", path: "/teams/" + id + "/members/" + member,
		params: map[string]string{"id": id, "userId": member}, body: `{"role":"` + role + `"}`, sub: sub, roles: roles}
}

func removeMember(sub, id, member, body string, roles ...string) req {
	return req{method: "DELETE", resource: "/teams/{id}/members/{userId}", path: "/teams/" + id + "/members/" + member,
		params: map[string]string{"id": id, "userId": member}, body: body, sub: sub, roles: roles}
}

func getTeam(sub, id string, roles ...string) req {
	return req{method: "GET", resource: "/teams/{id}", path: "/teams/" + id, params: map[string]string{"id": id}, sub: sub, roles: roles}
}

func teamHistory(sub, id string, roles ...string) req {
	return req{method: "GET", resource: "/teams/{id}/history", path: "/teams/" + id + "/history", params: map[string]string{"id": id}, sub: sub, roles: roles}
}

func userTeams(sub, id string, roles ...string) req {
	return req{method: "GET", resource: "/users/{id}/teams", path: "/users/" + id + "/teams", params: map[string]string{"id": id}, sub: sub, roles: roles}
}

// newTeam creates a team owned by sub's user and returns its id.
func (e *env) newTeam(t testing.TB, sub string) string {
	t.Helper()
	a := e.do(t, createTeam(sub, `{"name":"Team of `+sub+`"}`))
	if a.status != 201 {
		t.Fatalf("create team: %d %s", a.status, a.body)
	}
	var w struct{ ID string }
	a.decode(t, &w)
	e.views.add(w.ID)
	return w.ID
}

// want checks a's status.
func want(t testing.TB, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
}
