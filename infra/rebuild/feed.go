package rebuild

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// FeedSource makes a rebuild read the durable feed (infra/feed) in commit
// order instead of scanning the events table in parallel segments.
//
// Which is faster, measured (docs/feed.md, make bench's feed group): the
// parallel scan, for a full rebuild of a per-aggregate fold (every
// projection of this read model): it reads whole partitions, writes each
// aggregate once, and scales with its segments; the feed reads 16 shards
// merged by time and writes each aggregate once per page it appears in.
// The feed is the one when order across aggregates matters (a projection
// or reactor that joins aggregates), to start from a time rather than the
// beginning, and for a subscription that must then keep following.
type FeedSource struct {
	Feed        feed.Reader
	Checkpoints *feed.Checkpoints
	// PageSize is the events per feed page (default 1000).
	PageSize int
}

// feedCheckpoint names the feed checkpoint of a build: one per generation,
// so that a restarted build starts from the feed's beginning again.
func feedCheckpoint(projection string, gen int64) string {
	return fmt.Sprintf("rebuild-%s-g%d", projection, gen)
}

// catchUp folds the feed, from the build's checkpoint to the feed's
// horizon, into the new generation, a page at a time: each aggregate's run
// of the page written once, from what the generation holds of it (the live
// projector may have written it first: events already applied are
// skipped; a gap before the run is read from the event store). The
// checkpoint moves after each page, so an interrupted build resumes there.
// Events past the horizon are the live projector's: it writes the building
// generation from the end of the settle, which the horizon is past.
func (s *runState) catchUp(ctx context.Context) error {
	src := s.opts.Feed
	target := s.r.rm.At(s.projection, s.b.Generation)
	if !s.opts.Until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, s.opts.Until)
		defer cancel()
	}
	var paged atomic.Int64
	sub := &feed.Subscription{
		Name: feedCheckpoint(s.projection, s.b.Generation), Feed: src.Feed, Checkpoints: src.Checkpoints, PageSize: src.PageSize,
		Handle: func(ctx context.Context, recs []es.Record) error {
			runs := byAggregate(recs)
			if err := each(ctx, runs, s.opts.Writers, func(ctx context.Context, run []es.Record) error {
				return s.applyRun(ctx, target, run)
			}); err != nil {
				return err
			}
			paged.Add(int64(len(recs)))
			s.events.Add(int64(len(recs)))
			s.runEvents.Add(int64(len(recs)))
			s.aggregates.Add(int64(len(runs)))
			s.report(s.progress(PhaseScanning))
			return nil
		},
	}
	_, err := sub.CatchUp(ctx)
	seg := readmodel.Segment{Number: 0, Done: err == nil, Events: s.b.Events() + paged.Load(), UpdatedAt: s.r.now()}
	if serr := s.r.rm.SaveSegment(context.WithoutCancel(ctx), s.projection, s.b.Generation, seg); serr != nil && err == nil {
		err = serr
	}
	s.mu.Lock()
	s.b.Segments[0] = seg
	s.mu.Unlock()
	if errors.Is(err, context.DeadlineExceeded) && !s.opts.Until.IsZero() && !s.r.now().Before(s.opts.Until) {
		return nil // out of time budget: paused, resumed at the checkpoint
	}
	return err
}

// byAggregate splits a feed page into each aggregate's run, in version
// order (the feed's order along an aggregate), aggregates in order of
// first appearance.
func byAggregate(recs []es.Record) [][]es.Record {
	at := map[string]int{}
	var runs [][]es.Record
	for _, r := range recs {
		i, ok := at[r.AggregateID]
		if !ok {
			i = len(runs)
			at[r.AggregateID] = i
			runs = append(runs, nil)
		}
		runs[i] = append(runs[i], r)
	}
	return runs
}

// applyRun brings target's rows of one aggregate up to the last of run:
// read what it applied, skip what it has, read any gap before the run from
// the event store, write the rest once, conditional on the version read
// (a race with the live projector reads again).
func (s *runState) applyRun(ctx context.Context, target *readmodel.Store, run []es.Record) error {
	if !projection.Takes(s.pr, run) {
		return nil // another kind of aggregate's events
	}
	id := run[0].AggregateID
	var lastErr error
	for range 5 {
		state, applied, err := s.pr.Read(ctx, target, id)
		if err != nil {
			return err
		}
		todo, err := s.lineUp(ctx, run, applied)
		if err != nil || len(todo) == 0 {
			return err
		}
		err = s.pr.Write(ctx, target, state, applied, todo)
		if !errors.Is(err, readmodel.ErrConflict) {
			return err
		}
		lastErr = err
	}
	return fmt.Errorf("%s: gave up after 5 attempts: %w", id, lastErr)
}

// lineUp returns the events of run past applied, preceded by any gap
// between applied and the run read from the event store, decoded for the
// projections that read them.
func (s *runState) lineUp(ctx context.Context, run []es.Record, applied int64) ([]es.Record, error) {
	i := 0
	for i < len(run) && run[i].Version <= applied {
		i++
	}
	if i == len(run) {
		return nil, nil
	}
	todo := append([]es.Record(nil), run[i:]...)
	if first := todo[0].Version; first > applied+1 {
		id := todo[0].AggregateID
		gap, err := s.r.events.Load(ctx, id, applied+1, first-1)
		if err != nil {
			return nil, fmt.Errorf("read %s v%d..v%d: %w", id, applied+1, first-1, err)
		}
		if int64(len(gap)) != first-1-applied {
			return nil, fmt.Errorf("read %s v%d..v%d: %d events", id, applied+1, first-1, len(gap))
		}
		todo = append(gap, todo...)
	}
	if s.pr.Decodes() {
		if err := s.r.registry.DecodeAll(todo); err != nil {
			return nil, err
		}
	}
	return todo, nil
}
