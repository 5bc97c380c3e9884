package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// usersBody is the answer of GET /users?status=&limit=&cursor=.
type usersBody struct {
	Users      []userBody `json:"users"`
	NextCursor *string    `json:"nextCursor"`
}

// listAll pages through the list with opts, and returns the users in the
// order listed and the size of each page.
func listAll(t *testing.T, e *env, opts ...opt) ([]userBody, []int) {
	t.Helper()
	var users []userBody
	var sizes []int
	cursor := ""
	for range 100 {
		o := append([]opt{}, opts...)
		if cursor != "" {
			o = append(o, withQuery("cursor", cursor))
		}
		var page usersBody
		wantJSON(t, do(t, e.qs, request(t, "queries/list-users.json", o...)), http.StatusOK, &page)
		users = append(users, page.Users...)
		sizes = append(sizes, len(page.Users))
		if page.NextCursor == nil {
			return users, sizes
		}
		if *page.NextCursor == "" {
			t.Fatal(`"nextCursor": "" on a page`)
		}
		cursor = *page.NextCursor
	}
	t.Fatal("the list never ends")
	return nil, nil
}

// TestListUsers: GET /users without email lists the live users from the
// read model, newest first, in pages; admin only; bad parameters and
// forged cursors are a 400 naming the field.
func TestListUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const total, suspended, deleted = 250, 20, 10
	// Most users are written straight into the read model, as the
	// projector would (a command and its projection cost ten times more on
	// the emulator); the last ones go through the commands and the real
	// projector, the deletions among them.
	const viaCommands = 25
	ids := make([]string, total)
	seed(t, e, ids[:total-viaCommands], suspended-5)
	for i := total - viaCommands; i < total; i++ {
		ids[i], _ = e.createUser(t, newSub("listed"))
	}
	for _, id := range ids[total-5:] {
		e.run(t, e.cmds, 200, request(t, "commands/suspend-user.json", withID(id)))
	}
	gone := map[string]bool{}
	for _, id := range ids[total-viaCommands : total-viaCommands+deleted] {
		e.run(t, e.cmds, 200, request(t, "commands/delete-user.json", withID(id)))
		gone[id] = true
	}
	e.project(t, ids[total-viaCommands:]...)
	live := total - deleted

	t.Run("pages of 100 list every live user once, newest first", func(t *testing.T) {
		t.Parallel()
		users, sizes := listAll(t, e, withoutQuery("status"), withQuery("limit", "100"))
		if want := []int{100, 100, live - 200}; fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Errorf("page sizes %v, want %v", sizes, want)
		}
		seen := map[string]bool{}
		for i, u := range users {
			if seen[u.ID] {
				t.Errorf("user %s listed twice", u.ID)
			}
			seen[u.ID] = true
			if gone[u.ID] {
				t.Errorf("deleted user %s listed", u.ID)
			}
			if i > 0 {
				prev := users[i-1]
				if u.CreatedAt.After(prev.CreatedAt) || (u.CreatedAt.Equal(prev.CreatedAt) && u.ID > prev.ID) {
					t.Errorf("user %d (%s, %v) listed after a older one (%s, %v)", i, u.ID, u.CreatedAt, prev.ID, prev.CreatedAt)
				}
			}
			if u.Name == "" || u.Email == "" || u.Version < 1 || u.CreatedAt.IsZero() || u.UpdatedAt.IsZero() {
				t.Errorf("user %+v: not the view GET /users/{id} answers", u)
			}
		}
		for _, id := range ids {
			if !gone[id] && !seen[id] {
				t.Errorf("live user %s not listed", id)
			}
		}
	})

	t.Run("a listed user is the view GET /users/{id} answers", func(t *testing.T) {
		t.Parallel()
		var page usersBody
		wantJSON(t, do(t, e.qs, request(t, "queries/list-users.json", withQuery("status", "suspended"), withQuery("limit", "1"))), http.StatusOK, &page)
		if len(page.Users) != 1 {
			t.Fatalf("page %+v", page)
		}
		resp := do(t, e.qs, request(t, "queries/get-user.json", asAdmin(), withID(page.Users[0].ID)))
		var got []byte
		got, _ = json.Marshal(page.Users[0])
		var one userBody
		wantJSON(t, resp, http.StatusOK, &one)
		want, _ := json.Marshal(one)
		if string(got) != string(want) {
			t.Errorf("listed %s\nGET /users/{id} %s", got, want)
		}
		// Field for field, as the client sees it.
		var raw struct {
			Users []map[string]any `json:"users"`
		}
		_ = json.Unmarshal([]byte(do(t, e.qs, request(t, "queries/list-users.json", withQuery("status", "suspended"), withQuery("limit", "1"))).Body), &raw)
		var single map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &single)
		if fmt.Sprint(raw.Users[0]) != fmt.Sprint(single) {
			t.Errorf("listed %v\nGET /users/{id} %v", raw.Users[0], single)
		}
	})

	t.Run("status filters", func(t *testing.T) {
		t.Parallel()
		for status, want := range map[string]int{"suspended": suspended, "active": live - suspended} {
			users, _ := listAll(t, e, withQuery("status", status), withQuery("limit", "1000"))
			if len(users) != want {
				t.Errorf("status %s: %d users, want %d", status, len(users), want)
			}
			for _, u := range users {
				if string(u.Status) != status {
					t.Errorf("status %s lists %s, %s", status, u.ID, u.Status)
				}
			}
		}
	})

	t.Run("default limit is 100, and the last page has no nextCursor", func(t *testing.T) {
		t.Parallel()
		var page usersBody
		wantJSON(t, do(t, e.qs, request(t, "queries/list-users.json", withoutQuery("status"), withoutQuery("limit"))), http.StatusOK, &page)
		if len(page.Users) != 100 || page.NextCursor == nil {
			t.Errorf("%d users, nextCursor %v; want 100 and a cursor", len(page.Users), page.NextCursor)
		}
		resp := do(t, e.qs, request(t, "queries/list-users.json", withoutQuery("status"), withQuery("limit", "1000")))
		wantJSON(t, resp, http.StatusOK, &page)
		if len(page.Users) != live || strings.Contains(resp.Body, "nextCursor") {
			t.Errorf("%d users, body has nextCursor: %v; want %d and none", len(page.Users), strings.Contains(resp.Body, "nextCursor"), live)
		}
	})

	t.Run("403 for anyone but an admin, 401 for no one", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, do(t, e.qs, request(t, "queries/list-users.json", as(newSub("nosy")))), http.StatusForbidden)
		wantProblem(t, do(t, e.qs, request(t, "queries/list-users.json", as(newSub("nosy"), "reader"), withoutQuery("status"))), http.StatusForbidden)
		wantProblem(t, do(t, e.qs, request(t, "queries/list-users.json", anonymous())), http.StatusUnauthorized)
	})

	// A cursor handed out for one status, to try with another.
	var first usersBody
	wantJSON(t, do(t, e.qs, request(t, "queries/list-users.json", withQuery("status", "active"), withQuery("limit", "2"))), http.StatusOK, &first)
	if first.NextCursor == nil {
		t.Fatal("no cursor after the first page")
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name   string
		opts   []opt
		fields []string
	}{
		{"400 status deleted", []opt{withQuery("status", "deleted")}, []string{"status"}},
		{"400 status unknown", []opt{withQuery("status", "ACTIVE")}, []string{"status"}},
		{"400 status given twice", []opt{withQuery("status", "active", "suspended")}, []string{"status"}},
		{"400 limit 0", []opt{withQuery("limit", "0")}, []string{"limit"}},
		{"400 limit 1001", []opt{withQuery("limit", "1001")}, []string{"limit"}},
		{"400 limit not a number", []opt{withQuery("limit", "ten")}, []string{"limit"}},
		{"400 status and limit both", []opt{withQuery("status", "x"), withQuery("limit", "-1")}, []string{"status", "limit"}},
		{"400 cursor empty", []opt{withQuery("cursor", "")}, []string{"cursor"}},
		{"400 cursor not base64", []opt{withQuery("cursor", "%%%")}, []string{"cursor"}},
		{"400 cursor forged: a table key", []opt{withQuery("cursor", enc(`{"pk":"user#`+uuid.NewString()+`","sk":"view"}`))}, []string{"cursor"}},
		{"400 cursor forged: another partition", []opt{withQuery("cursor", enc(`{"s":"active","a":"checkpoint#user-view"}`))}, []string{"cursor"}},
		{"400 cursor forged: a future stamp without id", []opt{withQuery("cursor", enc(`{"s":"active","a":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)+`"}`))}, []string{"cursor"}},
		{"400 cursor of another status", []opt{withQuery("status", "suspended"), withQuery("cursor", *first.NextCursor)}, []string{"cursor"}},
		{"400 cursor of a status, without it", []opt{withoutQuery("status"), withQuery("cursor", *first.NextCursor)}, []string{"cursor"}},
		{"400 cursor of another route", []opt{withQuery("cursor", enc(`{"pk":"actor#admin","sk":"x"}`))}, []string{"cursor"}},
		{"400 email with the list's parameters", []opt{withQuery("email", "a@example.com")}, []string{"email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantFields(t, wantProblem(t, do(t, e.qs, request(t, "queries/list-users.json", tc.opts...)), http.StatusBadRequest), tc.fields...)
		})
	}

	t.Run("a cursor carries on with the same status", func(t *testing.T) {
		t.Parallel()
		var next usersBody
		wantJSON(t, do(t, e.qs, request(t, "queries/list-users.json", withQuery("status", "active"), withQuery("limit", "2"), withQuery("cursor", *first.NextCursor))), http.StatusOK, &next)
		if len(next.Users) != 2 || next.Users[0].ID == first.Users[0].ID || next.Users[0].ID == first.Users[1].ID {
			t.Errorf("second page %+v after %+v", next.Users, first.Users)
		}
	})
}

// seed writes a user view for each of ids (new ids, created a millisecond
// apart, some at the same instant), the first suspended of them suspended,
// with the read model's own writer of rebuilt views.
func seed(t *testing.T, e *env, ids []string, suspended int) {
	t.Helper()
	registry := user.NewRegistry()
	rec := func(id string, version int64, ev es.Event, at time.Time) es.Record {
		typ, schema, data, err := registry.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		return es.Record{ID: uuid.Must(uuid.NewV7()).String(), AggregateID: id, AggregateType: user.AggregateType,
			Version: version, Type: typ, SchemaVersion: schema, OccurredAt: at, Data: data,
			Metadata: es.Metadata{Actor: "seed"}, Event: ev}
	}
	t0 := time.Now().Add(-time.Hour).UTC()
	folds := make([]userviews.UserFold, len(ids))
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		at := t0.Add(time.Duration(i/2) * time.Millisecond)
		recs := []es.Record{rec(ids[i], 1, user.Created{Name: fmt.Sprintf("Seeded %d", i), Email: fmt.Sprintf("seeded-%d-%s@example.com", i, ids[i][:8])}, at)}
		if i < suspended {
			recs = append(recs, rec(ids[i], 2, user.Suspended{Reason: "seed"}, at.Add(time.Second)))
		}
		folds[i] = userviews.FoldUser(recs)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(folds))
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(folds); i += 8 {
				if _, err := e.rm.PutUserView(t.Context(), folds[i], false); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestListUsersInMemory: the same route over the in-memory service: GET
// /users without email is the list (it was a 400), with email the look-up.
func TestListUsersInMemory(t *testing.T) {
	t.Parallel()
	m := newMemoryService(t)
	var page usersBody
	req := func(opts ...opt) events.APIGatewayProxyRequest {
		return request(t, "queries/list-users.json", opts...)
	}
	wantJSON(t, do(t, m.qs, req(withoutQuery("status"))), http.StatusOK, &page)
	if len(page.Users) != 0 || page.NextCursor != nil {
		t.Errorf("empty service lists %+v", page)
	}
	wantProblem(t, do(t, m.qs, req(withoutQuery("status"), withoutQuery("limit"), withQuery("email", "nobody@example.com"))), http.StatusNotFound)
}
