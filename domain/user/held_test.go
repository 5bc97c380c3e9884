package user_test

import (
	"slices"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/user"
)

// The address a view holds is the one Unique gives the state it shows:
// the read model's email lookup and the event store's guard follow one rule.
func TestHeldEmailFollowsUnique(t *testing.T) {
	for _, s := range []user.State{
		{},
		{Name: "Ada", Email: "ada@example.com", Status: user.StatusActive},
		{Name: "Ada", Email: "ada@example.com", Status: user.StatusSuspended, Sub: "sub-1"},
		{Name: "Ada", Email: "ada@example.com", Status: user.StatusDeleted},
		{Status: user.StatusDeleted, Forgotten: true},
	} {
		want := ""
		if slices.Contains(user.Unique(s), user.EmailKey(s.Email)) {
			want = s.Email
		}
		if got := user.ViewOf("u1", 3, time.Now(), s).HeldEmail(); got != want {
			t.Errorf("status %q: HeldEmail %q, want %q", s.Status, got, want)
		}
	}
}
