package teamapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/metrics/metricstest"
	"github.com/chronicle-go/chronicle/infra/teamapi"
)

// TestTeamLifecycle walks every team route through both functions' edges:
// create (201, Location, ETag), rename, add a member, read it back, the
// history, a user's teams, leave.
func TestTeamLifecycle(t *testing.T) {
	e := newEnv(t)
	alice, aliceID := e.newUser(t, "alice")
	bob, bobID := e.newUser(t, "bob")

	a := e.do(t, createTeam(alice, `{"name":"  Platform "}`))
	want(t, a, 201)
	var w struct {
		ID      string
		Version int64
	}
	a.decode(t, &w)
	e.views.add(w.ID)
	if w.Version != 1 || a.headers["Location"] != "/teams/"+w.ID || a.headers["ETag"] != `"1"` {
		t.Fatalf("create: %+v %v", w, a.headers)
	}
	if _, err := uuid.Parse(w.ID); err != nil || uuid.MustParse(w.ID).Version() != 7 {
		t.Errorf("team id %q: want a UUID v7", w.ID)
	}
	want(t, e.do(t, renameTeam(alice, w.ID, `{"name":"Infra"}`)), 200)
	a = e.do(t, setMember(alice, w.ID, strings.ToUpper(bobID), "member"))
	want(t, a, 200)
	if a.headers["ETag"] != `"3"` {
		t.Errorf("set member: ETag %q", a.headers["ETag"])
	}

	for _, sub := range []string{alice, bob} {
		a = e.do(t, getTeam(sub, w.ID))
		want(t, a, 200)
		var team struct {
			Name    string
			Version int64
			Members []struct{ UserID, Role string }
		}
		a.decode(t, &team)
		if team.Name != "Infra" || team.Version != 3 || len(team.Members) != 2 ||
			team.Members[0].UserID != aliceID || team.Members[0].Role != "owner" || team.Members[1].UserID != bobID {
			t.Fatalf("team as %s: %+v", sub, team)
		}
		if a.headers["X-Source"] != "projection" || a.headers["ETag"] != `"3"` {
			t.Errorf("headers %v", a.headers)
		}
	}
	r := getTeam(bob, w.ID)
	r.query = map[string]string{"consistent": "true"}
	if a = e.do(t, r); a.headers["X-Source"] != "event-store" {
		t.Errorf("consistent=true: X-Source %q", a.headers["X-Source"])
	}

	a = e.do(t, teamHistory(bob, w.ID))
	want(t, a, 200)
	var h struct {
		Events []struct{ Type, Actor string }
	}
	a.decode(t, &h)
	var types []string
	for _, ev := range h.Events {
		types = append(types, ev.Type)
		if ev.Actor != alice {
			t.Errorf("event %s by %q, want %q", ev.Type, ev.Actor, alice)
		}
	}
	if !slices.Equal(types, []string{"team.created", "team.renamed", "team.member_added"}) {
		t.Errorf("history %v", types)
	}

	a = e.do(t, userTeams(bob, bobID))
	want(t, a, 200)
	var ut struct {
		Teams []struct{ TeamID, Name, Role string }
	}
	a.decode(t, &ut)
	if len(ut.Teams) != 1 || ut.Teams[0].TeamID != w.ID || ut.Teams[0].Name != "Infra" || ut.Teams[0].Role != "member" {
		t.Fatalf("bob's teams %+v", ut)
	}

	// Bob leaves: a member may remove its own user.
	want(t, e.do(t, removeMember(bob, w.ID, bobID, `{"reason":"moving on"}`)), 200)
	a = e.do(t, userTeams(bob, bobID))
	a.decode(t, &ut)
	if len(ut.Teams) != 0 {
		t.Fatalf("after leaving: %+v", ut)
	}
	// No longer a member: no longer a reader.
	want(t, e.do(t, getTeam(bob, w.ID)), 403)
	want(t, e.do(t, teamHistory(bob, w.ID)), 403)
}

// TestTeamRefusals: each refusal with its status and problem kind, and
// the field at fault for a 400.
func TestTeamRefusals(t *testing.T) {
	e := newEnv(t)
	alice, aliceID := e.newUser(t, "alice")
	bob, bobID := e.newUser(t, "bob")
	carol, carolID := e.newUser(t, "carol")
	id := e.newTeam(t, alice)
	want(t, e.do(t, setMember(alice, id, bobID, "member")), 200)
	e.suspend(t, carolID)
	admin := []string{"admin"}
	unknown := uuid.Must(uuid.NewV7()).String()

	for _, tc := range []struct {
		name   string
		r      req
		status int
		kind   string
		fields []string
	}{
		{"a blank name", createTeam(alice, `{"name":" "}`), 400, "validation", []string{"name"}},
		{"an unknown field", createTeam(alice, `{"name":"x","colour":"red"}`), 400, "validation", []string{"colour"}},
		{"a bad role", setMember(alice, id, bobID, "admin"), 400, "validation", []string{"role"}},
		{"a bad team id", renameTeam(alice, "nope", `{"name":"x"}`), 400, "validation", []string{"id"}},
		{"a bad member id", removeMember(alice, id, "nope", ""), 400, "validation", []string{"userId"}},
		{"an admin's bad owner", createTeam(e.admin, `{"name":"x","owner":"nope"}`, admin...), 400, "validation", []string{"owner"}},
		{"an admin without a user names no owner", createTeam(e.admin, `{"name":"x"}`, admin...), 400, "validation", []string{"owner"}},
		{"a non-admin names the owner", createTeam(alice, `{"name":"x","owner":"`+bobID+`"}`), 403, "forbidden", nil},
		{"a caller without a user creates", createTeam("nobody-"+uuid.NewString()[:8], `{"name":"x"}`), 403, "forbidden", nil},
		{"a member renames", renameTeam(bob, id, `{"name":"x"}`), 403, "forbidden", nil},
		{"a member adds a member", setMember(bob, id, carolID, "member"), 403, "forbidden", nil},
		{"a member removes the owner", removeMember(bob, id, aliceID, ""), 403, "forbidden", nil},
		{"an outsider renames", renameTeam(carol, id, `{"name":"x"}`), 403, "forbidden", nil},
		{"an outsider renames a team that does not exist", renameTeam(carol, unknown, `{"name":"x"}`), 403, "forbidden", nil},
		{"an outsider reads", getTeam(carol, id), 403, "forbidden", nil},
		{"an outsider reads a team that does not exist", getTeam(carol, unknown), 403, "forbidden", nil},
		{"an outsider reads the history", teamHistory(carol, id), 403, "forbidden", nil},
		{"another user's teams", userTeams(alice, bobID), 403, "forbidden", nil},
		{"an admin renames a team that does not exist", renameTeam(e.admin, unknown, `{"name":"x"}`, admin...), 404, "not-found", nil},
		{"an admin reads a team that does not exist", getTeam(e.admin, unknown, admin...), 404, "not-found", nil},
		{"an admin reads the history of a team that does not exist", teamHistory(e.admin, unknown, admin...), 404, "not-found", nil},
		{"an admin reads the teams of a user that does not exist", userTeams(e.admin, unknown, admin...), 404, "not-found", nil},
		{"the owner removes a non-member", removeMember(alice, id, carolID, ""), 404, "not-found", nil},
		{"the last owner leaves", removeMember(alice, id, aliceID, ""), 409, "rule-violated", nil},
		{"the last owner steps down", setMember(alice, id, aliceID, "member"), 409, "rule-violated", nil},
		{"a suspended user joins", setMember(alice, id, carolID, "member"), 409, "rule-violated", nil},
		{"a user that does not exist joins", setMember(alice, id, unknown, "member"), 409, "rule-violated", nil},
		{"a suspended user creates a team", createTeam(carol, `{"name":"x"}`), 409, "rule-violated", nil},
		{"an admin names a suspended owner", createTeam(e.admin, `{"name":"x","owner":"`+carolID+`"}`, admin...), 409, "rule-violated", nil},
		{"no principal", req{method: "GET", resource: "/teams/{id}", path: "/teams/" + id, params: map[string]string{"id": id}}, 401, "unauthenticated", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, tc.r)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			kind, fields := a.problem(t)
			if kind != tc.kind || !slices.Equal(fields, tc.fields) {
				t.Errorf("problem %s %v, want %s %v: %s", kind, fields, tc.kind, tc.fields, a.body)
			}
		})
	}
	// Nothing refused was written.
	agg, err := e.teams.Load(t.Context(), id)
	if err != nil || agg.Version != 2 {
		t.Fatalf("team at v%d (%v), want v2", agg.Version, err)
	}
}

// TestTeamWriteHeaders: a repeat with the same Idempotency-Key answers as
// the first and writes nothing; the key with another body is a 422; an
// If-Match on another version is a 412 with the current ETag, and writes
// nothing; an admin may do what an owner may, and name the owner.
func TestTeamWriteHeaders(t *testing.T) {
	e := newEnv(t)
	alice, aliceID := e.newUser(t, "alice")
	_, bobID := e.newUser(t, "bob")

	r := createTeam(alice, `{"name":"Once"}`)
	r.headers = map[string]string{"Idempotency-Key": "k1"}
	first := e.do(t, r)
	want(t, first, 201)
	again := e.do(t, r)
	want(t, again, 201)
	if again.body != first.body || again.headers["Location"] != first.headers["Location"] {
		t.Fatalf("repeat answered %s, first %s", again.body, first.body)
	}
	var w struct{ ID string }
	first.decode(t, &w)
	r.body = `{"name":"Twice"}`
	want(t, e.do(t, r), 422)

	rn := renameTeam(alice, w.ID, `{"name":"Renamed"}`)
	rn.headers = map[string]string{"If-Match": `"7"`}
	a := e.do(t, rn)
	want(t, a, 412)
	if a.headers["ETag"] != `"1"` {
		t.Errorf("412 ETag %q, want \"1\"", a.headers["ETag"])
	}
	rn.headers["If-Match"] = `"1"`
	want(t, e.do(t, rn), 200)

	admin := []string{"admin"}
	a = e.do(t, createTeam(e.admin, `{"name":"Bob's","owner":"`+bobID+`"}`, admin...))
	want(t, a, 201)
	var bw struct{ ID string }
	a.decode(t, &bw)
	want(t, e.do(t, setMember(e.admin, bw.ID, aliceID, "owner", admin...)), 200)
	want(t, e.do(t, removeMember(e.admin, bw.ID, bobID, `{"reason":"reorg"}`, admin...)), 200)
	agg, err := e.teams.Load(t.Context(), bw.ID)
	if err != nil || len(agg.State.Members) != 1 || agg.State.Members[aliceID].Role != "owner" {
		t.Fatalf("admin's team: %+v %v", agg.State, err)
	}
}

// TestTeamHistoryPages: the history pages as a user's does.
func TestTeamHistoryPages(t *testing.T) {
	e := newEnv(t)
	alice, _ := e.newUser(t, "alice")
	id := e.newTeam(t, alice)
	for _, n := range []string{"a", "b", "c"} {
		want(t, e.do(t, renameTeam(alice, id, `{"name":"`+n+`"}`)), 200)
	}
	r := teamHistory(alice, id)
	r.query = map[string]string{"limit": "3"}
	a := e.do(t, r)
	want(t, a, 200)
	var page struct {
		Events     []struct{ Version int64 }
		NextCursor string
	}
	a.decode(t, &page)
	if len(page.Events) != 3 || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	r.query = map[string]string{"cursor": page.NextCursor}
	a = e.do(t, r)
	page.NextCursor = "" // absent on the last page
	a.decode(t, &page)
	if len(page.Events) != 1 || page.Events[0].Version != 4 || page.NextCursor != "" {
		t.Fatalf("second page %+v", page)
	}
	r.query = map[string]string{"limit": "0"}
	want(t, e.do(t, r), 400)
}

// TestReadYourWrites: a view behind the version asked for is passed over
// for the event store; a stale view does not refuse a member who just
// joined.
func TestReadYourWrites(t *testing.T) {
	e := newEnv(t)
	alice, _ := e.newUser(t, "alice")
	bob, bobID := e.newUser(t, "bob")
	id := e.newTeam(t, alice)
	r := getTeam(alice, id)
	r.headers = map[string]string{"X-Min-Version": "1"}
	if a := e.do(t, r); a.status != 200 || a.headers["X-Source"] != "projection" {
		t.Fatalf("minVersion met by the view: %d %v", a.status, a.headers)
	}
	// A view that stays at version 1: the read model behind.
	stale, _, err := e.views.Team(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want(t, e.do(t, setMember(alice, id, bobID, "member")), 200)
	q := e.withViews(t, staleViews{stale})
	r = getTeam(alice, id)
	r.query = map[string]string{"minVersion": "2"}
	a := q.do(t, r)
	if a.status != 200 || a.headers["X-Source"] != "event-store" || a.headers["ETag"] != `"2"` {
		t.Fatalf("minVersion past the view: %d %v %s", a.status, a.headers, a.body)
	}
	a = q.do(t, getTeam(bob, id))
	if a.status != 200 || a.headers["X-Source"] != "event-store" {
		t.Fatalf("a new member on a stale view: %d %v %s", a.status, a.headers, a.body)
	}
}

// staleViews is a read model stuck at one view of a team.
type staleViews struct{ v team.View }

func (s staleViews) Team(_ context.Context, id string) (team.View, bool, error) {
	return s.v, s.v.ID == id, nil
}

func (s staleViews) UserTeams(context.Context, string) ([]team.Membership, error) { return nil, nil }

// TestTeamCommandMetrics: with CommandsDeps.Metrics, every team command
// writes one EMF line named after it (team.*), beside the User API's
// commands on the same recorder; a request refused before the command
// runs writes none.
func TestTeamCommandMetrics(t *testing.T) {
	var emf metricstest.Buffer
	e := newEnv(t, func(d *teamapi.CommandsDeps) { d.Metrics = metrics.New(&emf, "", "commands") })
	alice, _ := e.newUser(t, "alice")
	a := e.do(t, createTeam(alice, `{"name":"Platform"}`))
	want(t, a, 201)
	var w struct{ ID string }
	a.decode(t, &w)
	want(t, e.do(t, renameTeam(alice, w.ID, `{"name":"Infra"}`)), 200)
	want(t, e.do(t, renameTeam(alice, w.ID, `{"name":""}`)), 400) // no command ran

	got := emf.Lines(t)
	if len(got) != 2 || got[0]["Command"] != "team.create" || got[1]["Command"] != "team.rename" {
		t.Fatalf("lines %v", got)
	}
	for _, m := range got {
		if m["Function"] != "commands" || m["CommandLatency"].(float64) <= 0 || m["VersionConflictRetries"] != 0.0 || m["CommandErrors"] != 0.0 {
			t.Errorf("line %v", m)
		}
	}
}
