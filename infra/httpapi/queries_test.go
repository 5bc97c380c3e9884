package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// userBody is GET /users/{id}'s answer for a live user.
type userBody struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Sub       string    `json:"sub"`
	Status    string    `json:"status"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// GET /users/{id}
func TestGetUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	get := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/get-user.json", opts...))
	}
	wantSource := func(t *testing.T, resp events.APIGatewayProxyResponse, source string, version int64) userBody {
		t.Helper()
		var u userBody
		wantJSON(t, resp, http.StatusOK, &u)
		if resp.Headers["X-Source"] != source || resp.Headers["ETag"] != `"`+strconv.FormatInt(version, 10)+`"` || u.Version != version {
			t.Errorf("X-Source %q, ETag %s, version %d: want %s at %d", resp.Headers["X-Source"], resp.Headers["ETag"], u.Version, source, version)
		}
		return u
	}

	t.Run("200 from the projection", func(t *testing.T) {
		t.Parallel()
		sub := newSub("alice")
		id, email := e.createUser(t, sub)
		e.project(t, id)
		resp := get(t, as(sub), withID(id))
		u := wantSource(t, resp, "projection", 1)
		if u.ID != id || u.Email != email || u.Sub != sub || u.Status != "active" || u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
			t.Errorf("user %+v", u)
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &raw)
		for _, k := range []string{"id", "name", "email", "sub", "status", "version", "createdAt", "updatedAt"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("answer lacks %q: %s", k, resp.Body)
			}
		}
		if len(raw) != 8 {
			t.Errorf("answer has members beyond the contract: %s", resp.Body)
		}
	})

	t.Run("200 from the event store when the view is behind minVersion", func(t *testing.T) {
		t.Parallel()
		sub := newSub("bob")
		id, _ := e.createUser(t, sub)
		e.project(t, id)
		e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), withBody(map[string]string{"name": "Bob 2"})))
		u := wantSource(t, get(t, as(sub), withID(id), withQuery("minVersion", "2")), "event-store", 2)
		if u.Name != "Bob 2" {
			t.Errorf("name %q: want the written one", u.Name)
		}
		wantSource(t, get(t, as(sub), withID(id), withHeader("x-min-version", "2")), "event-store", 2)
		wantSource(t, get(t, as(sub), withID(id)), "projection", 1) // no minimum: the view, stale
		e.project(t, id)
		wantSource(t, get(t, as(sub), withID(id), withQuery("minVersion", "2")), "projection", 2)
	})

	t.Run("200 from the event store when the view is missing", func(t *testing.T) {
		t.Parallel()
		sub := newSub("carl")
		id, _ := e.createUser(t, sub)
		wantSource(t, get(t, as(sub), withID(id)), "event-store", 1)
	})

	t.Run("200 consistent=true reads the event store", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("dina"))
		e.project(t, id)
		wantSource(t, get(t, asAdmin(), withID(id), withQuery("consistent", "true")), "event-store", 1)
	})

	for _, tc := range []struct {
		name  string
		opts  []opt
		field string
	}{
		{"400 malformed id", []opt{withID("0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8")}, "id"},
		{"400 minVersion 0", []opt{withQuery("minVersion", "0")}, "minVersion"},
		{"400 minVersion not a number", []opt{withQuery("minVersion", "two")}, "minVersion"},
		{"400 X-Min-Version not a number", []opt{withHeader("X-Min-Version", "W/2")}, "X-Min-Version"},
		{"400 consistent not a boolean", []opt{withQuery("consistent", "yes")}, "consistent"},
		{"400 minVersion given twice, differently", []opt{withQuery("minVersion", "1", "2")}, "minVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantFields(t, wantProblem(t, get(t, append([]opt{asAdmin()}, tc.opts...)...), http.StatusBadRequest), tc.field)
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, get(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 another identity's user", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("erin"))
		e.project(t, id)
		wantProblem(t, get(t, as(newSub("fred")), withID(id)), http.StatusForbidden)
		wantProblem(t, get(t, as(newSub("fred")), withID(id), withQuery("consistent", "true")), http.StatusForbidden)
	})

	t.Run("403 not 404 for a stranger and an unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, get(t, as(newSub("gina")), withID(uuid.NewString())), http.StatusForbidden)
	})

	t.Run("404 admin, unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, get(t, asAdmin(), withID(uuid.NewString())), http.StatusNotFound)
	})

	t.Run("410 deleted, from the projection and the event store", func(t *testing.T) {
		t.Parallel()
		sub := newSub("hank")
		id, _ := e.createUser(t, sub)
		admin := "admin-" + sub
		e.run(t, e.cmds, 200, request(t, "commands/delete-user.json", as(admin, "admin"), withID(id),
			withHeader("Content-Type", "application/json"), withBody(map[string]string{"reason": "asked to leave"})))
		check := func(resp events.APIGatewayProxyResponse, source string) {
			t.Helper()
			var body map[string]any
			wantJSON(t, resp, http.StatusGone, &body)
			if body["id"] != id || body["status"] != "deleted" || body["version"] != 2.0 || body["deletedBy"] != admin ||
				body["reason"] != "asked to leave" || body["deletedAt"] == nil || len(body) != 6 {
				t.Errorf("410 body %v", body)
			}
			if resp.Headers["X-Source"] != source {
				t.Errorf("X-Source %q, want %s", resp.Headers["X-Source"], source)
			}
		}
		check(get(t, as(sub), withID(id)), "event-store")
		e.project(t, id)
		check(get(t, asAdmin(), withID(id)), "projection")
	})
}

// GET /users?email=
func TestFindUserByEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	find := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/find-user-by-email.json", opts...))
	}

	t.Run("200 own user, address in any case", func(t *testing.T) {
		t.Parallel()
		sub := newSub("ivy")
		id, email := e.createUser(t, sub)
		e.project(t, id)
		var u userBody
		resp := find(t, as(sub), withQuery("email", strings.ToUpper(email)))
		wantJSON(t, resp, http.StatusOK, &u)
		if u.ID != id || resp.Headers["X-Source"] != "projection" || resp.Headers["ETag"] != `"1"` {
			t.Errorf("user %+v, headers %v", u, resp.Headers)
		}
	})

	t.Run("200 admin", func(t *testing.T) {
		t.Parallel()
		id, email := e.createUser(t, newSub("jack"))
		e.project(t, id)
		wantJSON(t, find(t, asAdmin(), withQuery("email", email)), http.StatusOK, nil)
	})

	for _, tc := range []struct {
		name string
		opts []opt
	}{
		{"400 email empty", []opt{withQuery("email", "")}},
		{"400 email invalid", []opt{withQuery("email", "not an address")}},
		{"400 email given twice", []opt{withQuery("email", "a@example.com", "b@example.com")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantFields(t, wantProblem(t, find(t, append([]opt{asAdmin()}, tc.opts...)...), http.StatusBadRequest), "email")
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, find(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 another identity's address, and an unknown one", func(t *testing.T) {
		t.Parallel()
		id, email := e.createUser(t, newSub("kate"))
		e.project(t, id)
		wantProblem(t, find(t, as(newSub("liam")), withQuery("email", email)), http.StatusForbidden)
		wantProblem(t, find(t, as(newSub("liam")), withQuery("email", newSub("nobody")+"@example.com")), http.StatusForbidden)
	})

	t.Run("404 admin, nobody holds it (anymore)", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, find(t, asAdmin(), withQuery("email", newSub("nobody")+"@example.com")), http.StatusNotFound)
		id, email := e.createUser(t, newSub("mia"))
		e.run(t, e.cmds, 200, request(t, "commands/delete-user.json", withID(id)))
		e.project(t, id)
		wantProblem(t, find(t, asAdmin(), withQuery("email", email)), http.StatusNotFound)
	})
}

// historyBody is the answer of GET /users/{id}/history.
type historyBody struct {
	ID     string `json:"id"`
	Events []struct {
		EventID       string          `json:"eventId"`
		AggregateID   string          `json:"aggregateId"`
		Version       int64           `json:"version"`
		Type          string          `json:"type"`
		OccurredAt    time.Time       `json:"occurredAt"`
		Actor         string          `json:"actor"`
		Reason        string          `json:"reason"`
		CorrelationID string          `json:"correlationId"`
		CausationID   string          `json:"causationId"`
		Data          json.RawMessage `json:"data"`
	} `json:"events"`
	NextCursor *string `json:"nextCursor"`
}

// lifecycle runs create, rename, suspend, reactivate and delete on a new
// user of identity sub; admin does the admin commands.
func (e *env) lifecycle(t *testing.T, sub, admin string) string {
	t.Helper()
	id, _ := e.createUser(t, sub)
	e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), withHeader("X-Request-Id", "corr-rename")))
	e.run(t, e.cmds, 200, request(t, "commands/suspend-user.json", as(admin, "admin"), withID(id)))
	e.run(t, e.cmds, 200, request(t, "commands/reactivate-user.json", as(admin, "admin"), withID(id)))
	e.run(t, e.cmds, 200, request(t, "commands/delete-user.json", as(admin, "admin"), withID(id)))
	return id
}

// GET /users/{id}/history
func TestUserHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	history := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/user-history.json", opts...))
	}

	t.Run("200 who did what, why, of a deleted user", func(t *testing.T) {
		t.Parallel()
		sub := newSub("nora")
		admin := "admin-" + sub
		id := e.lifecycle(t, sub, admin)
		var h historyBody
		wantJSON(t, history(t, as(sub), withID(id)), http.StatusOK, &h)
		wantTypes := []string{"user.created.v1", "user.renamed.v1", "user.suspended.v1", "user.reactivated.v1", "user.deleted.v1"}
		if h.ID != id || len(h.Events) != len(wantTypes) || h.NextCursor != nil {
			t.Fatalf("history %+v", h)
		}
		for i, ev := range h.Events {
			if ev.Type != wantTypes[i] || ev.Version != int64(i+1) || ev.EventID == "" || ev.OccurredAt.IsZero() || len(ev.Data) == 0 || ev.AggregateID != "" {
				t.Errorf("event %d: %+v", i, ev)
			}
		}
		last := h.Events[4]
		if last.Actor != admin || h.Events[0].Actor != sub {
			t.Errorf("actors %q, %q", h.Events[0].Actor, last.Actor)
		}
		if h.Events[1].Reason != "married" || h.Events[2].Reason != "chargeback under review" || h.Events[3].Reason != "chargeback resolved" {
			t.Errorf("reasons %q %q %q", h.Events[1].Reason, h.Events[2].Reason, h.Events[3].Reason)
		}
		if h.Events[1].CorrelationID != "corr-rename" || h.Events[1].CausationID != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" {
			t.Errorf("rename correlation %q causation %q", h.Events[1].CorrelationID, h.Events[1].CausationID)
		}
		if !strings.Contains(string(h.Events[1].Data), `"Alice Renamed"`) {
			t.Errorf("rename data %s", h.Events[1].Data)
		}
	})

	t.Run("200 pages with an opaque cursor, fromVersion", func(t *testing.T) {
		t.Parallel()
		admin := newSub("admin")
		id := e.lifecycle(t, newSub("otto"), admin)
		var versions []int64
		opts := []opt{as(admin, "admin"), withID(id), withQuery("limit", "2")}
		for page := 0; ; page++ {
			var h historyBody
			wantJSON(t, history(t, opts...), http.StatusOK, &h)
			for _, ev := range h.Events {
				versions = append(versions, ev.Version)
			}
			if h.NextCursor == nil {
				break
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
			opts = []opt{as(admin, "admin"), withID(id), withQuery("limit", "2"), withQuery("cursor", *h.NextCursor)}
		}
		if len(versions) != 5 || versions[0] != 1 || versions[4] != 5 {
			t.Errorf("versions %v, want 1..5", versions)
		}
		var h historyBody
		wantJSON(t, history(t, as(admin, "admin"), withID(id), withQuery("fromVersion", "4")), http.StatusOK, &h)
		if len(h.Events) != 2 || h.Events[0].Version != 4 {
			t.Errorf("fromVersion=4: %+v", h.Events)
		}
		wantJSON(t, history(t, as(admin, "admin"), withID(id), withQuery("fromVersion", "9")), http.StatusOK, &h)
		if len(h.Events) != 0 {
			t.Errorf("past the end: %+v", h.Events)
		}
	})

	otherCursor := func() string {
		// A cursor of another user's history.
		id, _ := e.createUser(t, newSub("cursor"))
		for range 2 {
			e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", asAdmin(), withID(id), withBody(map[string]string{"name": uuid.NewString()})))
		}
		var h historyBody
		wantJSON(t, history(t, asAdmin(), withID(id), withQuery("limit", "1")), http.StatusOK, &h)
		return *h.NextCursor
	}()
	for _, tc := range []struct {
		name  string
		opts  []opt
		field string
	}{
		{"400 malformed id", []opt{withID("x")}, "id"},
		{"400 limit 0", []opt{withQuery("limit", "0")}, "limit"},
		{"400 limit 1001", []opt{withQuery("limit", "1001")}, "limit"},
		{"400 limit not a number", []opt{withQuery("limit", "ten")}, "limit"},
		{"400 fromVersion 0", []opt{withQuery("fromVersion", "0")}, "fromVersion"},
		{"400 cursor garbage", []opt{withQuery("cursor", "%%%")}, "cursor"},
		{"400 cursor of another user", []opt{withQuery("cursor", otherCursor)}, "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantFields(t, wantProblem(t, history(t, append([]opt{asAdmin()}, tc.opts...)...), http.StatusBadRequest), tc.field)
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, history(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 another identity's user, or an unknown one", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("paul"))
		wantProblem(t, history(t, as(newSub("quin")), withID(id)), http.StatusForbidden)
		wantProblem(t, history(t, as(newSub("quin")), withID(uuid.NewString())), http.StatusForbidden)
	})

	t.Run("404 admin, unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, history(t, asAdmin(), withID(uuid.NewString())), http.StatusNotFound)
		wantProblem(t, history(t, asAdmin(), withID(uuid.NewString()), withQuery("fromVersion", "3")), http.StatusNotFound)
	})
}

// stateBody is the answer of GET /users/{id}/state.
type stateBody struct {
	ID      string     `json:"id"`
	Version int64      `json:"version"`
	AsOf    time.Time  `json:"asOf"`
	State   user.State `json:"state"`
}

// GET /users/{id}/state
func TestUserState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	state := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/user-state.json", opts...))
	}
	// A user with more events than the snapshot interval: 1 create + 4 renames.
	sub := newSub("rosa")
	id, _ := e.createUser(t, sub)
	for i := 2; i <= 5; i++ {
		e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), withBody(map[string]string{"name": "Rosa " + strconv.Itoa(i)})))
	}
	recs, err := e.store.Load(t.Context(), id, 1, 0)
	if err != nil || len(recs) != 5 {
		t.Fatalf("load: %v, %d records", err, len(recs))
	}

	for _, tc := range []struct {
		name    string
		opts    []opt
		version int64
		named   string
		asOf    time.Time
	}{
		{"200 current", nil, 5, "Rosa 5", recs[4].OccurredAt},
		{"200 at version 2, below the snapshot", []opt{withQuery("version", "2")}, 2, "Rosa 2", recs[1].OccurredAt},
		{"200 at version 4, past the snapshot", []opt{withQuery("version", "4")}, 4, "Rosa 4", recs[3].OccurredAt},
		{"200 at a version past the end", []opt{withQuery("version", "99")}, 5, "Rosa 5", recs[4].OccurredAt},
		{"200 as of a time", []opt{withQuery("at", recs[2].OccurredAt.Format(time.RFC3339Nano))}, 3, "Rosa 3", recs[2].OccurredAt},
		{"200 as of a time with an offset", []opt{withQuery("at", recs[0].OccurredAt.In(time.FixedZone("X", 7200)).Format(time.RFC3339Nano))}, 1, "User " + sub, recs[0].OccurredAt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s stateBody
			wantJSON(t, state(t, append([]opt{as(sub), withID(id)}, tc.opts...)...), http.StatusOK, &s)
			if s.ID != id || s.Version != tc.version || s.State.Name != tc.named || !s.AsOf.Equal(tc.asOf) || s.State.Status != user.StatusActive {
				t.Errorf("state %+v, want v%d named %q as of %s", s, tc.version, tc.named, tc.asOf)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		opts   []opt
		fields []string
	}{
		{"400 version 0", []opt{withQuery("version", "0")}, []string{"version"}},
		{"400 at not RFC 3339", []opt{withQuery("at", "yesterday")}, []string{"at"}},
		{"400 version and at", []opt{withQuery("version", "1"), withQuery("at", time.Now().Format(time.RFC3339))}, []string{"version", "at"}},
		{"400 malformed id", []opt{withID("nope")}, []string{"id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantFields(t, wantProblem(t, state(t, append([]opt{asAdmin()}, tc.opts...)...), http.StatusBadRequest), tc.fields...)
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, state(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 another identity's user, or an unknown one", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, state(t, as(newSub("sid")), withID(id)), http.StatusForbidden)
		wantProblem(t, state(t, as(newSub("sid")), withID(uuid.NewString())), http.StatusForbidden)
	})

	t.Run("404 before the user existed, or never", func(t *testing.T) {
		t.Parallel()
		before := recs[0].OccurredAt.Add(-time.Nanosecond).Format(time.RFC3339Nano)
		wantProblem(t, state(t, as(sub), withID(id), withQuery("at", before)), http.StatusNotFound)
		wantProblem(t, state(t, asAdmin(), withID(uuid.NewString())), http.StatusNotFound)
	})
}

// GET /actors/{sub}/activity
func TestActorActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	activity := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/actor-activity.json", opts...))
	}
	admin := newSub("admin")
	a := e.lifecycle(t, newSub("tara"), admin)
	b := e.lifecycle(t, newSub("uwe"), admin)
	e.project(t, a, b)

	t.Run("200 admin's own activity, newest first, in pages", func(t *testing.T) {
		t.Parallel()
		var got []string
		var last time.Time
		opts := []opt{as(admin, "admin"), withActor(admin), withQuery("limit", "4")}
		for page := 0; ; page++ {
			var h historyBody
			wantJSON(t, activity(t, opts...), http.StatusOK, &h)
			for _, ev := range h.Events {
				if ev.AggregateID == "" || ev.Actor != admin {
					t.Errorf("event %+v", ev)
				}
				if !last.IsZero() && ev.OccurredAt.After(last) {
					t.Errorf("not newest first: %s after %s", ev.OccurredAt, last)
				}
				last = ev.OccurredAt
				got = append(got, ev.Type)
			}
			if h.NextCursor == nil {
				break
			}
			if page > 3 {
				t.Fatal("paging does not end")
			}
			opts = []opt{as(admin, "admin"), withActor(admin), withQuery("limit", "4"), withQuery("cursor", *h.NextCursor)}
		}
		if len(got) != 6 || got[0] != "user.deleted.v1" {
			t.Errorf("activity %v: want 3 admin events per user, newest first", got)
		}
	})

	t.Run("200 a user's own activity", func(t *testing.T) {
		t.Parallel()
		sub := newSub("vera")
		id, _ := e.createUser(t, sub)
		e.project(t, id)
		var h historyBody
		wantJSON(t, activity(t, as(sub), withActor(sub)), http.StatusOK, &h)
		if len(h.Events) != 1 || h.Events[0].AggregateID != id || h.Events[0].Type != "user.created.v1" {
			t.Errorf("activity %+v", h)
		}
	})

	for _, tc := range []struct {
		name  string
		opts  []opt
		field string
	}{
		{"400 limit 0", []opt{withQuery("limit", "0")}, "limit"},
		{"400 limit 1001", []opt{withQuery("limit", "1001")}, "limit"},
		{"400 cursor not handed out", []opt{withQuery("cursor", "bm90LWEtY3Vyc29y")}, "cursor"},
		{"400 sub with a space", []opt{withActor("a b")}, "sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantFields(t, wantProblem(t, activity(t, append([]opt{asAdmin()}, tc.opts...)...), http.StatusBadRequest), tc.field)
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, activity(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 another actor's activity", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, activity(t, as(newSub("walt")), withActor(admin)), http.StatusForbidden)
	})
}

// GET /ops/projections, with queues on the SQS emulator.
func TestOpsProjections(t *testing.T) {
	t.Parallel()
	queues := awstest.SQS(t)
	newQueue := func(name string) string {
		out, err := queues.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(awstest.TableName(name))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = queues.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
		})
		return aws.ToString(out.QueueUrl)
	}
	queue, dlq := newQueue("projections"), newQueue("projections-dlq")
	for i := range 3 {
		if _, err := queues.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := queues.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := queues.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 1, VisibilityTimeout: 600}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e := newEnv(t, func(d *httpapi.QueriesDeps) {
		d.Queues = queues
		d.Projections = []httpapi.Projection{
			{Name: userviews.ProjectionUserView, QueueURL: queue, DLQURL: dlq},
			{Name: userviews.ProjectionActorActivity, QueueURL: queue, DLQURL: dlq},
		}
	})
	ops := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/ops-projections.json", opts...))
	}

	t.Run("200 checkpoints and queue depths", func(t *testing.T) {
		var body struct {
			Projections map[string]struct {
				LastEventID         string     `json:"lastEventId"`
				LastEventAt         *time.Time `json:"lastEventAt"`
				LastEventAgeSeconds *float64   `json:"lastEventAgeSeconds"`
				Processed           int64      `json:"processed"`
				QueueDepth          *int64     `json:"queueDepth"`
				InFlight            *int64     `json:"inFlight"`
				DeadLetterDepth     *int64     `json:"deadLetterDepth"`
			} `json:"projections"`
		}
		wantJSON(t, ops(t), http.StatusOK, &body)
		for _, name := range []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity} {
			p, ok := body.Projections[name]
			if !ok || p.LastEventAt != nil || p.QueueDepth == nil || *p.QueueDepth != 2 || *p.InFlight != 1 || *p.DeadLetterDepth != 2 {
				t.Errorf("%s before any event: %+v", name, p)
			}
		}
		id, _ := e.createUser(t, newSub("xena"))
		e.project(t, id)
		wantJSON(t, ops(t), http.StatusOK, &body)
		for _, name := range []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity} {
			p := body.Projections[name]
			if p.LastEventAt == nil || p.LastEventAt.Before(now.Add(-time.Minute)) || p.LastEventAgeSeconds == nil || *p.LastEventAgeSeconds < 0 ||
				p.Processed != 1 || p.LastEventID == "" {
				t.Errorf("%s after one event: %+v", name, p)
			}
		}
	})

	t.Run("401 without a principal", func(t *testing.T) {
		wantProblem(t, ops(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 not an admin", func(t *testing.T) {
		wantProblem(t, ops(t, as(newSub("yuri"))), http.StatusForbidden)
	})

	t.Run("200 partial: a queue that does not exist", func(t *testing.T) {
		broken := newEnv(t, func(d *httpapi.QueriesDeps) {
			d.Queues = queues
			d.Projections = []httpapi.Projection{{Name: "user-view", QueueURL: queue + "-missing", DLQURL: dlq}}
		})
		var body struct {
			Projections map[string]map[string]json.RawMessage `json:"projections"`
			Errors      []string                              `json:"errors"`
		}
		resp := do(t, broken.qs, request(t, "queries/ops-projections.json"))
		wantJSON(t, resp, http.StatusOK, &body)
		p := body.Projections["user-view"]
		if string(p["queueDepth"]) != "null" || string(p["inFlight"]) != "null" || string(p["deadLetterDepth"]) != "2" ||
			string(p["unavailable"]) != `["queueDepth","inFlight"]` || string(p["processed"]) != "0" ||
			len(body.Errors) != 1 || !strings.Contains(body.Errors[0], "the queue of user-view") {
			t.Errorf("answer: %s", resp.Body)
		}
		if n := len(broken.logs.lines("ERROR")); n != 1 {
			t.Errorf("%d error lines, want 1", n)
		}
	})

	t.Run("503 nothing answers", func(t *testing.T) {
		down := newEnv(t, silentSQS(t), func(d *httpapi.QueriesDeps) {
			d.ReadModel = userviews.New(readmodel.New(awstest.DynamoDB(t), awstest.TableName("missing")))
		})
		wantProblem(t, do(t, down.qs, request(t, "queries/ops-projections.json")), http.StatusServiceUnavailable)
	})
}

// GET /users/{id}/consistency
func TestUserConsistency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *httpapi.QueriesDeps) {
		// As template.yaml configures the function: welcome-mail is fed by
		// a queue too, but keeps no per-user version.
		d.Queues = awstest.SQS(t)
		d.Projections = []httpapi.Projection{{Name: userviews.ProjectionUserView}, {Name: userviews.ProjectionActorActivity}, {Name: "welcome-mail"}}
	})
	consistency := func(t *testing.T, opts ...opt) events.APIGatewayProxyResponse {
		return do(t, e.qs, request(t, "queries/user-consistency.json", opts...))
	}

	t.Run("200 event store ahead of the projections", func(t *testing.T) {
		t.Parallel()
		sub := newSub("zoe")
		id, _ := e.createUser(t, sub)
		var body struct {
			EventStoreVersion int64            `json:"eventStoreVersion"`
			Projections       map[string]int64 `json:"projections"`
		}
		wantJSON(t, consistency(t, withID(id)), http.StatusOK, &body)
		if body.EventStoreVersion != 1 || len(body.Projections) != 2 || body.Projections[userviews.ProjectionUserView] != 0 {
			t.Errorf("before projecting: %+v", body)
		}
		e.project(t, id)
		e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id)))
		wantJSON(t, consistency(t, withID(id)), http.StatusOK, &body)
		if body.EventStoreVersion != 2 || body.Projections[userviews.ProjectionUserView] != 1 || body.Projections[userviews.ProjectionActorActivity] != 1 {
			t.Errorf("after projecting v1 of 2: %+v", body)
		}
	})

	// The HTTP contract: every listed projection keeps a per-user version and reaches
	// the event store's once it has caught up, so that a client polling
	// until they agree stops.
	t.Run("200 caught up: every listed projection at the event store's version", func(t *testing.T) {
		t.Parallel()
		sub := newSub("ursa")
		id, _ := e.createUser(t, sub)
		e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id)))
		e.project(t, id)
		var body struct {
			EventStoreVersion int64            `json:"eventStoreVersion"`
			Projections       map[string]int64 `json:"projections"`
		}
		wantJSON(t, consistency(t, withID(id)), http.StatusOK, &body)
		if body.EventStoreVersion != 2 || len(body.Projections) == 0 {
			t.Fatalf("after projecting: %+v", body)
		}
		for name, v := range body.Projections {
			if v != body.EventStoreVersion {
				t.Errorf("%s at v%d, event store at v%d: never converges", name, v, body.EventStoreVersion)
			}
		}
	})

	t.Run("400 malformed id", func(t *testing.T) {
		t.Parallel()
		wantFields(t, wantProblem(t, consistency(t, withID("42")), http.StatusBadRequest), "id")
	})

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, consistency(t, anonymous()), http.StatusUnauthorized)
	})

	t.Run("403 not an admin, even for its own user", func(t *testing.T) {
		t.Parallel()
		sub := newSub("abe")
		id, _ := e.createUser(t, sub)
		wantProblem(t, consistency(t, as(sub), withID(id)), http.StatusForbidden)
	})

	t.Run("404 unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, consistency(t, withID(uuid.NewString())), http.StatusNotFound)
	})
}

// GET /healthz
func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("200 without a principal", func(t *testing.T) {
		t.Parallel()
		var body map[string]string
		wantJSON(t, do(t, e.qs, request(t, "queries/healthz.json")), http.StatusOK, &body)
		if body["status"] != "ok" {
			t.Errorf("body %v", body)
		}
	})

	t.Run("503 a store does not answer", func(t *testing.T) {
		t.Parallel()
		down := newEnv(t, func(d *httpapi.QueriesDeps) {
			d.Health = func(ctx context.Context) error {
				_, _, err := userviews.New(readmodel.New(awstest.DynamoDB(t), awstest.TableName("missing"))).UserView(ctx, "healthz")
				return err
			}
		})
		p := wantProblem(t, do(t, down.qs, request(t, "queries/healthz.json")), http.StatusServiceUnavailable)
		if strings.Contains(p.Detail, "missing") {
			t.Errorf("detail %q leaks the cause", p.Detail)
		}
		if lines := down.logs.lines("ERROR"); len(lines) != 1 || !strings.Contains(lines[0]["error"].(string), "non-existent table") {
			t.Errorf("want the cause logged once, got %v", lines)
		}
	})
}

// Routing of the queries function.
func TestQueriesRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name                   string
		method, resource, path string
		status                 int
		allow                  string
	}{
		{"404 unknown resource", "GET", "/admin", "/admin", 404, ""},
		{"404 a command route", "POST", "/users", "/users", 404, ""},
		{"405 POST on healthz", "POST", "/healthz", "/healthz", 405, "GET"},
		{"405 DELETE on history", "DELETE", "/users/{id}/history", "/users/" + fixtureID + "/history", 405, "GET"},
		{"200 by path when Resource is empty", "GET", "", "/healthz", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := do(t, e.qs, request(t, "queries/healthz.json", withRoute(tc.method, tc.resource, tc.path)))
			if tc.status == 200 {
				wantJSON(t, resp, 200, nil)
				return
			}
			wantProblem(t, resp, tc.status)
			if got := resp.Headers["Allow"]; got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestNewQueriesNamesMissingDependencies(t *testing.T) {
	t.Parallel()
	_, err := httpapi.NewQueries(httpapi.QueriesDeps{Logger: slog.Default(), Projections: []httpapi.Projection{{Name: "x"}}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"Users", "Events", "ReadModel", "Health", "Queues"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
