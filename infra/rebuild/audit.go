package rebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Kinds of Difference.
const (
	DiffMissing  = "missing"  // the projection has no row for the aggregate
	DiffBehind   = "behind"   // the row is at an older version than the event store
	DiffAhead    = "ahead"    // the row is at a version the event store does not have
	DiffFields   = "fields"   // same version, other content
	DiffLookup   = "lookup"   // the email lookup does not name the user holding the address
	DiffActivity = "activity" // the actor-activity projection is not at the stream's version
	DiffIndex    = "index"    // the view's user-list index keys do not match the view
)

// Difference is one way a projection's row differs from the fold of the
// aggregate's events.
type Difference struct {
	AggregateID  string      `json:"aggregateId"`
	Kind         string      `json:"kind"`
	StoreVersion int64       `json:"eventStoreVersion"`
	ViewVersion  int64       `json:"viewVersion"`
	Fields       []FieldDiff `json:"fields,omitempty"`
	Detail       string      `json:"detail,omitempty"`
}

// FieldDiff is one field of a view that differs: what the fold says
// (Want) and what the row holds (Got), as JSON.
type FieldDiff struct {
	Field string          `json:"field"`
	Want  json.RawMessage `json:"want"`
	Got   json.RawMessage `json:"got"`
}

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
	Generation  int64        `json:"generation"` // the user view's active generation
}

// Audit compares every aggregate's user view (active generation, with its
// user-list index keys), email lookup and actor-activity version with the fold of its events, by a
// parallel scan of the events table, and lists the differences.
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
	gens, err := r.rm.Generations(ctx)
	if err != nil {
		return Report{}, err
	}
	// Pin the active generations, so that a switch during the audit does
	// not mix two of them.
	st := r.rm
	var rep Report
	for _, g := range gens {
		st = st.At(g.Projection, g.Active)
		if g.Projection == readmodel.ProjectionUserView {
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
		d, err := compare(ctx, st, recs)
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
		if err := sleep(ctx, opts.Recheck); err != nil {
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
			d, err := compare(ctx, st, recs)
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

// compare checks one aggregate's rows against the fold of recs.
func compare(ctx context.Context, st *readmodel.Store, recs []es.Record) ([]Difference, error) {
	want := readmodel.FoldUser(recs).View
	id, version := recs[0].AggregateID, recs[len(recs)-1].Version
	var diffs []Difference
	got, applied, err := st.UserViewForUpdate(ctx, id)
	if err != nil {
		return nil, err
	}
	base := Difference{AggregateID: id, StoreVersion: version, ViewVersion: got.Version}
	switch {
	case applied == 0 && got.Version == 0:
		d := base
		d.Kind, d.Detail = DiffMissing, "no view"
		diffs = append(diffs, d)
	case got.Version < version:
		d := base
		d.Kind, d.Detail = DiffBehind, fmt.Sprintf("view at v%d, event store at v%d", got.Version, version)
		diffs = append(diffs, d)
	case got.Version > version:
		d := base
		d.Kind, d.Detail = DiffAhead, fmt.Sprintf("view at v%d, event store at v%d", got.Version, version)
		diffs = append(diffs, d)
	case !reflect.DeepEqual(normalize(got), normalize(want)):
		d := base
		d.Kind, d.Fields = DiffFields, fieldDiffs(want, got)
		diffs = append(diffs, d)
	}
	if got.Version > 0 {
		// A view written before the list index existed, or by a writer
		// that forgot its keys, is missing from GET /users.
		detail, err := st.IndexMismatch(ctx, id)
		if err != nil {
			return nil, err
		}
		if detail != "" {
			d := base
			d.Kind, d.Detail = DiffIndex, detail
			diffs = append(diffs, d)
		}
	}
	if applied != got.Version && !(applied == 0 && got.Version == 0) {
		d := base
		d.Kind, d.Detail = DiffFields, fmt.Sprintf("applied version %d, view version %d", applied, got.Version)
		diffs = append(diffs, d)
	}
	if want.Status != user.StatusDeleted && want.Email != "" {
		holder, ok, err := st.UserIDByEmail(ctx, want.Email)
		if err != nil {
			return nil, err
		}
		if !ok || holder != id {
			d := base
			d.Kind = DiffLookup
			d.Detail = fmt.Sprintf("email %s looks up %q", want.Email, holder)
			if !ok {
				d.Detail = fmt.Sprintf("email %s has no lookup", want.Email)
			}
			diffs = append(diffs, d)
		}
	}
	act, err := st.ActivityApplied(ctx, id)
	if err != nil {
		return nil, err
	}
	if act != version {
		d := base
		d.Kind, d.ViewVersion = DiffActivity, act
		d.Detail = fmt.Sprintf("actor activity at v%d, event store at v%d", act, version)
		diffs = append(diffs, d)
	}
	return diffs, nil
}

// normalize makes times comparable: a view read back from JSON has UTC
// times without monotonic readings.
func normalize(v user.View) user.View {
	v.CreatedAt, v.UpdatedAt, v.DeletedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC(), v.DeletedAt.UTC()
	return v
}

// fieldDiffs lists the JSON fields of two views that differ.
func fieldDiffs(want, got user.View) []FieldDiff {
	w, g := fields(want), fields(got)
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var out []FieldDiff
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if string(w[k]) != string(g[k]) {
			out = append(out, FieldDiff{Field: k, Want: orNull(w[k]), Got: orNull(g[k])})
		}
	}
	return out
}

func fields(v any) map[string]json.RawMessage {
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m
}

func orNull(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}
