package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/domain/team"
)

// Roles of the authorization matrix.
const (
	roleAnonymous = "anonymous"       // no token: API Gateway's authorizer refuses
	roleNoContext = "no principal"    // no authorizer context at the function (a route left open by mistake)
	roleOwner     = "owner"           // a plain user, linked to the target user
	roleStranger  = "other user"      // a plain user with a user of its own, not the target
	roleAdmin     = "admin"           // role admin
	roleUnknown   = "other, no user"  // a plain user, on a user id that does not exist
	roleAdminGone = "admin, no user"  // an admin, on a user id that does not exist
	roleOwnerDead = "owner, deleted"  // a plain user, linked to the target user, which is deleted
	roleAdminDead = "admin, deleted"  // an admin, on a deleted user
	roleStrDead   = "other, deleted"  // a plain user, on someone else's deleted user
	roleNoUserYet = "user, no user"   // a plain user that has no user yet (create)
	roleOtherSub  = "user, other sub" // a plain user creating a user for another identity
	// Team routes: the target user owns the target team (roleOwner is
	// its owner), roleMember's user is a member of it, roleStranger's an
	// outsider; roleUnknown and roleAdminGone name a team (or user) that
	// does not exist, roleNoUserYet is a principal without a user.
	roleMember = "team member" // a plain user whose user is a member (not an owner) of the target team
)

// authzRoute is a route of the matrix and the expected status per role.
type authzRoute struct {
	method, path string // path: {id} and {sub} are the target's
	body         string
	want         map[string]int
}

// TestAuthorizationMatrix runs every route as every role, through the
// gateway (the real authorizer) and the handlers, each cell against a fresh
// target user (and, for the team routes, a fresh team it owns, with one
// member): the contract's rules, and 403 for a user or a team one may not
// see whether or not it exists. The team routes' expectations are derived
// from team.Policy, the rules as data.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	const (
		ok      = http.StatusOK
		created = http.StatusCreated
		gone    = http.StatusGone
	)
	// owned is a route that the owner and the admin may use, and that
	// hides whether a user exists from everyone else.
	owned := func(owner, admin, adminGone, ownerDead, adminDead int) map[string]int {
		return map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOwner: owner, roleStranger: 403, roleAdmin: admin,
			roleUnknown: 403, roleAdminGone: adminGone, roleOwnerDead: ownerDead, roleAdminDead: adminDead, roleStrDead: 403,
		}
	}
	adminOnly := func(admin, adminGone, adminDead int) map[string]int {
		return map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOwner: 403, roleStranger: 403, roleAdmin: admin,
			roleUnknown: 403, roleAdminGone: adminGone, roleOwnerDead: 403, roleAdminDead: adminDead, roleStrDead: 403,
		}
	}
	routes := []authzRoute{
		{method: "POST", path: "/users", body: `{"name":"New","email":"{new}"}`, want: map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleNoUserYet: created, roleOwner: 409, roleAdmin: created,
		}},
		{method: "POST", path: "/users", body: `{"name":"New","email":"{new}","sub":"{newsub}"}`, want: map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOtherSub: 403, roleAdmin: created,
		}},
		{method: "PUT", path: "/users/{id}/name", body: `{"name":"Renamed"}`, want: owned(ok, ok, 404, 409, 409)},
		{method: "PUT", path: "/users/{id}/email", body: `{"email":"{new}"}`, want: owned(ok, ok, 404, 409, 409)},
		{method: "POST", path: "/users/{id}/suspend", body: `{"reason":"matrix"}`, want: adminOnly(ok, 404, 409)},
		{method: "POST", path: "/users/{id}/reactivate", body: `{"reason":"matrix"}`, want: adminOnly(ok, 404, 409)},
		{method: "DELETE", path: "/users/{id}", want: adminOnly(ok, 404, 409)},
		{method: "GET", path: "/users/{id}", want: owned(ok, ok, 404, gone, gone)},
		{method: "GET", path: "/users?email={email}", want: owned(ok, ok, 404, 403, 404)}, // a freed address has no holder to own
		{method: "GET", path: "/users/{id}/history", want: owned(ok, ok, 404, ok, ok)},
		{method: "GET", path: "/users/{id}/state", want: owned(ok, ok, 404, ok, ok)},
		{method: "GET", path: "/users/{id}/consistency", want: adminOnly(ok, 404, ok)},
		{method: "GET", path: "/actors/{sub}/activity", want: map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOwner: ok, roleStranger: 403, roleAdmin: ok,
		}},
		{method: "GET", path: "/ops/projections", want: map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOwner: 403, roleStranger: 403, roleAdmin: ok,
		}},
		{method: "GET", path: "/healthz", want: map[string]int{
			roleAnonymous: ok, roleNoContext: ok, roleOwner: ok, roleStranger: ok, roleAdmin: ok,
		}},

		// Teams: creating one is not an action on a team; any principal
		// with an active user may, owning it; an admin names the owner.
		{method: "POST", path: "/teams", body: `{"name":"New"}`, want: map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOwner: created, roleStranger: created, roleNoUserYet: 403,
			roleAdmin: 400, // an admin without a user must name the owner
		}},
		{method: "POST", path: "/teams", body: `{"name":"New","owner":"{id}"}`, want: map[string]int{
			roleAnonymous: 401, roleNoContext: 401, roleOwner: 403, roleStranger: 403, roleNoUserYet: 403, roleAdmin: created,
		}},
		{method: "PUT", path: "/teams/{team}/name", body: `{"name":"Renamed"}`,
			want: byPolicy(func(team.Actor) team.Action { return team.ActionRename }, ok)},
		{method: "PUT", path: "/teams/{team}/members/{newuser}", body: `{"role":"member"}`,
			want: byPolicy(func(team.Actor) team.Action { return team.ActionSetMember }, ok)},
		{method: "DELETE", path: "/teams/{team}/members/{member}", // the member leaves, or is removed
			want: byPolicy(func(a team.Actor) team.Action { return team.ActionOf(team.RemoveMember{UserID: matrixMember}, a) }, ok)},
		{method: "GET", path: "/teams/{team}", want: byPolicy(func(team.Actor) team.Action { return team.ActionRead }, ok)},
		{method: "GET", path: "/teams/{team}/history", want: byPolicy(func(team.Actor) team.Action { return team.ActionRead }, ok)},
		{method: "GET", path: "/users/{id}/teams", want: map[string]int{ // the user itself, or an admin
			roleAnonymous: 401, roleNoContext: 401, roleOwner: ok, roleMember: 403, roleStranger: 403, roleNoUserYet: 403,
			roleAdmin: ok, roleUnknown: 403, roleAdminGone: 404,
		}},
	}

	s := newMemoryService(t)
	g := newGateway(t, s)
	ctx := t.Context()
	adminSub := "admin-" + newSub("m")
	admin := bearer(t, adminSub, "admin")
	// newTarget is a user of its own identity; with dead, deleted.
	newTarget := func(t *testing.T, suspended, dead bool) (id, sub, email string) {
		sub = "owner-" + newSub("m")
		email = sub + "@example.com"
		a := g.do(ctx, t, jsonRequest("POST", "/users", fmt.Sprintf(`{"name":"Target","email":"%s"}`, email), bearer(t, sub)))
		var w writeBody
		if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &w) != nil {
			t.Fatalf("create target: %v", a)
		}
		if suspended {
			if a := g.do(ctx, t, jsonRequest("POST", "/users/"+w.ID+"/suspend", `{"reason":"setup"}`, admin)); a.status != ok {
				t.Fatalf("suspend target: %v", a)
			}
		}
		if dead {
			if a := g.do(ctx, t, jsonRequest("DELETE", "/users/"+w.ID, "", admin)); a.status != ok {
				t.Fatalf("delete target: %v", a)
			}
		}
		return w.ID, sub, email
	}

	// newTeam is a team owned by the user of ownerSub, with one member,
	// and an active user that is not in it.
	newTeam := func(t *testing.T, ownerSub string) (teamID, memberID, memberSub, newUserID string) {
		a := g.do(ctx, t, jsonRequest("POST", "/teams", `{"name":"Target team"}`, bearer(t, ownerSub)))
		var w writeBody
		if a.status != created || json.Unmarshal([]byte(a.body), &w) != nil {
			t.Fatalf("create team: %v", a)
		}
		memberID, memberSub, _ = newTarget(t, false, false)
		if a := g.do(ctx, t, jsonRequest("PUT", "/teams/"+w.ID+"/members/"+memberID, `{"role":"member"}`, bearer(t, ownerSub))); a.status != ok {
			t.Fatalf("add member: %v", a)
		}
		newUserID, _, _ = newTarget(t, false, false)
		return w.ID, memberID, memberSub, newUserID
	}

	var table strings.Builder
	for _, rt := range routes {
		for _, role := range []string{roleAnonymous, roleNoContext, roleNoUserYet, roleOtherSub, roleOwner, roleMember, roleStranger, roleAdmin,
			roleUnknown, roleAdminGone, roleOwnerDead, roleStrDead, roleAdminDead} {
			want, ok := rt.want[role]
			if !ok {
				continue
			}
			name := rt.method + " " + rt.path + " as " + role
			if rt.body != "" && strings.Contains(rt.body, "sub") {
				name += " (with sub)"
			}
			t.Run(name, func(t *testing.T) {
				dead := strings.HasSuffix(role, "deleted")
				suspended := strings.HasSuffix(rt.path, "/reactivate") && !dead
				id, sub, email := newTarget(t, suspended, dead)
				var teamID, memberID, memberSub, newUserID string
				if strings.Contains(rt.path, "teams") && rt.method != "POST" {
					teamID, memberID, memberSub, newUserID = newTeam(t, sub)
				}
				if role == roleUnknown || role == roleAdminGone {
					id, email = uuid.Must(uuid.NewV7()).String(), "nobody-"+newSub("m")+"@example.com"
					teamID = uuid.Must(uuid.NewV7()).String()
				}
				replacer := strings.NewReplacer("{id}", id, "{sub}", sub, "{email}", email,
					"{new}", "new-"+newSub("m")+"@example.com", "{newsub}", "someone-"+newSub("m"),
					"{team}", teamID, "{member}", memberID, "{newuser}", newUserID)
				req := jsonRequest(rt.method, replacer.Replace(rt.path), replacer.Replace(rt.body))
				var auth [2]string
				switch role {
				case roleOwner, roleOwnerDead:
					auth = bearer(t, sub)
				case roleMember:
					auth = bearer(t, memberSub)
				case roleStranger, roleUnknown, roleStrDead:
					_, other, _ := newTarget(t, false, false) // a plain user with a user of its own
					auth = bearer(t, other)
				case roleNoUserYet, roleOtherSub:
					auth = bearer(t, "newcomer-"+newSub("m"))
				case roleAdmin, roleAdminGone, roleAdminDead:
					auth = admin
				}
				if auth[0] != "" {
					req.headers = append(req.headers, auth)
				}
				var a httpAnswer
				if role == roleNoContext {
					a = g.direct(ctx, t, req) // past the gateway, without an authorizer context
				} else {
					a = g.do(ctx, t, req)
				}
				if a.status != want {
					t.Errorf("status %d, want %d: %v", a.status, want, a)
				}
				checkAnswer(t, a)
				fmt.Fprintf(&table, "%-34s %-16s %d\n", rt.method+" "+rt.path, role, a.status)
			})
		}
	}
	t.Logf("authorization matrix (route, role, status):\n%s", table.String())
}

// direct hands req to the route's function without the authorizer, as if
// the route had none: the functions must refuse on their own.
func (g *gateway) direct(ctx context.Context, tb testing.TB, r httpRequest) httpAnswer {
	tb.Helper()
	rawPath, rawQuery, _ := strings.Cut(r.target, "?")
	rt, params, ok := g.match(r.method, rawPath)
	if !ok {
		return g.reply("MISSING_AUTHENTICATION_TOKEN")
	}
	ev := events.APIGatewayProxyRequest{Resource: rt.resource, Path: rawPath, HTTPMethod: r.method, PathParameters: params,
		Headers: map[string]string{}, Body: string(r.body)}
	for _, h := range r.headers {
		ev.Headers[h[0]] = h[1]
	}
	if rawQuery != "" {
		ev.QueryStringParameters = map[string]string{}
		for _, kv := range strings.Split(rawQuery, "&") {
			k, v, _ := strings.Cut(kv, "=")
			ev.QueryStringParameters[k] = v
		}
	}
	resp, err := rt.handler.Handle(ctx, ev)
	if err != nil {
		return g.reply("INTEGRATION_FAILURE")
	}
	apitest.ValidateProxy(tb, ev, resp)
	return httpAnswer{status: resp.StatusCode, headers: resp.Headers, body: resp.Body}
}

// matrixMember stands for the member's user id in the actions byPolicy
// derives: the member role's actor is that user.
const matrixMember = "member"

// byPolicy is the expected status of a route on a team, by role, derived
// from team.Policy: success where the role's place in the team may take
// the route's action (actionOf: the action the route is for that actor),
// 403 elsewhere, whether or not the team exists; an admin may do
// everything, and is told 404 of a team that does not exist.
func byPolicy(actionOf func(team.Actor) team.Action, success int) map[string]int {
	want := map[string]int{roleAnonymous: 401, roleNoContext: 401, roleStranger: 403, roleUnknown: 403, roleNoUserYet: 403,
		roleAdmin: success, roleAdminGone: 404}
	for role, place := range map[string]team.Role{roleOwner: team.RoleOwner, roleMember: team.RoleMember} {
		actor := team.Actor{UserID: string(place)}
		if place == team.RoleMember {
			actor.UserID = matrixMember
		}
		want[role] = 403
		if slices.Contains(team.Policy[actionOf(actor)], place) {
			want[role] = success
		}
	}
	return want
}
