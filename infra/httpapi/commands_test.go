package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
)

// POST /users
func TestCreateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("201 own user, linked to the caller", func(t *testing.T) {
		t.Parallel()
		sub := newSub("alice")
		resp := do(t, e.cmds, request(t, "commands/create-user.json", as(sub),
			withBody(map[string]string{"name": "  Alice  ", "email": "Alice." + sub + "@Example.COM"})))
		var w writeBody
		wantJSON(t, resp, http.StatusCreated, &w)
		if _, err := uuid.Parse(w.ID); err != nil || w.Version != 1 {
			t.Fatalf("answer %+v: want a UUID id at version 1", w)
		}
		if got := resp.Headers["Location"]; got != "/users/"+w.ID {
			t.Errorf("Location %q", got)
		}
		if got := resp.Headers["ETag"]; got != `"1"` {
			t.Errorf("ETag %q", got)
		}
		if got := resp.Headers["X-Request-Id"]; got != "req-fixture-0001" {
			t.Errorf("X-Request-Id %q, want the one sent", got)
		}
		agg, err := e.svc.Load(t.Context(), w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s := agg.State; s.Sub != sub || s.Name != "Alice" || s.Email != "alice."+strings.ToLower(sub)+"@example.com" {
			t.Errorf("state %+v: want linked to %s, trimmed name, lower-cased email", s, sub)
		}
	})

	t.Run("201 admin links a user to another identity", func(t *testing.T) {
		t.Parallel()
		sub := newSub("bob")
		resp := do(t, e.cmds, request(t, "commands/create-user.json", asAdmin(),
			withBody(map[string]string{"name": "Bob", "email": sub + "@example.com", "sub": sub, "reason": "onboarding"})))
		var w writeBody
		wantJSON(t, resp, http.StatusCreated, &w)
		if agg, _ := e.svc.Load(t.Context(), w.ID); agg.State.Sub != sub {
			t.Errorf("sub %q, want %q", agg.State.Sub, sub)
		}
	})

	t.Run("201 admin creates an unlinked user", func(t *testing.T) {
		t.Parallel()
		resp := do(t, e.cmds, request(t, "commands/create-user.json", asAdmin(),
			withBody(map[string]string{"name": "Carol", "email": newSub("carol") + "@example.com"})))
		var w writeBody
		wantJSON(t, resp, http.StatusCreated, &w)
		if agg, _ := e.svc.Load(t.Context(), w.ID); agg.State.Sub != "" {
			t.Errorf("sub %q, want none", agg.State.Sub)
		}
	})

	for _, tc := range []struct {
		name   string
		opts   []opt
		fields []string
	}{
		{"400 every invalid field", []opt{withBody(map[string]string{"name": " ", "email": "not-an-email", "reason": strings.Repeat("r", 1001)})}, []string{"name", "email", "reason"}},
		{"400 missing fields", []opt{withBody(`{}`)}, []string{"name", "email"}},
		{"400 malformed JSON", []opt{withBody(`{"name": "A", "email": `)}, nil},
		{"400 not an object", []opt{withBody(`["name"]`)}, nil},
		{"400 null body", []opt{withBody(`null`)}, nil},
		{"400 empty body", []opt{withBody(``)}, nil},
		{"400 unknown fields", []opt{withBody(`{"name":"A","email":"a@example.com","admin":true,"Name":"B"}`)}, []string{"admin", "Name"}},
		{"400 repeated field", []opt{withBody(`{"name":"A","name":"B","email":"a@example.com"}`)}, []string{"name"}},
		{"400 trailing data", []opt{withBody(`{"name":"A","email":"a@example.com"} {}`)}, nil},
		{"400 trailing garbage", []opt{withBody(`{"name":"A","email":"a@example.com"}x`)}, nil},
		{"400 wrong types", []opt{withBody(`{"name": 42, "email": ["a@example.com"]}`)}, []string{"name", "email"}},
		{"400 invalid UTF-8", []opt{withBody("{\"name\":\"\xff\xfe\",\"email\":\"a@example.com\"}")}, nil},
		{"400 invalid base64", []opt{withBody("{}"), func(r *events.APIGatewayProxyRequest) { r.Body, r.IsBase64Encoded = "!!!", true }}, nil},
		{"400 Idempotency-Key too long", []opt{withHeader("Idempotency-Key", strings.Repeat("k", 129))}, []string{"Idempotency-Key"}},
		{"400 Idempotency-Key not printable", []opt{withHeader("Idempotency-Key", "key\x01")}, []string{"Idempotency-Key"}},
		{"400 Idempotency-Key given twice", []opt{withHeader("Idempotency-Key", "a", "b")}, []string{"Idempotency-Key"}},
		{"400 weak If-Match", []opt{withHeader("If-Match", `W/"0"`)}, []string{"If-Match"}},
		{"400 If-Match not a version", []opt{withHeader("If-Match", `"abc"`)}, []string{"If-Match"}},
		{"400 admin sets an invalid sub", []opt{asAdmin(), withBody(map[string]string{"name": "A", "email": "a@example.com", "sub": "has space"})}, []string{"sub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]opt{as(newSub("dan"))}, tc.opts...)
			p := wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", opts...)), http.StatusBadRequest)
			if tc.fields != nil {
				wantFields(t, p, tc.fields...)
			}
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		resp := do(t, e.cmds, request(t, "commands/create-user.json", anonymous()))
		wantProblem(t, resp, http.StatusUnauthorized)
		if resp.Headers["WWW-Authenticate"] != "Bearer" {
			t.Errorf("WWW-Authenticate %q", resp.Headers["WWW-Authenticate"])
		}
	})

	t.Run("403 a user sets sub", func(t *testing.T) {
		t.Parallel()
		sub := newSub("eve")
		wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", as(sub),
			withBody(map[string]string{"name": "Eve", "email": sub + "@example.com", "sub": sub}))), http.StatusForbidden)
	})

	t.Run("409 email taken", func(t *testing.T) {
		t.Parallel()
		_, email := e.createUser(t, newSub("frank"))
		p := wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", as(newSub("grace")),
			withBody(map[string]string{"name": "Grace", "email": strings.ToUpper(email)}))), http.StatusConflict)
		wantFields(t, p, "email")
	})

	t.Run("409 second user of one identity", func(t *testing.T) {
		t.Parallel()
		sub := newSub("heidi")
		e.createUser(t, sub)
		p := wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", as(sub),
			withBody(map[string]string{"name": "Heidi 2", "email": "second-" + sub + "@example.com"}))), http.StatusConflict)
		wantFields(t, p, "sub")
	})

	t.Run("413 body over 64 KiB", func(t *testing.T) {
		t.Parallel()
		big := `{"name":"` + strings.Repeat("n", httpapi.MaxBodyBytes) + `","email":"a@example.com"}`
		wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", as(newSub("ivan")), withBody(big))), http.StatusRequestEntityTooLarge)
	})

	t.Run("413 body over 64 KiB after base64 decoding", func(t *testing.T) {
		t.Parallel()
		big := `{"name":"` + strings.Repeat("n", httpapi.MaxBodyBytes) + `","email":"a@example.com"}`
		wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", as(newSub("ivan")), withBody(big), base64Body())), http.StatusRequestEntityTooLarge)
	})

	t.Run("201 base64 body just under the limit", func(t *testing.T) {
		t.Parallel()
		sub := newSub("judy")
		b, _ := json.Marshal(map[string]string{"name": "Judy", "email": sub + "@example.com"})
		pad := strings.Repeat(" ", httpapi.MaxBodyBytes-len(b))
		resp := do(t, e.cmds, request(t, "commands/create-user.json", as(sub), withBody(string(b)+pad), base64Body()))
		wantJSON(t, resp, http.StatusCreated, nil)
	})

	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json; charset=iso-8859-1", "application/problem+json", ""} {
		t.Run("415 Content-Type "+ct, func(t *testing.T) {
			t.Parallel()
			opts := []opt{as(newSub("kim")), withHeader("Content-Type", ct)}
			if ct == "" {
				opts[1] = withoutHeader("Content-Type")
			}
			wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", opts...)), http.StatusUnsupportedMediaType)
		})
	}

	t.Run("201 Content-Type with charset, any case of header name", func(t *testing.T) {
		t.Parallel()
		sub := newSub("leo")
		resp := do(t, e.cmds, request(t, "commands/create-user.json", as(sub), withoutHeader("Content-Type"),
			withHeader("content-TYPE", "Application/JSON; charset=UTF-8"),
			withBody(map[string]string{"name": "Leo", "email": sub + "@example.com"})))
		wantJSON(t, resp, http.StatusCreated, nil)
	})

	t.Run("422 Idempotency-Key reused with another body", func(t *testing.T) {
		t.Parallel()
		sub := newSub("mallory")
		key := withHeader("idempotency-key", "create-"+sub)
		e.run(t, e.cmds, 201, request(t, "commands/create-user.json", as(sub), key,
			withBody(map[string]string{"name": "Mallory", "email": sub + "@example.com"})))
		wantProblem(t, do(t, e.cmds, request(t, "commands/create-user.json", as(sub), key,
			withBody(map[string]string{"name": "Mallory 2", "email": sub + "@example.com"}))), http.StatusUnprocessableEntity)
	})
}

// PUT /users/{id}/name
func TestRenameUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("200 owner renames", func(t *testing.T) {
		t.Parallel()
		sub := newSub("nina")
		id, _ := e.createUser(t, sub)
		resp := do(t, e.cmds, request(t, "commands/rename-user.json", as(sub), withID(id)))
		var w writeBody
		wantJSON(t, resp, http.StatusOK, &w)
		if w != (writeBody{ID: id, Version: 2}) || resp.Headers["ETag"] != `"2"` {
			t.Errorf("answer %+v, ETag %s: want version 2", w, resp.Headers["ETag"])
		}
		if _, ok := resp.Headers["Location"]; ok {
			t.Error("a rename has no Location")
		}
	})

	t.Run("200 admin renames, upper-case id", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("oscar"))
		resp := do(t, e.cmds, request(t, "commands/rename-user.json", asAdmin(), withID(strings.ToUpper(id))))
		var w writeBody
		wantJSON(t, resp, http.StatusOK, &w)
		if w.ID != id {
			t.Errorf("id %q, want the canonical %q", w.ID, id)
		}
	})

	t.Run("200 same name is a no-op", func(t *testing.T) {
		t.Parallel()
		sub := newSub("peggy")
		id, _ := e.createUser(t, sub)
		resp := do(t, e.cmds, request(t, "commands/rename-user.json", as(sub), withID(id), withBody(map[string]string{"name": "User " + sub})))
		var w writeBody
		wantJSON(t, resp, http.StatusOK, &w)
		if w.Version != 1 || e.version(t, id) != 1 {
			t.Errorf("version %d: want no new event", w.Version)
		}
	})

	for _, tc := range []struct {
		name   string
		opts   []opt
		fields []string
	}{
		{"400 malformed id", []opt{withID("not-a-uuid")}, []string{"id"}},
		{"400 id in another form", []opt{withID("{" + fixtureID + "}")}, []string{"id"}},
		{"400 empty name", []opt{withBody(map[string]string{"name": ""})}, []string{"name"}},
		{"400 name too long", []opt{withBody(map[string]string{"name": strings.Repeat("x", 201)})}, []string{"name"}},
		{"400 unknown field", []opt{withBody(map[string]string{"name": "A", "email": "a@example.com"})}, []string{"email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]opt{asAdmin()}, tc.opts...)
			wantFields(t, wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", opts...)), http.StatusBadRequest), tc.fields...)
		})
	}

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", anonymous())), http.StatusUnauthorized)
	})

	t.Run("403 another identity's user", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("quinn"))
		wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", as(newSub("rupert")), withID(id))), http.StatusForbidden)
		if e.version(t, id) != 1 {
			t.Error("a forbidden rename wrote")
		}
	})

	t.Run("403 not 404 for a stranger and an unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", as(newSub("sybil")), withID(uuid.NewString()))), http.StatusForbidden)
	})

	t.Run("404 admin, unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", asAdmin(), withID(uuid.NewString()))), http.StatusNotFound)
	})

	t.Run("409 deleted user", func(t *testing.T) {
		t.Parallel()
		sub := newSub("trent")
		id, _ := e.createUser(t, sub)
		e.run(t, e.cmds, 200, request(t, "commands/delete-user.json", asAdmin(), withID(id)))
		p := wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", as(sub), withID(id))), http.StatusConflict)
		if !strings.Contains(p.Detail, "deleted") {
			t.Errorf("detail %q does not say why", p.Detail)
		}
	})

	t.Run("412 stale If-Match", func(t *testing.T) {
		t.Parallel()
		sub := newSub("uma")
		id, _ := e.createUser(t, sub)
		e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id)))
		resp := do(t, e.cmds, request(t, "commands/rename-user.json", as(sub), withID(id), withHeader("If-Match", `"1"`),
			withBody(map[string]string{"name": "Stale"})))
		p := wantProblem(t, resp, http.StatusPreconditionFailed)
		if p.CurrentVersion == nil || *p.CurrentVersion != 2 || resp.Headers["ETag"] != `"2"` {
			t.Errorf("problem %+v, ETag %s: want current version 2", p, resp.Headers["ETag"])
		}
	})

	t.Run("415 not JSON", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", asAdmin(), withHeader("Content-Type", "text/plain"))), http.StatusUnsupportedMediaType)
	})

	t.Run("422 Idempotency-Key reused on another route", func(t *testing.T) {
		t.Parallel()
		sub := newSub("victor")
		id, _ := e.createUser(t, sub)
		key := withHeader("Idempotency-Key", "k-"+sub)
		e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), key, withBody(map[string]string{"name": "V"})))
		wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", as(sub), withID(id), key, withBody(map[string]string{"name": "V"}))), http.StatusBadRequest)
		wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", as(sub), withID(id), key)), http.StatusUnprocessableEntity)
	})
}

// PUT /users/{id}/email
func TestChangeEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("200 owner changes email, old one freed", func(t *testing.T) {
		t.Parallel()
		sub := newSub("wendy")
		id, old := e.createUser(t, sub)
		resp := do(t, e.cmds, request(t, "commands/change-email.json", as(sub), withID(id),
			withBody(map[string]string{"email": "new-" + old, "reason": "work address"})))
		var w writeBody
		wantJSON(t, resp, http.StatusOK, &w)
		if w.Version != 2 {
			t.Errorf("version %d", w.Version)
		}
		// The old address is free again.
		e.run(t, e.cmds, 201, request(t, "commands/create-user.json", as(newSub("xavier")),
			withBody(map[string]string{"name": "X", "email": old})))
	})

	t.Run("200 same email is a no-op", func(t *testing.T) {
		t.Parallel()
		sub := newSub("yara")
		id, email := e.createUser(t, sub)
		resp := do(t, e.cmds, request(t, "commands/change-email.json", asAdmin(), withID(id), withBody(map[string]string{"email": strings.ToUpper(email)})))
		var w writeBody
		wantJSON(t, resp, http.StatusOK, &w)
		if w.Version != 1 {
			t.Errorf("version %d, want 1", w.Version)
		}
	})

	t.Run("400 invalid email", func(t *testing.T) {
		t.Parallel()
		wantFields(t, wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", asAdmin(),
			withBody(map[string]string{"email": "Alice <alice@example.com>"}))), http.StatusBadRequest), "email")
	})

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", anonymous())), http.StatusUnauthorized)
	})

	t.Run("403 another identity's user", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("zack"))
		wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", as(newSub("amy")), withID(id))), http.StatusForbidden)
	})

	t.Run("404 admin, unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", asAdmin(), withID(uuid.NewString()),
			withBody(map[string]string{"email": newSub("n") + "@example.com"}))), http.StatusNotFound)
	})

	t.Run("409 email taken", func(t *testing.T) {
		t.Parallel()
		sub := newSub("ben")
		id, _ := e.createUser(t, sub)
		_, taken := e.createUser(t, newSub("cat"))
		p := wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", as(sub), withID(id), withBody(map[string]string{"email": taken}))), http.StatusConflict)
		wantFields(t, p, "email")
	})

	t.Run("412 stale If-Match", func(t *testing.T) {
		t.Parallel()
		sub := newSub("dora")
		id, _ := e.createUser(t, sub)
		p := wantProblem(t, do(t, e.cmds, request(t, "commands/change-email.json", as(sub), withID(id), withHeader("If-Match", "0"),
			withBody(map[string]string{"email": "x-" + sub + "@example.com"}))), http.StatusPreconditionFailed)
		if p.CurrentVersion == nil || *p.CurrentVersion != 1 {
			t.Errorf("problem %+v: want current version 1", p)
		}
	})
}

// POST /users/{id}/suspend
func TestSuspendUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("200 admin suspends", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("ed"))
		var w writeBody
		wantJSON(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withID(id))), http.StatusOK, &w)
		if w.Version != 2 {
			t.Errorf("version %d", w.Version)
		}
	})

	t.Run("400 reason required", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("fay"))
		wantFields(t, wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withID(id), withBody(`{"reason":"  "}`))), http.StatusBadRequest), "reason")
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withID(id), withBody(``))), http.StatusBadRequest)
	})

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", anonymous())), http.StatusUnauthorized)
	})

	t.Run("403 a user suspends, even its own", func(t *testing.T) {
		t.Parallel()
		sub := newSub("gus")
		id, _ := e.createUser(t, sub)
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", as(sub), withID(id))), http.StatusForbidden)
	})

	t.Run("404 unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withID(uuid.NewString()))), http.StatusNotFound)
	})

	t.Run("409 already suspended", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("hal"))
		e.run(t, e.cmds, 200, request(t, "commands/suspend-user.json", withID(id)))
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withID(id))), http.StatusConflict)
	})

	t.Run("412 stale If-Match", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("ida"))
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withID(id), withHeader("If-Match", `"7"`))), http.StatusPreconditionFailed)
	})

	t.Run("415 not JSON", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/suspend-user.json", withHeader("Content-Type", "text/plain"))), http.StatusUnsupportedMediaType)
	})
}

// POST /users/{id}/reactivate
func TestReactivateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("200 with a reason", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("jay"))
		e.run(t, e.cmds, 200, request(t, "commands/suspend-user.json", withID(id)))
		var w writeBody
		wantJSON(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", withID(id))), http.StatusOK, &w)
		if w.Version != 3 {
			t.Errorf("version %d", w.Version)
		}
	})

	t.Run("200 empty body, no Content-Type", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("kai"))
		e.run(t, e.cmds, 200, request(t, "commands/suspend-user.json", withID(id)))
		wantJSON(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", withID(id), withBody(""), withoutHeader("Content-Type"))), http.StatusOK, nil)
	})

	t.Run("400 malformed id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", withID("123"))), http.StatusBadRequest)
	})

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", anonymous())), http.StatusUnauthorized)
	})

	t.Run("403 a user", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", as(newSub("lou")))), http.StatusForbidden)
	})

	t.Run("404 unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", withID(uuid.NewString()))), http.StatusNotFound)
	})

	t.Run("409 not suspended", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("max"))
		wantProblem(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", withID(id))), http.StatusConflict)
	})

	t.Run("412 stale If-Match", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("ned"))
		wantProblem(t, do(t, e.cmds, request(t, "commands/reactivate-user.json", withID(id), withHeader("If-Match", `"3"`))), http.StatusPreconditionFailed)
	})
}

// DELETE /users/{id}
func TestDeleteUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("200 without a body, email freed", func(t *testing.T) {
		t.Parallel()
		id, email := e.createUser(t, newSub("olga"))
		var w writeBody
		wantJSON(t, do(t, e.cmds, request(t, "commands/delete-user.json", withID(id))), http.StatusOK, &w)
		if w.Version != 2 {
			t.Errorf("version %d", w.Version)
		}
		e.run(t, e.cmds, 201, request(t, "commands/create-user.json", as(newSub("pia")), withBody(map[string]string{"name": "P", "email": email})))
	})

	t.Run("200 with a reason", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("quentin"))
		wantJSON(t, do(t, e.cmds, request(t, "commands/delete-user.json", withID(id),
			withHeader("Content-Type", "application/json"), withBody(map[string]string{"reason": "GDPR request"}))), http.StatusOK, nil)
		agg, _ := e.svc.Load(t.Context(), id)
		if agg.State.DeleteReason != "GDPR request" || agg.State.DeletedBy == "" {
			t.Errorf("state %+v: want reason and actor", agg.State)
		}
	})

	t.Run("400 body not JSON", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", withHeader("Content-Type", "application/json"), withBody("reason=x"))), http.StatusBadRequest)
	})

	t.Run("401 without a principal", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", anonymous())), http.StatusUnauthorized)
	})

	t.Run("403 a user deletes its own user", func(t *testing.T) {
		t.Parallel()
		sub := newSub("rita")
		id, _ := e.createUser(t, sub)
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", as(sub), withID(id))), http.StatusForbidden)
	})

	t.Run("404 unknown id", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", withID(uuid.NewString()))), http.StatusNotFound)
	})

	t.Run("409 deleted twice", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("sam"))
		e.run(t, e.cmds, 200, request(t, "commands/delete-user.json", withID(id)))
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", withID(id))), http.StatusConflict)
	})

	t.Run("412 stale If-Match", func(t *testing.T) {
		t.Parallel()
		id, _ := e.createUser(t, newSub("tom"))
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", withID(id), withHeader("If-Match", `"2"`))), http.StatusPreconditionFailed)
	})

	t.Run("415 body with another media type", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.cmds, request(t, "commands/delete-user.json", withHeader("Content-Type", "text/plain"), withBody(`{"reason":"x"}`))), http.StatusUnsupportedMediaType)
	})
}

// Routing of the commands function: unknown routes and methods.
func TestCommandsRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name                   string
		method, resource, path string
		status                 int
		allow                  string
	}{
		{"404 unknown resource", "POST", "/widgets", "/widgets", 404, ""},
		{"404 a query route", "GET", "/users/{id}", "/users/" + fixtureID, 404, ""},
		{"405 PATCH on a user", "PATCH", "/users/{id}", "/users/" + fixtureID, 405, "DELETE, GET"},
		{"405 GET on rename", "GET", "/users/{id}/name", "/users/" + fixtureID + "/name", 405, "PUT"},
		{"405 PUT on /users", "PUT", "/users", "/users", 405, "GET, POST"},
		{"201 by path when Resource is empty", "POST", "", "/users/", 201, ""},
		{"404 by path when Resource is empty", "POST", "", "/users/x/y/z", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := newSub("route")
			resp := do(t, e.cmds, request(t, "commands/create-user.json", as(sub), withRoute(tc.method, tc.resource, tc.path),
				withBody(map[string]string{"name": "R", "email": sub + "@example.com"})))
			if tc.status == 201 {
				wantJSON(t, resp, 201, nil)
				return
			}
			wantProblem(t, resp, tc.status)
			if got := resp.Headers["Allow"]; got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// X-Request-Id is echoed or made, and the events carry the request's metadata.
func TestCommandMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sub := newSub("meta")
	resp := do(t, e.cmds, request(t, "commands/create-user.json", as(sub), withHeader("X-REQUEST-ID", "corr-42"),
		withBody(map[string]string{"name": "Meta", "email": sub + "@example.com", "reason": " signed up "})))
	var w writeBody
	wantJSON(t, resp, 201, &w)
	if resp.Headers["X-Request-Id"] != "corr-42" {
		t.Errorf("X-Request-Id %q, want corr-42", resp.Headers["X-Request-Id"])
	}
	recs, err := e.store.Load(t.Context(), w.ID, 1, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("load: %v, %d records", err, len(recs))
	}
	md := recs[0].Metadata
	if md.Actor != sub || md.CorrelationID != "corr-42" || md.RequestID != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" ||
		md.CausationID != md.RequestID || md.Reason != "signed up" {
		t.Errorf("metadata %+v", md)
	}
	if u, err := uuid.Parse(md.CommandID); err != nil || u.Version() != 7 {
		t.Errorf("command id %q: want a UUID v7", md.CommandID)
	}

	// Without X-Request-Id (or with an unusable one) the answer has a new UUID v7.
	for _, o := range []opt{withoutHeader("X-Request-Id"), withHeader("X-Request-Id", strings.Repeat("x", 129))} {
		resp = do(t, e.cmds, request(t, "commands/rename-user.json", as(sub), withID(w.ID), o, withBody(map[string]string{"name": uuid.NewString()})))
		wantJSON(t, resp, 200, nil)
		if u, err := uuid.Parse(resp.Headers["X-Request-Id"]); err != nil || u.Version() != 7 {
			t.Errorf("X-Request-Id %q: want a new UUID v7", resp.Headers["X-Request-Id"])
		}
	}
}

// A store that fails is a 500 with a generic detail, logged once.
func TestCommandsInternalError(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	missing := dynamo.Tables{Events: awstest.TableName("missing"), Guards: awstest.TableName("missing"), Snapshots: awstest.TableName("missing")}
	logs := &syncBuffer{}
	svc := user.NewService(dynamo.New(client, missing), es.Options{})
	h := httpapi.NewCommands(svc, slog.New(slog.NewJSONHandler(logs, nil)))
	p := wantProblem(t, do(t, h, request(t, "commands/create-user.json", withHeader("X-Request-Id", "boom-1"))), http.StatusInternalServerError)
	if strings.Contains(p.Detail, "missing") || strings.Contains(p.Detail, "ResourceNotFound") {
		t.Errorf("detail %q leaks the cause", p.Detail)
	}
	lines := logs.lines("ERROR")
	if len(lines) != 1 || lines[0]["request_id"] != "boom-1" || lines[0]["error"] == nil {
		t.Errorf("want one error line with the request id and the error, got %v", lines)
	}
}

// A panic anywhere is a 500 problem, logged, never a crash.
func TestCommandsRecoverPanic(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	svc := user.NewService(nil, es.Options{}) // nil store: Load panics
	h := httpapi.NewCommands(svc, slog.New(slog.NewJSONHandler(logs, nil)))
	wantProblem(t, do(t, h, request(t, "commands/rename-user.json", asAdmin())), http.StatusInternalServerError)
	if lines := logs.lines("ERROR"); len(lines) != 1 || lines[0]["panic"] == nil || lines[0]["stack"] == nil {
		t.Errorf("want one panic line with a stack, got %v", lines)
	}
}
