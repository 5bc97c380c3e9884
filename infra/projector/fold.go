package projector

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// projection is what the projector runs per message; fold is the only kind.
type projection interface {
	projectionName() string
	// project brings the projection in rm up to rec and returns the records
	// it applied: none for a duplicate, several when it healed a gap.
	project(ctx context.Context, p *Projector, rm ReadModel, rec es.Record) ([]es.Record, error)
}

// fold is a projection: a pure fold of an aggregate's events into V, and
// the store keeping V with the version applied.
type fold[V any] struct {
	name  string
	apply func(V, es.Record) V
	bind  func(ReadModel) viewStore[V] // the projection's store in a read model
}

// viewStore keeps one projection's V per aggregate.
type viewStore[V any] interface {
	// load returns the view of aggregateID and the version applied to it,
	// read consistently.
	load(ctx context.Context, aggregateID string) (V, int64, error)
	// save writes after, the fold of before and rec, on condition that the
	// applied version is rec.Version-1; else it fails with
	// readmodel.ErrConflict.
	save(ctx context.Context, before, after V, rec es.Record) error
}

func (f fold[V]) projectionName() string { return f.name }

func (f fold[V]) project(ctx context.Context, p *Projector, rm ReadModel, rec es.Record) ([]es.Record, error) {
	var (
		done    []es.Record
		lastErr error
		store   = f.bind(rm)
	)
	for attempt := range maxAttempts {
		view, applied, err := store.load(ctx, rec.AggregateID)
		if err != nil {
			return done, err
		}
		if rec.Version <= applied {
			return done, nil // a duplicate: already applied
		}
		recs := []es.Record{rec}
		if rec.Version > applied+1 {
			if recs, err = p.missing(ctx, rec, applied); err != nil {
				return done, err
			}
		}
		for _, r := range recs {
			next := f.apply(view, r)
			if err = store.save(ctx, view, next, r); err != nil {
				break
			}
			view = next
			done = append(done, r)
		}
		if err == nil {
			return done, nil
		}
		if !errors.Is(err, readmodel.ErrConflict) {
			return done, err
		}
		// Another delivery of this stream, or a writer of a shared email
		// lookup, got there first: read again and go on from there, after
		// a short jittered pause so that racing writers spread out.
		lastErr = err
		if attempt == maxAttempts-1 {
			break
		}
		if err := pause(ctx, attempt); err != nil {
			return done, err
		}
	}
	return done, fmt.Errorf("gave up after %d attempts: %w", maxAttempts, lastErr)
}

// userViews keeps the user view (and its email lookup).
type userViews struct{ store ReadModel }

func (u userViews) load(ctx context.Context, id string) (user.View, int64, error) {
	return u.store.UserViewForUpdate(ctx, id)
}

func (u userViews) save(ctx context.Context, before, after user.View, rec es.Record) error {
	return u.store.SaveUserView(ctx, before, after, rec)
}

// activity keeps the actor activity. It has no state: each event is one
// item of its actor's list.
type activity struct{ store ReadModel }

func noState(struct{}, es.Record) struct{} { return struct{}{} }

func (a activity) load(ctx context.Context, id string) (struct{}, int64, error) {
	v, err := a.store.ActivityApplied(ctx, id)
	return struct{}{}, v, err
}

func (a activity) save(ctx context.Context, _, _ struct{}, rec es.Record) error {
	return a.store.SaveActivity(ctx, rec)
}

// pause waits up to 5 ms times 2^attempt, at random, or until ctx ends.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(rand.N(5 * time.Millisecond << attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
