package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// The command routes of the HTTP contract, each status it lists, over HTTP through
// the real authorizer.

func TestCreateUser(t *testing.T) {
	t.Parallel()
	alice := newIdentity(t)

	t.Run("201 own user, linked to the caller, Location and ETag", func(t *testing.T) {
		r := do(t, req{method: "POST", path: "/users", token: alice.token,
			body: map[string]string{"name": "Alice", "email": uniqueEmail("alice")}}).want(t, http.StatusCreated)
		var w written
		r.decode(t, &w)
		if w.Version != 1 || uuid.Validate(w.ID) != nil {
			t.Errorf("answer %s", r.body)
		}
		if got := r.header.Get("Location"); got != "/users/"+w.ID {
			t.Errorf("Location %q", got)
		}
		if got := r.header.Get("ETag"); got != `"1"` {
			t.Errorf("ETag %q", got)
		}
		u := projected(t, alice, w.ID, 1, http.StatusOK)
		if u.Sub != alice.sub || u.Name != "Alice" || u.Status != "active" {
			t.Errorf("read model %+v", u)
		}
	})
	t.Run("201 admin links a user to another identity", func(t *testing.T) {
		bob := newIdentity(t)
		var w written
		do(t, req{method: "POST", path: "/users", token: s.admin,
			body: map[string]string{"name": "Bob", "email": uniqueEmail("bob"), "sub": bob.sub}}).
			want(t, http.StatusCreated).decode(t, &w)
		// Bob may now read his user.
		do(t, req{method: "GET", path: "/users/" + w.ID + "?consistent=true", token: bob.token}).want(t, http.StatusOK)
	})
	t.Run("400 lists every invalid field", func(t *testing.T) {
		p := do(t, req{method: "POST", path: "/users", token: s.admin, body: map[string]string{"name": "  ", "email": "not-an-address"}}).
			wantProblem(t, http.StatusBadRequest)
		if f := p.fields(); !slices.Contains(f, "name") || !slices.Contains(f, "email") {
			t.Errorf("errors %+v, want name and email", p.Errors)
		}
	})
	t.Run("400 unknown field, trailing data, wrong type", func(t *testing.T) {
		for _, body := range []string{
			`{"name":"A","email":"a@example.com","admin":true}`,
			`{"name":"A","email":"a@example.com"} {}`,
			`{"name":1,"email":"a@example.com"}`,
			`[]`,
		} {
			do(t, req{method: "POST", path: "/users", token: s.admin, body: body}).wantProblem(t, http.StatusBadRequest)
		}
	})
	t.Run("401 without a token", func(t *testing.T) {
		do(t, req{method: "POST", path: "/users", body: map[string]string{"name": "A", "email": uniqueEmail("a")}}).
			wantProblem(t, http.StatusUnauthorized)
	})
	t.Run("403 a user sets sub", func(t *testing.T) {
		carol := newIdentity(t)
		do(t, req{method: "POST", path: "/users", token: carol.token,
			body: map[string]string{"name": "Carol", "email": uniqueEmail("carol"), "sub": "someone-else"}}).
			wantProblem(t, http.StatusForbidden)
	})
	t.Run("409 email taken, in any case", func(t *testing.T) {
		email := uniqueEmail("taken")
		createUser(t, admin(), "First", email)
		p := do(t, req{method: "POST", path: "/users", token: s.admin,
			body: map[string]string{"name": "Second", "email": strings.ToUpper(email)}}).wantProblem(t, http.StatusConflict)
		if !slices.Contains(p.fields(), "email") {
			t.Errorf("problem %+v does not name email", p)
		}
	})
	t.Run("409 second user of one identity", func(t *testing.T) {
		dave := newIdentity(t)
		createUser(t, dave, "Dave", uniqueEmail("dave"))
		do(t, req{method: "POST", path: "/users", token: dave.token,
			body: map[string]string{"name": "Dave again", "email": uniqueEmail("dave")}}).wantProblem(t, http.StatusConflict)
	})
	t.Run("413 body over 64 KiB", func(t *testing.T) {
		big := fmt.Sprintf(`{"name":%q,"email":"big@example.com"}`, strings.Repeat("x", 70*1024))
		do(t, req{method: "POST", path: "/users", token: s.admin, body: big}).wantProblem(t, http.StatusRequestEntityTooLarge)
	})
	t.Run("415 not JSON", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/json; charset=latin1"} {
			do(t, req{method: "POST", path: "/users", token: s.admin, body: `{"name":"A","email":"a@example.com"}`,
				header: map[string]string{"Content-Type": ct}}).wantProblem(t, http.StatusUnsupportedMediaType)
		}
	})
	t.Run("Idempotency-Key: the same request answers the first answer; another body is 422", func(t *testing.T) {
		key := uuid.NewString()
		body := map[string]string{"name": "Idem", "email": uniqueEmail("idem")}
		first := do(t, req{method: "POST", path: "/users", token: s.admin, body: body,
			header: map[string]string{"Idempotency-Key": key}}).want(t, http.StatusCreated)
		again := do(t, req{method: "POST", path: "/users", token: s.admin, body: body,
			header: map[string]string{"Idempotency-Key": key}}).want(t, http.StatusCreated)
		if string(again.body) != string(first.body) {
			t.Errorf("replay answered %s, first %s", again.body, first.body)
		}
		body["name"] = "Other"
		do(t, req{method: "POST", path: "/users", token: s.admin, body: body,
			header: map[string]string{"Idempotency-Key": key}}).wantProblem(t, http.StatusUnprocessableEntity)
	})
	t.Run("two concurrent creates with one email: exactly one succeeds", func(t *testing.T) {
		email := uniqueEmail("race")
		statuses := make([]int, 2)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() {
				statuses[i] = do(t, req{method: "POST", path: "/users", token: s.admin,
					body: map[string]string{"name": fmt.Sprint("Racer ", i), "email": email}}).status
			})
		}
		wg.Wait()
		slices.Sort(statuses)
		if !slices.Equal(statuses, []int{http.StatusCreated, http.StatusConflict}) {
			t.Errorf("statuses %v, want one 201 and one 409", statuses)
		}
	})
}

func TestRenameUser(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	u := createUser(t, owner, "Erin", uniqueEmail("erin"))
	path := "/users/" + u.ID + "/name"

	t.Run("200 owner renames: version and ETag", func(t *testing.T) {
		r := do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"name": "Erin B."}}).want(t, http.StatusOK)
		var w written
		r.decode(t, &w)
		if w.ID != u.ID || w.Version != 2 || r.header.Get("ETag") != `"2"` {
			t.Errorf("answer %s, ETag %s", r.body, r.header.Get("ETag"))
		}
	})
	t.Run("200 same name is a no-op", func(t *testing.T) {
		var w written
		do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"name": "Erin B."}}).
			want(t, http.StatusOK).decode(t, &w)
		if w.Version != 2 {
			t.Errorf("version %d after a no-op, want 2", w.Version)
		}
	})
	t.Run("400 empty name, malformed id", func(t *testing.T) {
		do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"name": ""}}).wantProblem(t, http.StatusBadRequest)
		do(t, req{method: "PUT", path: "/users/not-a-uuid/name", token: s.admin, body: map[string]string{"name": "X"}}).
			wantProblem(t, http.StatusBadRequest)
	})
	t.Run("401 without a token", func(t *testing.T) {
		do(t, req{method: "PUT", path: path, body: map[string]string{"name": "X"}}).wantProblem(t, http.StatusUnauthorized)
	})
	t.Run("403 another identity's user, and an unknown one", func(t *testing.T) {
		stranger := newIdentity(t)
		do(t, req{method: "PUT", path: path, token: stranger.token, body: map[string]string{"name": "X"}}).wantProblem(t, http.StatusForbidden)
		do(t, req{method: "PUT", path: "/users/" + uuid.NewString() + "/name", token: stranger.token,
			body: map[string]string{"name": "X"}}).wantProblem(t, http.StatusForbidden)
	})
	t.Run("404 admin, unknown id", func(t *testing.T) {
		do(t, req{method: "PUT", path: "/users/" + uuid.NewString() + "/name", token: s.admin,
			body: map[string]string{"name": "X"}}).wantProblem(t, http.StatusNotFound)
	})
	t.Run("412 stale If-Match, nothing written", func(t *testing.T) {
		p := do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"name": "Stale"},
			header: map[string]string{"If-Match": `"1"`}}).wantProblem(t, http.StatusPreconditionFailed)
		if p.CurrentVersion == nil || *p.CurrentVersion != 2 {
			t.Errorf("currentVersion %v, want 2", p.CurrentVersion)
		}
		do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"name": "Fresh"},
			header: map[string]string{"If-Match": `"2"`}}).want(t, http.StatusOK)
	})
	t.Run("415 not JSON", func(t *testing.T) {
		do(t, req{method: "PUT", path: path, token: owner.token, body: `name=X`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).wantProblem(t, http.StatusUnsupportedMediaType)
	})
	t.Run("422 Idempotency-Key reused on another route", func(t *testing.T) {
		key := uuid.NewString()
		do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"name": "Keyed"},
			header: map[string]string{"Idempotency-Key": key}}).want(t, http.StatusOK)
		do(t, req{method: "PUT", path: "/users/" + u.ID + "/email", token: owner.token, body: map[string]string{"email": uniqueEmail("k")},
			header: map[string]string{"Idempotency-Key": key}}).wantProblem(t, http.StatusUnprocessableEntity)
	})
}

func TestChangeEmail(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	old := uniqueEmail("frank")
	u := createUser(t, owner, "Frank", old)
	path := "/users/" + u.ID + "/email"

	t.Run("200 owner changes email; the old one is free again", func(t *testing.T) {
		fresh := uniqueEmail("frank.new")
		var w written
		do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"email": fresh}}).
			want(t, http.StatusOK).decode(t, &w)
		if w.Version != 2 {
			t.Errorf("version %d", w.Version)
		}
		createUser(t, admin(), "Takes the old address", old)
	})
	t.Run("400 invalid email", func(t *testing.T) {
		p := do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"email": "nope"}}).
			wantProblem(t, http.StatusBadRequest)
		if !slices.Contains(p.fields(), "email") {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("409 email taken", func(t *testing.T) {
		taken := uniqueEmail("taken")
		createUser(t, admin(), "Holder", taken)
		do(t, req{method: "PUT", path: path, token: owner.token, body: map[string]string{"email": taken}}).
			wantProblem(t, http.StatusConflict)
	})
	t.Run("401, 403, 404", func(t *testing.T) {
		do(t, req{method: "PUT", path: path, body: map[string]string{"email": uniqueEmail("x")}}).wantProblem(t, http.StatusUnauthorized)
		do(t, req{method: "PUT", path: path, token: newIdentity(t).token, body: map[string]string{"email": uniqueEmail("x")}}).
			wantProblem(t, http.StatusForbidden)
		do(t, req{method: "PUT", path: "/users/" + uuid.NewString() + "/email", token: s.admin,
			body: map[string]string{"email": uniqueEmail("x")}}).wantProblem(t, http.StatusNotFound)
	})
}

func TestSuspendAndReactivate(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	u := createUser(t, owner, "Grace", uniqueEmail("grace"))
	suspend, reactivate := "/users/"+u.ID+"/suspend", "/users/"+u.ID+"/reactivate"

	do(t, req{method: "POST", path: suspend, token: s.admin, body: map[string]string{}}).wantProblem(t, http.StatusBadRequest) // reason required
	do(t, req{method: "POST", path: suspend, body: map[string]string{"reason": "x"}}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "POST", path: suspend, token: owner.token, body: map[string]string{"reason": "x"}}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "POST", path: "/users/" + uuid.NewString() + "/suspend", token: s.admin, body: map[string]string{"reason": "x"}}).
		wantProblem(t, http.StatusNotFound)
	do(t, req{method: "POST", path: reactivate, token: s.admin}).wantProblem(t, http.StatusConflict) // not suspended

	var w written
	do(t, req{method: "POST", path: suspend, token: s.admin, body: map[string]string{"reason": "chargeback"}}).
		want(t, http.StatusOK).decode(t, &w)
	if w.Version != 2 {
		t.Errorf("suspend: version %d", w.Version)
	}
	do(t, req{method: "POST", path: suspend, token: s.admin, body: map[string]string{"reason": "again"}}).wantProblem(t, http.StatusConflict)
	do(t, req{method: "POST", path: suspend, token: s.admin, body: `reason=x`,
		header: map[string]string{"Content-Type": "text/plain"}}).wantProblem(t, http.StatusUnsupportedMediaType)
	do(t, req{method: "POST", path: reactivate, token: s.admin, body: map[string]string{"reason": "resolved"},
		header: map[string]string{"If-Match": `"1"`}}).wantProblem(t, http.StatusPreconditionFailed)
	do(t, req{method: "POST", path: reactivate, token: owner.token}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "POST", path: reactivate, token: s.admin}).want(t, http.StatusOK) // empty body: no reason
	u2 := projected(t, owner, u.ID, 3, http.StatusOK)
	if u2.Status != "active" {
		t.Errorf("after reactivation: %+v", u2)
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	email := uniqueEmail("heidi")
	u := createUser(t, owner, "Heidi", email)
	path := "/users/" + u.ID

	do(t, req{method: "DELETE", path: path}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "DELETE", path: path, token: owner.token}).wantProblem(t, http.StatusForbidden) // even its own
	do(t, req{method: "DELETE", path: "/users/" + uuid.NewString(), token: s.admin}).wantProblem(t, http.StatusNotFound)
	do(t, req{method: "DELETE", path: path, token: s.admin, body: `not json`}).wantProblem(t, http.StatusBadRequest)
	do(t, req{method: "DELETE", path: path, token: s.admin, body: `reason`,
		header: map[string]string{"Content-Type": "text/plain"}}).wantProblem(t, http.StatusUnsupportedMediaType)
	do(t, req{method: "DELETE", path: path, token: s.admin, body: map[string]string{"reason": "x"},
		header: map[string]string{"If-Match": `"7"`}}).wantProblem(t, http.StatusPreconditionFailed)

	var w written
	do(t, req{method: "DELETE", path: path, token: s.admin, body: map[string]string{"reason": "asked to be forgotten"}}).
		want(t, http.StatusOK).decode(t, &w)
	if w.Version != 2 {
		t.Errorf("version %d", w.Version)
	}
	do(t, req{method: "DELETE", path: path, token: s.admin}).wantProblem(t, http.StatusConflict) // twice
	do(t, req{method: "PUT", path: path + "/name", token: s.admin, body: map[string]string{"name": "Zombie"}}).
		wantProblem(t, http.StatusConflict) // a deleted user accepts no command
	createUser(t, admin(), "Heidi's address, reused", email) // the address is free
}
