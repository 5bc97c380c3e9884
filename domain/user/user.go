package user

import (
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
)

// Status is where a user is in its life.
type Status string

// The statuses; a user that was never created has the empty status.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusDeleted   Status = "deleted"
)

// State is a user as its events left it. Its JSON is the snapshot shape.
type State struct {
	Name          string    `json:"name"`
	Email         string    `json:"email"`
	Sub           string    `json:"sub,omitempty"`
	Status        Status    `json:"status"`
	CreatedAt     time.Time `json:"createdAt"`
	SuspendReason string    `json:"suspendReason,omitempty"`
	DeletedAt     time.Time `json:"deletedAt,omitzero"`
	DeletedBy     string    `json:"deletedBy,omitempty"`
	DeleteReason  string    `json:"deleteReason,omitempty"`
	// Forgotten: the personal data was erased (Name and Email are then
	// empty); when, by whom and why.
	Forgotten    bool      `json:"forgotten,omitempty"`
	ForgottenAt  time.Time `json:"forgottenAt,omitzero"`
	ForgottenBy  string    `json:"forgottenBy,omitempty"`
	ForgetReason string    `json:"forgetReason,omitempty"`
}

// Exists reports whether the user was created.
func (s State) Exists() bool { return s.Status != "" }

// StateSchema is the version of State's JSON shape in snapshots.
const StateSchema = 1

// AggregateType names user streams in stored records.
const AggregateType = "user"

// Decider returns the User aggregate.
func Decider() es.Decider[State, Command] {
	return es.Decider[State, Command]{
		Type:        AggregateType,
		Decide:      Decide,
		Evolve:      Evolve,
		Unique:      Unique,
		StateSchema: StateSchema,
	}
}

// Validate normalizes cmd (trimmed, lower-cased email) and lists every invalid
// field. It needs no state, so the edge can answer 400 before loading anything.
func Validate(cmd Command) (Command, error) {
	var v validation
	switch c := cmd.(type) {
	case Create:
		cmd = c.normalize(&v)
	case Rename:
		cmd = c.normalize(&v)
	case ChangeEmail:
		cmd = c.normalize(&v)
	case Suspend:
		cmd = c.normalize(&v)
	case Reactivate:
		cmd = c.normalize(&v)
	case Delete:
		cmd = c.normalize(&v)
	case Forget:
		cmd = c.normalize(&v)
	default:
		v.Add("command", "unknown command")
	}
	return cmd, v.Err()
}

func (c Create) normalize(v *validation) Create {
	c.Name = normalizeName(v, "name", c.Name)
	c.Email = normalizeEmail(v, "email", c.Email)
	c.Sub = normalizeSub(v, c.Sub)
	return c
}

func (c Rename) normalize(v *validation) Rename {
	c.Name = normalizeName(v, "name", c.Name)
	return c
}

func (c ChangeEmail) normalize(v *validation) ChangeEmail {
	c.Email = normalizeEmail(v, "email", c.Email)
	return c
}

func (c Suspend) normalize(v *validation) Suspend {
	c.Reason = normalizeReason(v, c.Reason, true)
	return c
}

func (c Reactivate) normalize(v *validation) Reactivate {
	c.Reason = normalizeReason(v, c.Reason, false)
	return c
}

func (c Delete) normalize(v *validation) Delete {
	c.Reason = normalizeReason(v, c.Reason, false)
	return c
}

func (c Forget) normalize(v *validation) Forget {
	c.Reason = normalizeReason(v, c.Reason, true)
	return c
}

// Decide returns the events cmd causes for a user in state s, or the rule it
// breaks. A command that changes nothing yields no event. It validates cmd
// as Validate does, each command as its own type: Validate's answer, a
// Command, would cost an allocation per command.
func Decide(s State, cmd Command, _ time.Time) ([]es.Event, error) {
	var v validation
	switch c := cmd.(type) {
	case Create:
		c = c.normalize(&v)
		if err := v.Err(); err != nil {
			return nil, err
		}
		if s.Exists() {
			return nil, ErrAlreadyExists
		}
		return []es.Event{Created(c)}, nil
	case Rename:
		c = c.normalize(&v)
		if err := valid(s, v); err != nil {
			return nil, err
		}
		if c.Name == s.Name {
			return nil, nil
		}
		return []es.Event{Renamed(c)}, nil
	case ChangeEmail:
		c = c.normalize(&v)
		if err := valid(s, v); err != nil {
			return nil, err
		}
		if c.Email == s.Email {
			return nil, nil
		}
		return []es.Event{EmailChanged{Email: c.Email, Previous: s.Email}}, nil
	case Suspend:
		c = c.normalize(&v)
		if err := valid(s, v); err != nil {
			return nil, err
		}
		if s.Status == StatusSuspended {
			return nil, ErrAlreadySuspended
		}
		return []es.Event{Suspended(c)}, nil
	case Reactivate:
		c = c.normalize(&v)
		if err := valid(s, v); err != nil {
			return nil, err
		}
		if s.Status != StatusSuspended {
			return nil, ErrNotSuspended
		}
		return []es.Event{Reactivated(c)}, nil
	case Delete:
		c = c.normalize(&v)
		if err := valid(s, v); err != nil {
			return nil, err
		}
		return []es.Event{Deleted(c)}, nil
	case Forget:
		c = c.normalize(&v)
		switch {
		case len(v) > 0:
			return nil, v.Err()
		case !s.Exists():
			return nil, ErrNotFound
		case s.Forgotten:
			return nil, ErrForgotten
		case s.Status == StatusDeleted:
			return []es.Event{Forgotten(c)}, nil
		}
		// A live user is deleted first, in the same append: the deletion
		// frees its unique values while the state still knows them.
		return []es.Event{Deleted(c), Forgotten(c)}, nil
	}
	v.Add("command", "unknown command")
	return nil, v.Err()
}

// valid returns the first rule a command on a user that must exist
// breaks: an invalid field, then a user that does not exist or is deleted.
func valid(s State, v validation) error {
	switch {
	case len(v) > 0:
		return v.Err()
	case !s.Exists():
		return ErrNotFound
	case s.Forgotten:
		return ErrForgotten
	case s.Status == StatusDeleted:
		return ErrDeleted
	}
	return nil
}

// Evolve applies one event. It never fails: events are facts.
func Evolve(s State, rec es.Record) State {
	switch e := rec.Event.(type) {
	case Created:
		s = State{Name: e.Name, Email: e.Email, Sub: e.Sub, Status: StatusActive, CreatedAt: rec.OccurredAt}
	case Renamed:
		s.Name = e.Name
	case EmailChanged:
		s.Email = e.Email
	case Suspended:
		s.Status, s.SuspendReason = StatusSuspended, e.Reason
	case Reactivated:
		s.Status, s.SuspendReason = StatusActive, ""
	case Deleted:
		s.Status, s.DeletedAt, s.DeletedBy, s.DeleteReason = StatusDeleted, rec.OccurredAt, rec.Metadata.Actor, e.Reason
	case Forgotten:
		// The state keeps no personal data from here on, so neither do the
		// snapshots and views folded from it.
		s.Name, s.Email, s.Status = "", "", StatusDeleted
		s.Forgotten, s.ForgottenAt, s.ForgottenBy, s.ForgetReason = true, rec.OccurredAt, rec.Metadata.Actor, e.Reason
	}
	return s
}

// Unique lists the values a live user holds alone: its email and its identity.
// A deleted user holds none, so deleting frees them.
func Unique(s State) []string {
	if !holdsUnique(s) {
		return nil
	}
	keys := []string{EmailKey(s.Email)}
	if s.Sub != "" {
		keys = append(keys, SubKey(s.Sub))
	}
	return keys
}

// holdsUnique reports whether a user in state s holds its unique values:
// it exists and is not deleted.
func holdsUnique(s State) bool { return s.Exists() && s.Status != StatusDeleted }

// EmailKey is the guard key of an email address.
func EmailKey(email string) string { return "email#" + email }

// SubKey is the guard key of an identity: one user per sub.
func SubKey(sub string) string { return "sub#" + sub }
