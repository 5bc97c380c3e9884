package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// project brings pr's rows in rm up to the last of recs (events of one
// aggregate in delivery order, decoded) and returns the version it has
// reached, at or past which every record is applied, and the records it
// applied: none for duplicates, more than recs when it healed a gap. With
// an error, reached still says how far it got.
//
// It reads the projection's state once, lines up the records it has not
// applied (skipping duplicates, reading the events missing before a record
// from the event store) and has the projection fold them and write the
// result once. A failure to heal a gap still writes the records lined up
// before it. A lost race reads again and lines up again.
func (p *Projector) project(ctx context.Context, pr projection.Projection, rm *readmodel.Store, recs []es.Record) (int64, []es.Record, error) {
	var (
		reached int64
		lastErr error
	)
	if len(recs) == 0 {
		return 0, nil, nil
	}
	id := recs[0].AggregateID
	for attempt := range maxAttempts {
		state, applied, err := pr.Read(ctx, rm, id)
		if err != nil {
			return reached, nil, err
		}
		reached = applied
		run, healErr := lineUp(ctx, p, recs, applied)
		if len(run) == 0 {
			return reached, nil, healErr
		}
		err = pr.Write(ctx, rm, state, applied, run)
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
		if err := backoff.Sleep(ctx, racePause.Delay(attempt+1, 0)); err != nil {
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

// racePause is the wait before a projection reads again after losing a
// race: full jitter under a ceiling that doubles from 5 ms (maxAttempts
// bounds it: no cap).
var racePause = backoff.Policy{Base: 5 * time.Millisecond, Mode: backoff.FullJitter}
