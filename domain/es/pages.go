package es

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PageLoader is an EventStore that hands a stream out page by page as it
// reads it, which a load then decodes and folds page by page: the stream is
// never collected in one slice, nor copied out of the in-memory store. A
// load uses it when the store has it, Load otherwise.
type PageLoader interface {
	// LoadPages calls fn with the records of a stream with from <= version
	// <= to (to <= 0: no upper bound), in version order, in one or more
	// non-empty pages; an unknown stream makes no call. It stops at fn's
	// first error and returns it, unwrapped. fn must neither keep nor
	// modify a page after it returns: a store may hand out its own memory.
	LoadPages(ctx context.Context, aggregateID string, from, to int64, fn func(page []Record) error) error
}

// errAsOf stops a paged load at the first event after its time bound.
var errAsOf = errors.New("past the time bound")

// foldPages folds the events of agg's stream after its version, up to
// version to (0: no bound) and time asOf (zero: no bound), page by page.
func (s *Service[S, C]) foldPages(ctx context.Context, pl PageLoader, agg Aggregate[S], to int64, asOf time.Time) (Aggregate[S], error) {
	from := agg.Version + 1
	var decodeErr error // returned as Load's path returns it: not wrapped
	var last lastCodec
	err := pl.LoadPages(ctx, agg.ID, from, to, func(page []Record) error {
		// The state is folded in locals and stored in agg once per page:
		// agg lives on the heap (this closure escapes), and a 10,000-event
		// replay wrote it, write barriers and all, 10,000 times.
		state, version, updated := agg.State, agg.Version, agg.UpdatedAt
		defer func() { agg.State, agg.Version, agg.UpdatedAt = state, version, updated }()
		var rec Record
		for i := range page {
			p := &page[i] // read in place: the page may be the store's own memory
			if !asOf.IsZero() && p.OccurredAt.After(asOf) {
				return errAsOf
			}
			e, err := last.decode(s.registry, p)
			if err != nil {
				decodeErr = err
				return err
			}
			rec = *p // Evolve takes a record with its event: one copy, not three
			rec.Event = e
			state = s.decider.Evolve(state, rec)
			version, updated = p.Version, p.OccurredAt
		}
		return nil
	})
	switch {
	case decodeErr != nil:
		return Aggregate[S]{}, decodeErr
	case err == nil, errors.Is(err, errAsOf):
		return agg, nil
	}
	return Aggregate[S]{}, fmt.Errorf("load %s from v%d: %w", agg.ID, from, err)
}

// lastCodec remembers the codec of the last record decoded, when it decodes
// itself at the record's type and schema: a stream is mostly runs of one
// type, and the registry's map lookup was a tenth of a replay.
type lastCodec struct {
	typ    string
	schema int
	own    func(data []byte) (Event, error)
}

// decode takes rec by pointer: a Record is 256 bytes, copied per event.
func (l *lastCodec) decode(r *Registry, rec *Record) (Event, error) {
	if l.own == nil || rec.Type != l.typ || rec.SchemaVersion != l.schema {
		c, ok := r.codecs[rec.Type]
		if !ok || c.own == nil || c.schema != rec.SchemaVersion {
			return r.Decode(*rec) // upcasted, or decoded by encoding/json
		}
		l.typ, l.schema, l.own = rec.Type, rec.SchemaVersion, c.own
	}
	e, err := l.own(rec.Data)
	if err != nil {
		return nil, decodeError(*rec, err)
	}
	return e, nil
}
