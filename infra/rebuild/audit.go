package rebuild

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Kinds of Difference every projection may report; each projection adds
// its own (package userviews: lookup, activity, index).
const (
	DiffMissing = projection.DiffMissing // the projection has no row for the aggregate
	DiffBehind  = projection.DiffBehind  // the row is at an older version than the event store
	DiffAhead   = projection.DiffAhead   // the row is at a version the event store does not have
	DiffFields  = projection.DiffFields  // same version, other content
)

// Difference is one way a projection's row differs from the fold of the
// aggregate's events.
type Difference = projection.Difference

// FieldDiff is one field of a view that differs.
type FieldDiff = projection.FieldDiff

// AuditOptions tune Audit.
type AuditOptions struct {
	Segments int   // parallel scan segments (default 4)
	PageSize int32 // items per Scan page
	Workers  int   // aggregates compared at once per segment
	// Recheck, when positive, is how long to wait before comparing each
	// difference again: a view only lagging behind the live projector is
	// not a difference once it has caught up.
	Recheck  time.Duration
	Progress func(events, aggregates int64)
}

// Report is the outcome of Audit.
type Report struct {
	Aggregates  int64        `json:"aggregates"`
	Events      int64        `json:"events"`
	Differences []Difference `json:"differences"`
	Generation  int64        `json:"generation"` // the first projection's active generation (the user view's)
}

// Audit compares every aggregate's rows of every projection (their active
// generations) with the fold of its events (projection.Projection.Audit),
// by a parallel scan of the events table, and lists the differences.
func (r *Rebuilder) Audit(ctx context.Context, opts AuditOptions) (Report, error) {
	if opts.Segments <= 0 {
		opts.Segments = DefaultSegments
	}
	opts.Segments = min(opts.Segments, MaxSegments)
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWriters
	}
	// Pin the active generations of the projections audited, so that a
	// switch during the audit does not mix two of them.
	st := r.rm
	var rep Report
	for i, pr := range r.projections {
		g, err := r.rm.Generation(ctx, pr.Name())
		if err != nil {
			return Report{}, err
		}
		st = st.At(g.Projection, g.Active)
		if i == 0 {
			rep.Generation = g.Active
		}
	}

	var (
		mu     sync.Mutex
		events atomic.Int64
		aggs   atomic.Int64
		diffs  []Difference
	)
	check := func(ctx context.Context, recs []es.Record) error {
		d, err := r.compare(ctx, st, recs)
		if err != nil {
			return err
		}
		if len(d) > 0 {
			mu.Lock()
			diffs = append(diffs, d...)
			mu.Unlock()
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, opts.Segments)
	var wg sync.WaitGroup
	for i := range opts.Segments {
		wg.Go(func() {
			sc := &segmentScan{r: r, segment: i, segments: opts.Segments, pageSize: opts.PageSize, decode: true, holdLast: true}
			for !sc.done {
				p, err := sc.next(ctx)
				if err != nil {
					errs[i] = err
					cancel()
					return
				}
				streams := p.streams
				if err := each(ctx, streams, opts.Workers, check); err != nil {
					errs[i] = err
					cancel()
					return
				}
				e, a := events.Add(int64(p.events)), aggs.Add(int64(len(streams)))
				if opts.Progress != nil {
					mu.Lock()
					opts.Progress(e, a)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Report{}, err
		}
	}
	rep.Events, rep.Aggregates = events.Load(), aggs.Load()

	if opts.Recheck > 0 && len(diffs) > 0 {
		if err := backoff.Sleep(ctx, opts.Recheck); err != nil {
			return Report{}, err
		}
		ids := map[string]bool{}
		for _, d := range diffs {
			ids[d.AggregateID] = true
		}
		diffs = nil
		for _, id := range slices.Sorted(maps.Keys(ids)) {
			recs, err := r.events.Load(ctx, id, 1, 0)
			if err != nil {
				return Report{}, err
			}
			if err := r.decodeAll(ctx, recs); err != nil {
				return Report{}, err
			}
			d, err := r.compare(ctx, st, recs)
			if err != nil {
				return Report{}, err
			}
			diffs = append(diffs, d...)
		}
	}
	sort.Slice(diffs, func(i, j int) bool {
		if diffs[i].AggregateID != diffs[j].AggregateID {
			return diffs[i].AggregateID < diffs[j].AggregateID
		}
		return diffs[i].Kind < diffs[j].Kind
	})
	rep.Differences = diffs
	return rep, nil
}

// compare checks one aggregate's rows of every projection that takes its
// stream against the fold of recs, the projections in their order.
func (r *Rebuilder) compare(ctx context.Context, st *readmodel.Store, recs []es.Record) ([]Difference, error) {
	var diffs []Difference
	for _, pr := range r.projections {
		if !projection.Takes(pr, recs) {
			continue // another kind of aggregate: no rows of pr to compare
		}
		d, err := pr.Audit(ctx, st, recs)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, d...)
	}
	return diffs, nil
}
