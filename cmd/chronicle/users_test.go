package main

import (
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestUsers: chronicle users lists the live users from the read model,
// newest first, by status and in pages; --json has the API's shape.
func TestUsers(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ids := []string{newID(), newID(), newID()}
	for i, id := range ids {
		s.exec(t, id, user.Create{Name: "User " + string(rune('A'+i)), Email: id + "@example.com"}, "admin", "")
	}
	s.exec(t, ids[1], user.Suspend{Reason: "spam"}, "admin", "spam")
	s.exec(t, ids[2], user.Delete{}, "admin", "")
	// The views as the projector would write them (a rebuild waits for
	// projectors to see its generation: seconds).
	registry := user.NewRegistry()
	for _, id := range ids {
		recs, err := s.events.Load(t.Context(), id, 1, 0)
		if err == nil {
			err = registry.DecodeAll(recs)
		}
		if err == nil {
			_, err = s.rm.PutUserView(t.Context(), userviews.FoldUser(recs), false)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	out, _, code := s.chronicle(t, "users")
	if code != 0 || !strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) || strings.Contains(out, ids[2]) ||
		strings.Index(out, ids[1]) > strings.Index(out, ids[0]) || !strings.Contains(out, "2 user(s)") {
		t.Fatalf("users: %d\n%s", code, out)
	}
	out, _, code = s.chronicle(t, "users", "--status", "suspended", "--json")
	page := decode[struct {
		Users      []user.View `json:"users"`
		NextCursor string      `json:"nextCursor"`
	}](t, out)
	if code != 0 || len(page.Users) != 1 || page.Users[0].ID != ids[1] || page.Users[0].Status != user.StatusSuspended || page.NextCursor != "" {
		t.Fatalf("users --status suspended --json: %d %+v", code, page)
	}
	out, _, code = s.chronicle(t, "--json", "users", "--limit", "1")
	page = decode[struct {
		Users      []user.View `json:"users"`
		NextCursor string      `json:"nextCursor"`
	}](t, out)
	if code != 0 || len(page.Users) != 1 || page.Users[0].ID != ids[1] || page.NextCursor == "" {
		t.Fatalf("users --limit 1: %d %+v", code, page)
	}
	out, _, code = s.chronicle(t, "users", "--limit", "1", "--cursor", page.NextCursor)
	if code != 0 || !strings.Contains(out, ids[0]) || !strings.Contains(out, "1 user(s)\n") {
		t.Fatalf("users --cursor: %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"users", "--status", "deleted"},
		{"users", "--limit", "0"},
		{"users", "--limit", "1001"},
		{"users", "--cursor", page.NextCursor, "--status", "active"},
		{"users", "extra"},
	} {
		if _, _, code := s.chronicle(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
