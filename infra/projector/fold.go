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

// projection is what the projector runs per run of messages of one
// aggregate; fold is the only kind.
type projection interface {
	projectionName() string
	// project brings the projection in rm up to the last of recs (events of
	// one aggregate in delivery order, decoded) and returns the version it
	// has reached, at or past which every record is applied, and the records
	// it applied: none for duplicates, more than recs when it healed a gap.
	// With an error, reached still says how far it got.
	project(ctx context.Context, p *Projector, rm ReadModel, recs []es.Record) (reached int64, done []es.Record, err error)
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
	// save writes after, the fold of before and recs (consecutive events
	// from applied+1), in one conditional write: on condition that the
	// applied version is still applied; else it fails with
	// readmodel.ErrConflict.
	save(ctx context.Context, before, after V, applied int64, recs []es.Record) error
}

func (f fold[V]) projectionName() string { return f.name }

// project reads the view once, lines up the records the view has not
// applied (skipping duplicates, reading the events missing before a record
// from the event store), folds them and writes the result once. A failure
// to heal a gap still writes the records lined up before it. A lost race
// reads again and lines up again.
func (f fold[V]) project(ctx context.Context, p *Projector, rm ReadModel, recs []es.Record) (int64, []es.Record, error) {
	var (
		reached int64
		lastErr error
		store   = f.bind(rm)
	)
	if len(recs) == 0 {
		return 0, nil, nil
	}
	id := recs[0].AggregateID
	for attempt := range maxAttempts {
		view, applied, err := store.load(ctx, id)
		if err != nil {
			return reached, nil, err
		}
		reached = applied
		run, healErr := lineUp(ctx, p, recs, applied)
		if len(run) == 0 {
			return reached, nil, healErr
		}
		next := view
		for _, r := range run {
			next = f.apply(next, r)
		}
		err = store.save(ctx, view, next, applied, run)
		if err == nil {
			return run[len(run)-1].Version, run, healErr
		}
		if !errors.Is(err, readmodel.ErrConflict) {
			return reached, nil, err
		}
		// Another delivery of this stream, or a writer of a shared email
		// lookup, got there first: read again and go on from there, after
		// a short jittered pause so that racing writers spread out.
		lastErr = err
		if attempt == maxAttempts-1 {
			break
		}
		if err := pause(ctx, attempt); err != nil {
			return reached, nil, err
		}
	}
	return reached, nil, fmt.Errorf("gave up after %d attempts: %w", maxAttempts, lastErr)
}

// lineUp returns the records a projection at applied must apply, in
// version order, to take in recs: those past what it applied, with the
// events of any gap before one of them read from the event store. A gap
// that cannot be healed ends the run there, with the error.
func lineUp(ctx context.Context, p *Projector, recs []es.Record, applied int64) ([]es.Record, error) {
	var run []es.Record
	cur := applied
	for _, r := range recs {
		switch {
		case r.Version <= cur: // a duplicate, or already applied
			continue
		case r.Version == cur+1:
			run = append(run, r)
		default:
			missing, err := p.missing(ctx, r, cur)
			if err != nil {
				return run, err
			}
			run = append(run, missing...)
		}
		cur = r.Version
	}
	return run, nil
}

// userViews keeps the user view (and its email lookup).
type userViews struct{ store ReadModel }

func (u userViews) load(ctx context.Context, id string) (user.View, int64, error) {
	return u.store.UserViewForUpdate(ctx, id)
}

func (u userViews) save(ctx context.Context, before, _ user.View, applied int64, recs []es.Record) error {
	return u.store.SaveUserViewRun(ctx, before, applied, recs)
}

// activity keeps the actor activity. It has no state: each event is one
// item of its actor's list.
type activity struct{ store ReadModel }

func noState(struct{}, es.Record) struct{} { return struct{}{} }

func (a activity) load(ctx context.Context, id string) (struct{}, int64, error) {
	v, err := a.store.ActivityApplied(ctx, id)
	return struct{}{}, v, err
}

func (a activity) save(ctx context.Context, _, _ struct{}, applied int64, recs []es.Record) error {
	return a.store.SaveActivityRun(ctx, applied, recs)
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
