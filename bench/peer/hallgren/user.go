// Package hallgren is Chronicle's User aggregate written on
// github.com/hallgren/eventsourcing (v0.9.1, pinned by the bench module),
// an event-sourcing library for Go: what BENCHMARKS.md compares Chronicle
// with. It has the plain peer's commands (create, rename) with the same
// rules and the same events in the same JSON, and follows the library's
// README: an aggregate.Root embedded in the aggregate, events raised with
// aggregate.TrackChange and applied by Transition, saved and loaded with
// aggregate.Save and aggregate.Load, in the library's in-memory event store.
//
// It is the bench module's package: the product never depends on it.
package hallgren

import (
	"strings"
	"time"

	"github.com/hallgren/eventsourcing"
	"github.com/hallgren/eventsourcing/aggregate"

	"github.com/chronicle-go/chronicle/bench/peer"
)

// Created, Renamed and Deleted carry the JSON of Chronicle's user events.
type Created struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Sub   string `json:"sub,omitempty"`
}

type Renamed struct {
	Name string `json:"name"`
}

type Deleted struct {
	Reason string `json:"reason,omitempty"`
}

// User is the aggregate.
type User struct {
	aggregate.Root
	Name      string
	Email     string
	Status    string
	CreatedAt time.Time
	DeletedAt time.Time
}

// Register registers the aggregate and its events with the library, once
// per process (the library keeps them in a global register).
func Register() { aggregate.Register(&User{}) }

// Register implements the library's aggregate interface: the events of a
// user.
func (u *User) Register(r aggregate.RegisterFunc) {
	r(&Created{}, &Renamed{}, &Deleted{})
}

// Transition implements the library's aggregate interface: the type
// switch every event goes through, raised or loaded.
func (u *User) Transition(e eventsourcing.Event) {
	switch d := e.Data().(type) {
	case *Created:
		u.Name, u.Email, u.Status, u.CreatedAt = d.Name, d.Email, "active", e.Timestamp()
	case *Renamed:
		u.Name = d.Name
	case *Deleted:
		u.Status, u.DeletedAt = "deleted", e.Timestamp()
	}
}

// Create decides a create with Chronicle's rules and raises it. id is the
// new user's.
func Create(id, name, email string) (*User, error) {
	name, email = strings.TrimSpace(name), strings.ToLower(strings.TrimSpace(email))
	if err := peer.CheckName(name); err != nil {
		return nil, err
	}
	if err := peer.CheckEmail(email); err != nil {
		return nil, err
	}
	u := &User{}
	if err := u.SetID(id); err != nil {
		return nil, err
	}
	aggregate.TrackChange(u, &Created{Name: name, Email: email})
	return u, nil
}

// Rename decides a rename with Chronicle's rules (trimmed, 1..200
// printable characters, a live user, the same name a no-op) and raises it.
func (u *User) Rename(name string) error {
	name = strings.TrimSpace(name)
	if err := peer.CheckName(name); err != nil {
		return err
	}
	switch {
	case u.Status == "":
		return peer.ErrNotFound
	case u.Status == "deleted":
		return peer.ErrDeleted
	case name == u.Name:
		return nil
	}
	aggregate.TrackChange(u, &Renamed{Name: name})
	return nil
}
