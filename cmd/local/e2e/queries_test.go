package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"
)

// The query routes of the HTTP contract, each status it lists.

type eventAnswer struct {
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
}

type historyAnswer struct {
	ID         string        `json:"id"`
	Events     []eventAnswer `json:"events"`
	NextCursor string        `json:"nextCursor"`
}

type activityAnswer struct {
	Sub        string        `json:"sub"`
	Events     []eventAnswer `json:"events"`
	NextCursor string        `json:"nextCursor"`
}

type stateAnswer struct {
	ID      string    `json:"id"`
	Version int64     `json:"version"`
	AsOf    time.Time `json:"asOf"`
	State   struct {
		Name   string `json:"name"`
		Email  string `json:"email"`
		Status string `json:"status"`
	} `json:"state"`
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	email := uniqueEmail("ivan")
	u := createUser(t, owner, "Ivan", email)
	path := "/users/" + u.ID

	t.Run("200 from the projection, with ETag and X-Source", func(t *testing.T) {
		got := projected(t, owner, u.ID, 1, http.StatusOK)
		if got.ID != u.ID || got.Name != "Ivan" || got.Email != email || got.Status != "active" || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
			t.Errorf("view %+v", got)
		}
		r := do(t, req{method: "GET", path: path, token: owner.token}).want(t, http.StatusOK)
		if r.header.Get("ETag") != `"1"` {
			t.Errorf("ETag %q", r.header.Get("ETag"))
		}
	})
	t.Run("200 consistent=true reads the event store", func(t *testing.T) {
		r := do(t, req{method: "GET", path: path + "?consistent=true", token: owner.token}).want(t, http.StatusOK)
		if r.header.Get("X-Source") != "event-store" {
			t.Errorf("X-Source %q", r.header.Get("X-Source"))
		}
	})
	t.Run("400 malformed minVersion, malformed id", func(t *testing.T) {
		do(t, req{method: "GET", path: path + "?minVersion=zero", token: owner.token}).wantProblem(t, http.StatusBadRequest)
		do(t, req{method: "GET", path: "/users/42", token: s.admin}).wantProblem(t, http.StatusBadRequest)
	})
	t.Run("400 a query parameter given twice with two values", func(t *testing.T) {
		// Only multiValueQueryStringParameters shows both.
		do(t, req{method: "GET", path: path + "?minVersion=1&minVersion=2", token: owner.token}).wantProblem(t, http.StatusBadRequest)
	})
	t.Run("401 without a token", func(t *testing.T) {
		do(t, req{method: "GET", path: path}).wantProblem(t, http.StatusUnauthorized)
	})
	t.Run("403 another identity's user, and an unknown one", func(t *testing.T) {
		stranger := newIdentity(t)
		do(t, req{method: "GET", path: path, token: stranger.token}).wantProblem(t, http.StatusForbidden)
		do(t, req{method: "GET", path: "/users/" + uuid.NewString(), token: stranger.token}).wantProblem(t, http.StatusForbidden)
	})
	t.Run("404 admin, unknown id", func(t *testing.T) {
		do(t, req{method: "GET", path: "/users/" + uuid.NewString(), token: s.admin}).wantProblem(t, http.StatusNotFound)
	})
	t.Run("410 deleted: who, when, why; from the projection and the event store", func(t *testing.T) {
		v := createUser(t, admin(), "Judy", uniqueEmail("judy"))
		do(t, req{method: "DELETE", path: "/users/" + v.ID, token: s.admin, body: map[string]string{"reason": "duplicate account"}}).
			want(t, http.StatusOK)
		for _, q := range []string{"?consistent=true", ""} {
			var got userAnswer
			eventually(t, 20*time.Second, "410 "+q, func() (bool, string) {
				r := do(t, req{method: "GET", path: "/users/" + v.ID + q, token: s.admin})
				if r.status != http.StatusGone {
					return false, string(r.body)
				}
				r.decode(t, &got)
				return true, ""
			})
			if got.Status != "deleted" || got.Version != 2 || got.DeletedBy != s.adminSub || got.Reason != "duplicate account" || got.DeletedAt.IsZero() {
				t.Errorf("410%s: %+v", q, got)
			}
		}
	})
}

func TestFindUserByEmail(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	email := uniqueEmail("ken")
	u := createUser(t, owner, "Ken", email)
	projected(t, owner, u.ID, 1, http.StatusOK)

	var got userAnswer
	do(t, req{method: "GET", path: "/users?email=" + url.QueryEscape(email), token: s.admin}).want(t, http.StatusOK).decode(t, &got)
	if got.ID != u.ID {
		t.Errorf("admin found %+v", got)
	}
	do(t, req{method: "GET", path: "/users?email=" + url.QueryEscape(email), token: owner.token}).want(t, http.StatusOK)
	do(t, req{method: "GET", path: "/users?email=" + url.QueryEscape(email)}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "GET", path: "/users?email=" + url.QueryEscape(email), token: newIdentity(t).token}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "GET", path: "/users?email=" + url.QueryEscape(uniqueEmail("nobody")), token: s.admin}).wantProblem(t, http.StatusNotFound)
	// email looks up one user: with the list's parameters it is a 400.
	p := do(t, req{method: "GET", path: "/users?limit=5&email=" + url.QueryEscape(email), token: s.admin}).wantProblem(t, http.StatusBadRequest)
	if f := p.fields(); len(f) != 1 || f[0] != "email" {
		t.Errorf("fields %v, want [email]", f)
	}
}

type usersAnswer struct {
	Users      []userAnswer `json:"users"`
	NextCursor *string      `json:"nextCursor"`
}

// listUntil pages through GET /users?<query> (limit 50) until it has seen
// a user created before oldest, or the end, and returns the users seen.
// Other tests create users meanwhile: the page holds those too.
func listUntil(t *testing.T, query string, oldest time.Time) []userAnswer {
	t.Helper()
	var all []userAnswer
	cursor := ""
	for range 1000 {
		path := "/users?limit=50" + query
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page usersAnswer
		do(t, req{method: "GET", path: path, token: s.admin}).want(t, http.StatusOK).decode(t, &page)
		all = append(all, page.Users...)
		for i, u := range page.Users {
			if i > 0 && u.CreatedAt.After(page.Users[i-1].CreatedAt) {
				t.Errorf("%s listed after the older %s", u.ID, page.Users[i-1].ID)
			}
		}
		if page.NextCursor == nil || (len(page.Users) > 0 && page.Users[len(page.Users)-1].CreatedAt.Before(oldest)) {
			return all
		}
		cursor = *page.NextCursor
	}
	t.Fatal("the list never ends")
	return nil
}

// TestListUsers: GET /users lists the live users newest first through the
// gateway, follows suspensions and deletions, and is for admins only.
func TestListUsers(t *testing.T) {
	t.Parallel()
	a := createUser(t, admin(), "List A", uniqueEmail("list-a"))
	b := createUser(t, admin(), "List B", uniqueEmail("list-b"))
	c := createUser(t, admin(), "List C", uniqueEmail("list-c"))
	do(t, req{method: "POST", path: "/users/" + b.ID + "/suspend", token: s.admin, body: map[string]string{"reason": "list"}}).want(t, http.StatusOK)
	do(t, req{method: "DELETE", path: "/users/" + c.ID, token: s.admin}).want(t, http.StatusOK)
	oldest := projected(t, admin(), a.ID, 1, http.StatusOK).CreatedAt
	projected(t, admin(), b.ID, 2, http.StatusOK)
	projected(t, admin(), c.ID, 2, http.StatusGone)

	where := func(users []userAnswer) map[string]int {
		at := map[string]int{}
		for i, u := range users {
			if _, twice := at[u.ID]; twice {
				t.Errorf("%s listed twice", u.ID)
			}
			at[u.ID] = i
		}
		return at
	}
	// The index is read eventually consistently (a GSI): poll.
	eventually(t, 20*time.Second, "the list shows b before a, not c", func() (bool, string) {
		at := where(listUntil(t, "", oldest))
		ia, okA := at[a.ID]
		ib, okB := at[b.ID]
		_, okC := at[c.ID]
		return okA && okB && !okC && ib < ia, fmt.Sprintf("a %v at %d, b %v at %d, c %v", okA, ia, okB, ib, okC)
	})
	at := where(listUntil(t, "&status=suspended", oldest))
	if _, ok := at[b.ID]; !ok {
		t.Errorf("suspended list lacks %s", b.ID)
	}
	if _, ok := at[a.ID]; ok {
		t.Errorf("suspended list has the active %s", a.ID)
	}
	at = where(listUntil(t, "&status=active", oldest))
	if _, ok := at[a.ID]; !ok {
		t.Errorf("active list lacks %s", a.ID)
	}
	if _, ok := at[b.ID]; ok {
		t.Errorf("active list has the suspended %s", b.ID)
	}

	for path, field := range map[string]string{
		"/users?limit=0":            "limit",
		"/users?limit=1001":         "limit",
		"/users?status=deleted":     "status",
		"/users?cursor=" + b64("x"): "cursor",
		"/users?cursor=" + b64(`{"s":"","a":"user#`+a.ID+`"}`): "cursor",
	} {
		p := do(t, req{method: "GET", path: path, token: s.admin}).wantProblem(t, http.StatusBadRequest)
		if f := p.fields(); len(f) != 1 || f[0] != field {
			t.Errorf("%s: fields %v, want [%s]", path, f, field)
		}
	}
}

func TestHistoryPages(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	u := createUser(t, owner, "Leo", uniqueEmail("leo"))
	for i := range 4 {
		do(t, req{method: "PUT", path: "/users/" + u.ID + "/name", token: owner.token,
			body: map[string]string{"name": "Leo " + strconv.Itoa(i)}}).want(t, http.StatusOK)
	}
	var versions []int64
	path := "/users/" + u.ID + "/history?limit=2"
	for range 10 {
		var h historyAnswer
		do(t, req{method: "GET", path: path, token: owner.token}).want(t, http.StatusOK).decode(t, &h)
		for _, e := range h.Events {
			versions = append(versions, e.Version)
			if e.Actor != owner.sub || e.EventID == "" || e.CorrelationID == "" || e.OccurredAt.IsZero() {
				t.Errorf("event %+v", e)
			}
		}
		if h.NextCursor == "" {
			break
		}
		path = "/users/" + u.ID + "/history?limit=2&cursor=" + url.QueryEscape(h.NextCursor)
	}
	if len(versions) != 5 || versions[0] != 1 || versions[4] != 5 {
		t.Errorf("versions %v, want 1..5", versions)
	}
	var h historyAnswer
	do(t, req{method: "GET", path: "/users/" + u.ID + "/history?fromVersion=4", token: owner.token}).want(t, http.StatusOK).decode(t, &h)
	if len(h.Events) != 2 || h.Events[0].Version != 4 {
		t.Errorf("fromVersion=4: %+v", h.Events)
	}
	do(t, req{method: "GET", path: "/users/" + u.ID + "/history?limit=0", token: owner.token}).wantProblem(t, http.StatusBadRequest)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/history?limit=1001", token: owner.token}).wantProblem(t, http.StatusBadRequest)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/history"}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/history", token: newIdentity(t).token}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "GET", path: "/users/" + uuid.NewString() + "/history", token: s.admin}).wantProblem(t, http.StatusNotFound)
}

func TestUserState(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	u := createUser(t, owner, "Mallory", uniqueEmail("mallory"))
	do(t, req{method: "PUT", path: "/users/" + u.ID + "/name", token: owner.token, body: map[string]string{"name": "Mal"}}).want(t, http.StatusOK)

	var st stateAnswer
	do(t, req{method: "GET", path: "/users/" + u.ID + "/state?version=1", token: owner.token}).want(t, http.StatusOK).decode(t, &st)
	if st.Version != 1 || st.State.Name != "Mallory" || st.State.Status != "active" {
		t.Errorf("version=1: %+v", st)
	}
	do(t, req{method: "GET", path: "/users/" + u.ID + "/state", token: owner.token}).want(t, http.StatusOK).decode(t, &st)
	if st.Version != 2 || st.State.Name != "Mal" {
		t.Errorf("now: %+v", st)
	}
	before := "/users/" + u.ID + "/state?at=" + url.QueryEscape("2001-01-01T00:00:00Z")
	do(t, req{method: "GET", path: before, token: owner.token}).wantProblem(t, http.StatusNotFound) // before it existed
	do(t, req{method: "GET", path: "/users/" + u.ID + "/state?version=1&at=2001-01-01T00:00:00Z", token: owner.token}).
		wantProblem(t, http.StatusBadRequest)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/state?at=yesterday", token: owner.token}).wantProblem(t, http.StatusBadRequest)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/state"}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/state", token: newIdentity(t).token}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "GET", path: "/users/" + uuid.NewString() + "/state", token: s.admin}).wantProblem(t, http.StatusNotFound)
}

func TestActorActivity(t *testing.T) {
	t.Parallel()
	actor := newIdentity(t)
	u := createUser(t, actor, "Niaj", uniqueEmail("niaj"))
	do(t, req{method: "PUT", path: "/users/" + u.ID + "/name", token: actor.token, body: map[string]string{"name": "Niaj N."}}).want(t, http.StatusOK)

	var a activityAnswer
	eventually(t, 20*time.Second, "the actor's activity lists both events", func() (bool, string) {
		a = activityAnswer{}
		do(t, req{method: "GET", path: "/actors/" + actor.sub + "/activity", token: actor.token}).want(t, http.StatusOK).decode(t, &a)
		return len(a.Events) == 2, strconv.Itoa(len(a.Events)) + " events"
	})
	if a.Events[0].Type != "user.renamed.v1" || a.Events[1].Type != "user.created.v1" || a.Events[0].AggregateID != u.ID {
		t.Errorf("activity, newest first: %+v", a.Events)
	}
	var page activityAnswer
	do(t, req{method: "GET", path: "/actors/" + actor.sub + "/activity?limit=1", token: s.admin}).want(t, http.StatusOK).decode(t, &page)
	if len(page.Events) != 1 || page.NextCursor == "" {
		t.Errorf("limit=1: %+v", page)
	}
	do(t, req{method: "GET", path: "/actors/" + actor.sub + "/activity?limit=1&cursor=" + url.QueryEscape(page.NextCursor), token: s.admin}).
		want(t, http.StatusOK).decode(t, &page)
	if len(page.Events) != 1 || page.Events[0].Type != "user.created.v1" {
		t.Errorf("second page: %+v", page)
	}
	do(t, req{method: "GET", path: "/actors/" + actor.sub + "/activity?cursor=forged", token: s.admin}).wantProblem(t, http.StatusBadRequest)
	do(t, req{method: "GET", path: "/actors/" + actor.sub + "/activity"}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "GET", path: "/actors/" + s.adminSub + "/activity", token: actor.token}).wantProblem(t, http.StatusForbidden)
}

func TestOperations(t *testing.T) {
	t.Parallel()
	user := newIdentity(t)
	u := createUser(t, user, "Olivia", uniqueEmail("olivia"))
	projected(t, user, u.ID, 1, http.StatusOK)

	var ops struct {
		Projections map[string]struct {
			Processed       int64  `json:"processed"`
			QueueDepth      *int64 `json:"queueDepth"`
			InFlight        *int64 `json:"inFlight"`
			DeadLetterDepth *int64 `json:"deadLetterDepth"`
		} `json:"projections"`
	}
	do(t, req{method: "GET", path: "/ops/projections", token: s.admin}).want(t, http.StatusOK).decode(t, &ops)
	for _, name := range []string{"user-view", "actor-activity", "welcome-mail"} {
		p, ok := ops.Projections[name]
		if !ok || p.QueueDepth == nil || p.InFlight == nil || p.DeadLetterDepth == nil {
			t.Errorf("/ops/projections: %s missing or without queue figures: %+v", name, ops.Projections)
		}
	}
	if ops.Projections["user-view"].Processed < 1 {
		t.Errorf("user-view processed nothing: %+v", ops.Projections["user-view"])
	}
	do(t, req{method: "GET", path: "/ops/projections"}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "GET", path: "/ops/projections", token: user.token}).wantProblem(t, http.StatusForbidden)

	var c struct {
		EventStoreVersion int64            `json:"eventStoreVersion"`
		Projections       map[string]int64 `json:"projections"`
	}
	// The HTTP contract: the listed projections are those that keep a per-user
	// version, and each reaches the event store's once caught up; one stuck
	// below it (welcome-mail at 0, say) never lets a client stop polling.
	eventually(t, 20*time.Second, "every listed projection at the event store's version", func() (bool, string) {
		r := do(t, req{method: "GET", path: "/users/" + u.ID + "/consistency", token: s.admin}).want(t, http.StatusOK)
		r.decode(t, &c)
		caught := c.EventStoreVersion == 1 && c.Projections["user-view"] == 1 && c.Projections["actor-activity"] == 1
		for _, v := range c.Projections {
			caught = caught && v == c.EventStoreVersion
		}
		return caught, string(r.body)
	})
	do(t, req{method: "GET", path: "/users/" + u.ID + "/consistency"}).wantProblem(t, http.StatusUnauthorized)
	do(t, req{method: "GET", path: "/users/" + u.ID + "/consistency", token: user.token}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "GET", path: "/users/" + uuid.NewString() + "/consistency", token: s.admin}).wantProblem(t, http.StatusNotFound)
	do(t, req{method: "GET", path: "/users/nope/consistency", token: s.admin}).wantProblem(t, http.StatusBadRequest)
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	r := do(t, req{method: "GET", path: "/healthz"}).want(t, http.StatusOK)
	var h struct {
		Status string `json:"status"`
	}
	r.decode(t, &h)
	if h.Status != "ok" || r.header.Get("X-Request-Id") == "" {
		t.Errorf("healthz %s, X-Request-Id %q", r.body, r.header.Get("X-Request-Id"))
	}
}

// TestHealthzUnavailable: with a store gone, /healthz answers 503. Locally
// only: it deletes the read-model table of a runner of its own.
func TestHealthzUnavailable(t *testing.T) {
	t.Parallel()
	lr := startTestRunner(t, runnerOptions{template: templatePath})
	c := client{base: lr.url}
	c.do(t, req{method: "GET", path: "/healthz"}).want(t, http.StatusOK)
	if _, err := dynamodb.NewFromConfig(*s.aws).DeleteTable(t.Context(),
		&dynamodb.DeleteTableInput{TableName: aws.String(lr.r.TableName("ReadModelTable"))}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "healthz answers 503", func() (bool, string) {
		r := c.do(t, req{method: "GET", path: "/healthz"})
		return r.status == http.StatusServiceUnavailable, string(r.body)
	})
	c.do(t, req{method: "GET", path: "/healthz"}).wantProblem(t, http.StatusServiceUnavailable)
}
