package team

import (
	"cmp"
	"slices"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
)

// MemberView is one member in a team's read model.
type MemberView struct {
	UserID string    `json:"userId"`
	Role   Role      `json:"role"`
	Since  time.Time `json:"since"`
}

// View is the read model of one team: what GET /teams/{id} answers, its
// members in the order they joined. It is a pure fold of the team's
// events.
type View struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Version   int64        `json:"version"`
	Members   []MemberView `json:"members"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
}

// ViewOf is the view of a team in state s at version, last changed at
// updatedAt.
func ViewOf(id string, version int64, updatedAt time.Time, s State) View {
	v := View{ID: id, Name: s.Name, Version: version, CreatedAt: s.CreatedAt, UpdatedAt: updatedAt,
		Members: make([]MemberView, 0, len(s.Members))}
	for user, m := range s.Members {
		v.Members = append(v.Members, MemberView{UserID: user, Role: m.Role, Since: m.Since})
	}
	slices.SortFunc(v.Members, func(a, b MemberView) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.UserID, b.UserID))
	})
	return v
}

// State returns the state the view shows.
func (v View) State() State {
	s := State{Name: v.Name, CreatedAt: v.CreatedAt, Members: make(map[string]Member, len(v.Members))}
	for _, m := range v.Members {
		s.Members[m.UserID] = Member{Role: m.Role, Since: m.Since}
	}
	return s
}

// ApplyView folds one event into a view. rec.Event must be decoded. Events
// at or below the view's version are ignored, so duplicates change nothing.
func ApplyView(v View, rec es.Record) View {
	if rec.Version <= v.Version {
		return v
	}
	return ViewOf(rec.AggregateID, rec.Version, rec.OccurredAt, Evolve(v.State(), rec))
}

// Membership is one of a user's teams: what GET /users/{id}/teams lists.
type Membership struct {
	TeamID string    `json:"teamId"`
	Name   string    `json:"name"`
	Role   Role      `json:"role"`
	Since  time.Time `json:"since"`
}

// Memberships returns the place in the team of each of its members, by
// user id: the rows of the users' teams a team in state s accounts for.
func Memberships(id string, s State) map[string]Membership {
	out := make(map[string]Membership, len(s.Members))
	for user, m := range s.Members {
		out[user] = Membership{TeamID: id, Name: s.Name, Role: m.Role, Since: m.Since}
	}
	return out
}
