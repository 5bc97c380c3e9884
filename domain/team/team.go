package team

import (
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/text"
)

// Role is what a member may do in its team (Policy).
type Role string

// The roles.
const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// MaxNameLength bounds a team's name, in characters after trimming.
const MaxNameLength = 200

// Member is one user's place in a team.
type Member struct {
	Role  Role      `json:"role"`
	Since time.Time `json:"since"` // when the user joined
}

// State is a team as its events left it. Its JSON is the snapshot shape.
// Members is shared between states folded from one another: Evolve copies
// it before changing it, never writes into it.
type State struct {
	Name      string            `json:"name"`
	Members   map[string]Member `json:"members,omitempty"` // by user id
	CreatedAt time.Time         `json:"createdAt"`
}

// Exists reports whether the team was created (a team always has a name).
func (s State) Exists() bool { return s.Name != "" }

// Owners counts the team's owners.
func (s State) Owners() int {
	n := 0
	for _, m := range s.Members {
		if m.Role == RoleOwner {
			n++
		}
	}
	return n
}

// RoleOf returns the role of user in the team, and whether it is a member.
func (s State) RoleOf(user string) (Role, bool) {
	m, ok := s.Members[user]
	return m.Role, ok
}

// StateSchema is the version of State's JSON shape in snapshots.
const StateSchema = 1

// AggregateType names team streams in stored records.
const AggregateType = "team"

// Decider returns the Team aggregate. Teams hold no unique value.
func Decider() es.Decider[State, Command] {
	return es.Decider[State, Command]{
		Type:        AggregateType,
		Decide:      Decide,
		Evolve:      Evolve,
		StateSchema: StateSchema,
	}
}

// Validate normalizes cmd (trimmed names and reasons) and lists every
// invalid field. It needs no state, so the edge can answer 400 before
// loading anything.
func Validate(cmd Command) (Command, error) {
	var v validation
	cmd = normalize(&v, cmd)
	return cmd, v.Err()
}

func normalize(v *validation, cmd Command) Command {
	switch c := cmd.(type) {
	case Create:
		c.Name = normalizeName(v, c.Name)
		c.Owner = normalizeUserID(v, "owner", c.Owner)
		return c
	case Rename:
		c.Name = normalizeName(v, c.Name)
		return c
	case SetMember:
		c.UserID = normalizeUserID(v, "userId", c.UserID)
		if c.Role != RoleOwner && c.Role != RoleMember {
			v.Add("role", `must be "member" or "owner"`)
		}
		return c
	case RemoveMember:
		c.UserID = normalizeUserID(v, "userId", c.UserID)
		c.Reason = normalizeReason(v, c.Reason)
		return c
	case RemoveDeletedMember:
		c.UserID = normalizeUserID(v, "userId", c.UserID)
		c.Reason = normalizeReason(v, c.Reason)
		return c
	}
	v.Add("command", "unknown command")
	return cmd
}

func normalizeName(v *validation, name string) string {
	name = strings.TrimSpace(name)
	if msg := text.CheckName(name, MaxNameLength); msg != "" {
		v.Add("name", msg)
	}
	return name
}

// normalizeUserID checks a user id: a UUID, kept in its canonical form.
func normalizeUserID(v *validation, field, id string) string {
	u, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil {
		v.Add(field, "must be a user id (a UUID)")
		return id
	}
	return u.String()
}

func normalizeReason(v *validation, reason string) string {
	reason, msg := text.CheckReason(reason, false)
	if msg != "" {
		v.Add("reason", msg)
	}
	return reason
}

// Decide returns the events cmd causes for a team in state s, or the rule
// it breaks. A command that changes nothing yields no event.
func Decide(s State, cmd Command, _ time.Time) ([]es.Event, error) {
	var v validation
	cmd = normalize(&v, cmd)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if c, ok := cmd.(Create); ok {
		switch {
		case s.Exists():
			return nil, ErrAlreadyExists
		case !c.OwnerActive:
			return nil, ErrUserNotActive
		}
		return []es.Event{Created{Name: c.Name, Owner: c.Owner}}, nil
	}
	if !s.Exists() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case Rename:
		if c.Name == s.Name {
			return nil, nil
		}
		return []es.Event{Renamed(c)}, nil
	case SetMember:
		role, member := s.RoleOf(c.UserID)
		switch {
		case member && role == c.Role:
			return nil, nil
		case !c.UserActive:
			return nil, ErrUserNotActive
		case !member:
			return []es.Event{MemberAdded{UserID: c.UserID, Role: c.Role}}, nil
		case role == RoleOwner && s.Owners() == 1:
			return nil, ErrLastOwner
		}
		return []es.Event{MemberRoleChanged{UserID: c.UserID, Role: c.Role}}, nil
	case RemoveMember:
		role, member := s.RoleOf(c.UserID)
		switch {
		case !member:
			return nil, ErrNotMember
		case role == RoleOwner && s.Owners() == 1:
			return nil, ErrLastOwner
		}
		return []es.Event{MemberRemoved{UserID: c.UserID, Reason: c.Reason}}, nil
	case RemoveDeletedMember:
		if _, member := s.RoleOf(c.UserID); !member {
			return nil, nil
		}
		return []es.Event{MemberRemoved{UserID: c.UserID, Reason: c.Reason, UserDeleted: true}}, nil
	}
	return nil, &ValidationError{Fields: []FieldError{{Field: "command", Message: "unknown command"}}}
}

// Evolve applies one event. It never fails: events are facts. It copies
// the members before changing them: the state it was given may be held
// elsewhere (the kernel's cache) and must not change.
func Evolve(s State, rec es.Record) State {
	switch e := rec.Event.(type) {
	case Created:
		s = State{Name: e.Name, CreatedAt: rec.OccurredAt,
			Members: map[string]Member{e.Owner: {Role: RoleOwner, Since: rec.OccurredAt}}}
	case Renamed:
		s.Name = e.Name
	case MemberAdded:
		s.Members = withMember(s.Members, e.UserID, Member{Role: e.Role, Since: rec.OccurredAt})
	case MemberRoleChanged:
		m := s.Members[e.UserID]
		m.Role = e.Role
		s.Members = withMember(s.Members, e.UserID, m)
	case MemberRemoved:
		s.Members = maps.Clone(s.Members)
		delete(s.Members, e.UserID)
	}
	return s
}

func withMember(members map[string]Member, user string, m Member) map[string]Member {
	out := make(map[string]Member, len(members)+1)
	maps.Copy(out, members)
	out[user] = m
	return out
}
