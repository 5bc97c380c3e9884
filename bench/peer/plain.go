// Package peer holds what Chronicle's in-memory kernel is measured against
// in BENCHMARKS.md: the same User aggregate, with the same events, rules and
// JSON, written without a framework in the shape event-sourcing libraries
// such as hallgren/eventsourcing give it (an aggregate root that tracks its
// changes and applies them with a type switch, an in-memory store of
// JSON-encoded events checked for concurrent writes). It does no more
// than that work, so it is the floor a library can only add to.
//
// It is its own module's package: the product never depends on it.
package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors of the plain aggregate and store.
var (
	ErrInvalid     = errors.New("invalid command")
	ErrNotFound    = errors.New("user not found")
	ErrDeleted     = errors.New("user deleted")
	ErrConcurrency = errors.New("concurrent write")
)

// Event types, as Chronicle stores them.
const (
	typeCreated = "user.created.v1"
	typeRenamed = "user.renamed.v1"
	typeDeleted = "user.deleted.v1"
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

// StoredEvent is an event as the store keeps it: encoded.
type StoredEvent struct {
	AggregateID string
	Version     int64
	Type        string
	At          time.Time
	Data        []byte
	Actor       string
}

// User is the aggregate root: its state, its version and the changes not
// yet saved.
type User struct {
	ID        string
	Version   int64
	Name      string
	Email     string
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt time.Time

	changes []change
}

// change is an event raised and applied but not saved.
type change struct {
	typ   string
	event any
	at    time.Time
}

// Rename decides a rename with Chronicle's rules (trimmed, 1..200
// printable characters, a live user, the same name a no-op) and applies it.
func (u *User) Rename(name string, now time.Time) error {
	name = strings.TrimSpace(name)
	if err := validName(name); err != nil {
		return err
	}
	switch {
	case u.Status == "":
		return ErrNotFound
	case u.Status == "deleted":
		return ErrDeleted
	case name == u.Name:
		return nil
	}
	u.raise(typeRenamed, Renamed{Name: name}, now)
	return nil
}

// Create decides a create with Chronicle's rules and applies it.
func (u *User) Create(name, email string, now time.Time) error {
	name, email = strings.TrimSpace(name), strings.ToLower(strings.TrimSpace(email))
	if err := validName(name); err != nil {
		return err
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return fmt.Errorf("%w: email", ErrInvalid)
	}
	if u.Status != "" {
		return fmt.Errorf("%w: the user exists", ErrInvalid)
	}
	u.raise(typeCreated, Created{Name: name, Email: email}, now)
	return nil
}

// CheckName and CheckEmail apply Chronicle's rules to a trimmed name and a
// trimmed, lower-cased email, for the other peers (package hallgren).
func CheckName(name string) error { return validName(name) }

// CheckEmail: see CheckName.
func CheckEmail(email string) error {
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return fmt.Errorf("%w: email", ErrInvalid)
	}
	return nil
}

func validName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name), n == 0, n > 200, strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: name", ErrInvalid)
	}
	return nil
}

func (u *User) raise(typ string, e any, at time.Time) {
	u.apply(e, at)
	u.Version++
	u.changes = append(u.changes, change{typ: typ, event: e, at: at})
}

// apply is the type switch every event goes through, raised or replayed.
func (u *User) apply(e any, at time.Time) {
	switch e := e.(type) {
	case Created:
		u.Name, u.Email, u.Status, u.CreatedAt = e.Name, e.Email, "active", at
	case Renamed:
		u.Name = e.Name
	case Deleted:
		u.Status, u.DeletedAt = "deleted", at
	}
	u.UpdatedAt = at
}

// decode returns the event of a stored one.
func decode(se StoredEvent) (any, error) {
	var err error
	switch se.Type {
	case typeCreated:
		var e Created
		err = json.Unmarshal(se.Data, &e)
		return e, err
	case typeRenamed:
		var e Renamed
		err = json.Unmarshal(se.Data, &e)
		return e, err
	case typeDeleted:
		var e Deleted
		err = json.Unmarshal(se.Data, &e)
		return e, err
	}
	return nil, fmt.Errorf("unknown event type %q", se.Type)
}

// Store keeps each aggregate's encoded events in memory.
type Store struct {
	mu      sync.Mutex
	streams map[string][]StoredEvent
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{streams: map[string][]StoredEvent{}} }

// Save encodes u's changes and appends them, unless another write came
// first.
func (s *Store) Save(u *User, actor string) error {
	if len(u.changes) == 0 {
		return nil
	}
	first := u.Version - int64(len(u.changes)) + 1
	evs := make([]StoredEvent, len(u.changes))
	for i, c := range u.changes {
		data, err := json.Marshal(c.event)
		if err != nil {
			return err
		}
		evs[i] = StoredEvent{AggregateID: u.ID, Version: first + int64(i), Type: c.typ, At: c.at, Data: data, Actor: actor}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stream := s.streams[u.ID]
	if int64(len(stream)) != first-1 {
		return ErrConcurrency
	}
	s.streams[u.ID] = append(stream, evs...)
	u.changes = nil
	return nil
}

// Load replays user id from its events.
func (s *Store) Load(id string) (*User, error) {
	s.mu.Lock()
	evs := append([]StoredEvent(nil), s.streams[id]...) // a copy, as a store hands out
	s.mu.Unlock()
	u := &User{ID: id}
	for _, se := range evs {
		e, err := decode(se)
		if err != nil {
			return nil, fmt.Errorf("load %s v%d: %w", id, se.Version, err)
		}
		u.apply(e, se.At)
		u.Version = se.Version
	}
	return u, nil
}
