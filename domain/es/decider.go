package es

import (
	"slices"
	"time"
)

// Decider is an aggregate written as pure functions: Decide validates a command
// against the current state and returns the events it causes (none for a
// no-op), or a domain error; Evolve applies one event and never fails. Neither
// does I/O; time comes in as an argument.
type Decider[S, C any] struct {
	// Type names the aggregate in stored records ("user").
	Type string
	// Decide returns the events cmd causes in state, or a domain error.
	Decide func(state S, cmd C, now time.Time) ([]Event, error)
	// Evolve returns the state after rec. rec.Event holds the decoded event.
	Evolve func(state S, rec Record) S
	// Unique, optional, lists the unique values a state holds
	// ("email#alice@example.com"). The kernel claims the values a command adds
	// and releases those it drops, in the same atomic append as its events.
	Unique func(state S) []string
	// StateSchema is the version of S's JSON shape in snapshots. Bump it when S
	// changes incompatibly: older snapshots are then ignored and streams replayed.
	StateSchema int
}

// Aggregate is the state of one stream at a version. Version 0 means the
// stream has no events (the aggregate does not exist).
type Aggregate[S any] struct {
	ID        string
	Version   int64
	State     S
	UpdatedAt time.Time // OccurredAt of the event at Version
}

// Fold applies recs, which must follow agg's version, in order.
func (d Decider[S, C]) Fold(agg Aggregate[S], recs []Record) Aggregate[S] {
	for _, r := range recs {
		agg.State = d.Evolve(agg.State, r)
		agg.Version = r.Version
		agg.UpdatedAt = r.OccurredAt
	}
	return agg
}

// guards returns the unique values to claim and release between two states.
func (d Decider[S, C]) guards(id string, before, after S) (claims, releases []Guard) {
	if d.Unique == nil {
		return nil, nil
	}
	old, cur := d.Unique(before), d.Unique(after)
	for _, k := range cur {
		if !slices.Contains(old, k) {
			claims = append(claims, Guard{Key: k, Owner: id})
		}
	}
	for _, k := range old {
		if !slices.Contains(cur, k) {
			releases = append(releases, Guard{Key: k, Owner: id})
		}
	}
	return claims, releases
}
