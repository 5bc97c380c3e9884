package userviews_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// listIDs pages through the user list of status, limit at a time, and
// returns the ids in the order listed and the names by id.
func listIDs(t *testing.T, s *userviews.Store, status user.Status, limit int) ([]string, map[string]user.View) {
	t.Helper()
	var ids []string
	views := map[string]user.View{}
	cursor := ""
	for range 1000 {
		page, err := s.ListUsers(t.Context(), status, limit, cursor)
		if err != nil {
			t.Fatalf("list %q after %q: %v", status, cursor, err)
		}
		if len(page.Users) > limit {
			t.Fatalf("page of %d users, limit %d", len(page.Users), limit)
		}
		for _, v := range page.Users {
			ids = append(ids, v.ID)
			views[v.ID] = v
		}
		if page.Next == "" {
			return ids, views
		}
		if len(page.Users) == 0 {
			t.Fatalf("an empty page with a next cursor")
		}
		cursor = page.Next
	}
	t.Fatal("the list never ends")
	return nil, nil
}

// TestUserListFollowsStatus: the list index follows every view write:
// created users are listed newest first, a rename keeps the user where it
// is, a suspension moves it from the active list to the suspended one, a
// reactivation moves it back, and a deletion removes it.
func TestUserListFollowsStatus(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	a, b := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	check := func(step string, status user.Status, want ...string) {
		t.Helper()
		got, _ := listIDs(t, s, status, 10)
		if !slices.Equal(got, want) {
			t.Errorf("%s: list %q = %v, want %v", step, status, got, want)
		}
		for _, id := range []string{a, b} {
			if d, err := s.IndexMismatch(t.Context(), id); err != nil || d != "" {
				t.Errorf("%s: index of %s: %q, %v", step, id, d, err)
			}
		}
	}
	check("empty", "")

	project(t, s, record(t, a, 1, user.Created{Name: "Ada", Email: "ada@example.com"}, t0, "admin"))
	project(t, s, record(t, b, 1, user.Created{Name: "Bob", Email: "bob@example.com"}, t0.Add(time.Second), "admin"))
	check("created", "", b, a)
	check("created", user.StatusActive, b, a)
	check("created", user.StatusSuspended)

	project(t, s, record(t, a, 2, user.Renamed{Name: "Ada L."}, t0.Add(2*time.Second), "admin"))
	check("renamed", "", b, a)
	if _, views := listIDs(t, s, "", 10); views[a].Name != "Ada L." || views[a].Version != 2 {
		t.Errorf("renamed: listed %+v, want the view at v2", views[a])
	}

	project(t, s, record(t, a, 3, user.Suspended{Reason: "spam"}, t0.Add(3*time.Second), "admin"))
	check("suspended", user.StatusActive, b)
	check("suspended", user.StatusSuspended, a)
	check("suspended", "", b, a)

	project(t, s, record(t, a, 4, user.Reactivated{}, t0.Add(4*time.Second), "admin"))
	check("reactivated", user.StatusActive, b, a)
	check("reactivated", user.StatusSuspended)

	project(t, s, record(t, b, 2, user.Deleted{Reason: "gone"}, t0.Add(5*time.Second), "admin"))
	check("deleted", "", a)
	check("deleted", user.StatusActive, a)

	project(t, s, record(t, a, 5, user.Suspended{Reason: "again"}, t0.Add(6*time.Second), "admin"),
		record(t, a, 6, user.Deleted{}, t0.Add(7*time.Second), "admin"))
	check("suspended user deleted", "")
	check("suspended user deleted", user.StatusSuspended)
}

// TestUserListPages: paging through more users than a page, spread over
// every shard and with createdAt ties, lists each live user exactly once,
// newest first (createdAt, then id), whatever the page size.
func TestUserListPages(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	const n = 50
	type created struct {
		id string
		at time.Time
	}
	var all []created
	for i := range n {
		id := uuid.Must(uuid.NewV7()).String()
		at := t0.Add(time.Duration(i/3) * time.Millisecond) // three users per instant
		all = append(all, created{id, at})
		recs := []es.Record{record(t, id, 1, user.Created{Name: "U", Email: fmt.Sprintf("u%d@example.com", i)}, at, "admin")}
		if i%5 == 0 {
			recs = append(recs, record(t, id, 2, user.Suspended{Reason: "r"}, at.Add(time.Hour), "admin"))
		}
		if i%7 == 0 {
			recs = append(recs, record(t, id, int64(len(recs)+1), user.Deleted{}, at.Add(2*time.Hour), "admin"))
		}
		project(t, s, recs...)
	}
	slices.SortFunc(all, func(x, y created) int {
		if c := y.at.Compare(x.at); c != 0 {
			return c
		}
		return strings.Compare(y.id, x.id) // listSk ties: the id, descending
	})
	want := map[user.Status][]string{}
	for _, c := range all {
		v, _, err := s.UserView(t.Context(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status == user.StatusDeleted {
			continue
		}
		want[""] = append(want[""], c.id)
		want[v.Status] = append(want[v.Status], c.id)
	}
	// Each page queries every shard of its statuses: the limits are few.
	for status, limits := range map[user.Status][]int{"": {3, 16, 100}, user.StatusActive: {7}, user.StatusSuspended: {2}} {
		for _, limit := range limits {
			got, _ := listIDs(t, s, status, limit)
			if !slices.Equal(got, want[status]) {
				t.Errorf("list %q by %d: %d users %v\nwant %d %v", status, limit, len(got), got, len(want[status]), want[status])
			}
		}
	}
}

// TestUserListRefusesForeignCursors: a cursor ListUsers did not hand out
// for the same status is ErrBadCursor, never a query of other keys.
func TestUserListRefusesForeignCursors(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	for i := range 3 {
		id := uuid.Must(uuid.NewV7()).String()
		project(t, s, record(t, id, 1, user.Created{Name: "U", Email: fmt.Sprintf("c%d@example.com", i)}, t0.Add(time.Duration(i)*time.Second), "admin"))
	}
	page, err := s.ListUsers(t.Context(), user.StatusActive, 1, "")
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	id := uuid.NewString()
	for name, c := range map[string]struct {
		status user.Status
		cursor string
	}{
		"other status":        {user.StatusSuspended, page.Next},
		"no status":           {"", page.Next},
		"not base64":          {user.StatusActive, "!!!"},
		"not JSON":            {user.StatusActive, enc("user#x")},
		"a table key":         {user.StatusActive, enc(`{"s":"active","a":"g2#user#` + id + `"}`)},
		"no id":               {user.StatusActive, enc(`{"s":"active","a":"2026-03-01T12:00:00.000000000Z"}`)},
		"short stamp":         {user.StatusActive, enc(`{"s":"active","a":"2026-03-01T12:00:00Z#` + id + `"}`)},
		"upper-case id":       {user.StatusActive, enc(`{"s":"active","a":"2026-03-01T12:00:00.000000000Z#` + strings.ToUpper(id) + `"}`)},
		"id with a key after": {user.StatusActive, enc(`{"s":"active","a":"2026-03-01T12:00:00.000000000Z#` + id + `#x"}`)},
		"empty":               {user.StatusActive, enc(`{}`)},
	} {
		if _, err := s.ListUsers(t.Context(), c.status, 10, c.cursor); !errors.Is(err, readmodel.ErrBadCursor) {
			t.Errorf("%s: %v, want ErrBadCursor", name, err)
		}
	}
	if _, err := s.ListUsers(t.Context(), user.StatusActive, 10, page.Next); err != nil {
		t.Errorf("the cursor handed out: %v", err)
	}
}

// TestUserListReadsItsGeneration: the list reads the generation its store
// reads (the active one), never the rows of a rebuild's new generation.
func TestUserListReadsItsGeneration(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	old, fresh := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	project(t, s, record(t, old, 1, user.Created{Name: "Old", Email: "old@example.com"}, t0, "admin"))
	g2 := userviews.New(s.At(userviews.ProjectionUserView, 2))
	fold := userviews.FoldUser([]es.Record{record(t, fresh, 1, user.Created{Name: "New", Email: "new@example.com"}, t0, "admin")})
	if _, err := g2.PutUserView(t.Context(), fold, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := listIDs(t, s, "", 10); !slices.Equal(got, []string{old}) {
		t.Errorf("active generation lists %v, want [%s]", got, old)
	}
	if got, _ := listIDs(t, g2, "", 10); !slices.Equal(got, []string{fresh}) {
		t.Errorf("generation 2 lists %v, want [%s]", got, fresh)
	}
}
