// Package rebuild rebuilds a projection of the read model from the event
// store alone (the backfill, or replay, of the talk), repairs one
// aggregate's rows in place, and audits the read model against the event
// store.
//
// A rebuild is blue/green (see readmodel's generations): it allocates the
// next generation of the projection, waits until every live projector
// writes that generation too (the readers' cache TTL), scans the events
// table in parallel segments, folds each aggregate's stream and writes it
// into the new generation, and then makes the new generation the active
// one. Readers keep using the old generation until that switch, so they
// never see a half-built view.
//
// Catch-up: an event appended while the scan runs is either seen by the scan
// (it was there when the scan read its partition) or applied to the new
// generation by the live projector, which writes both generations from the
// moment the scan starts. Writes on either side are conditional on the
// version applied and only move forward, so the two never undo each other.
//
// Each segment checkpoints its last key after every page: a rebuild that is
// interrupted (Ctrl-C, a crash, a Lambda's time budget) resumes where it
// stopped, re-reading at most one page. An aggregate whose stream a page
// cut is written as far as the page went and completed on the next page, or
// after a resume from the event store.
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Client is the part of *dynamodb.Client a rebuild reads the events table with.
type Client interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// EventLoader reads one stream: *dynamo.Store is one.
type EventLoader interface {
	Load(ctx context.Context, aggregateID string, from, to int64) ([]es.Record, error)
}

// Rebuilder rebuilds, repairs and audits the projections of a read model.
type Rebuilder struct {
	client   Client
	table    string // the events table
	events   EventLoader
	rm       *readmodel.Store
	registry *es.Registry
	// projections are those the rebuilder runs, in their order.
	projections []projection.Projection
	log         *slog.Logger
	now         func() time.Time
	open        func(ctx context.Context, recs []es.Record) error // OpenWith
}

// New returns a rebuilder of projections reading the events table through
// client and events, decoding with registry, and writing rm.
func New(client Client, eventsTable string, events EventLoader, rm *readmodel.Store, registry *es.Registry, projections []projection.Projection, logger *slog.Logger) *Rebuilder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Rebuilder{client: client, table: eventsTable, events: events, rm: rm, registry: registry,
		projections: slices.Clone(projections), log: logger, now: time.Now}
}

// Defaults of Options.
const (
	DefaultSegments = 4
	DefaultPageSize = 1000
	DefaultWriters  = 8
	// DefaultSettle is how long a new build waits before it scans: the
	// projectors' generation cache TTL, and a margin for a message being
	// handled when the generation was allocated.
	DefaultSettle = readmodel.DefaultGenerationTTL + 5*time.Second
	MaxSegments   = 64
)

// Options tune Run. Zero values take the defaults.
type Options struct {
	// Segments is the number of parallel scan segments of a new build (a
	// build in progress keeps its own).
	Segments int
	PageSize int32 // items per Scan page
	Writers  int   // aggregates written at once per segment
	// Settle is how long a new build waits after allocating its generation
	// before it scans; negative for none (only when no projector runs).
	Settle time.Duration
	// Until, when set, makes Run stop at the first page boundary past it
	// (a Lambda's time budget); the build resumes on the next Run.
	Until time.Time
	// Restart abandons the generation being built, if any, and starts anew.
	Restart bool
	// Resume, when set, makes Run only go on with that generation: when it
	// is no longer building (done, or abandoned), Run does nothing. A
	// continuation delivered twice then starts no second rebuild.
	Resume int64
	// Progress, when set, is called after every page (from several
	// goroutines, one at a time) and at each change of phase.
	Progress func(Progress)
	// Feed, when set, makes a new build read the feed in commit order
	// instead of scanning the table (see FeedSource). Resume a build with
	// the source it started with.
	Feed *FeedSource
}

func (o Options) withDefaults() Options {
	if o.Segments <= 0 {
		o.Segments = DefaultSegments
	}
	o.Segments = min(o.Segments, MaxSegments)
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
	}
	switch {
	case o.Settle == 0:
		o.Settle = DefaultSettle
	case o.Settle < 0:
		o.Settle = 0
	}
	return o
}

// Phases of a rebuild.
const (
	PhaseSettling  = "settling"  // waiting until every projector writes the new generation
	PhaseScanning  = "scanning"  // folding the events table into the new generation
	PhaseSwitching = "switching" // making it the active generation
	PhaseDone      = "done"
	PhasePaused    = "paused"    // out of time budget; the next run resumes
	PhaseAbandoned = "abandoned" // Options.Resume named a generation no longer building
)

// Progress is how far a rebuild has got.
type Progress struct {
	Projection string
	Generation int64
	Phase      string
	Segments   int
	Events     int64         // folded by the build so far, earlier runs included
	Aggregates int64         // written by the build so far (a stream cut by a page counts twice)
	Total      int64         // the events table's item count at the start; 0: unknown
	RunEvents  int64         // folded by this run
	Elapsed    time.Duration // of this run
	Wait       time.Duration // left to settle
}

// Result is the outcome of Run.
type Result struct {
	Progress
	Previous int64 // the generation readers used before the switch
	Done     bool  // the new generation is active
}

// Projections are the names of the projections Run can rebuild, in their
// order.
func (r *Rebuilder) Projections() []string { return projection.Names(r.projections) }

// known returns the projection named name.
func (r *Rebuilder) known(name string) (projection.Projection, error) {
	if p, ok := projection.Find(r.projections, name); ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown projection %q: want one of %v", name, r.Projections())
}

// Run rebuilds projection into a new generation, or resumes the one being
// built, until it is done (and active) or opts.Until passes (Done false).
// Cancelling ctx stops it too, with ctx's error; every page it finished is
// kept.
func (r *Rebuilder) Run(ctx context.Context, projection string, opts Options) (Result, error) {
	pr, err := r.known(projection)
	if err != nil {
		return Result{}, err
	}
	opts = opts.withDefaults()
	start := r.now()
	if opts.Resume > 0 {
		g, err := r.rm.Generation(ctx, projection)
		if err != nil {
			return Result{}, err
		}
		if g.Building != opts.Resume {
			res := Result{Previous: g.Active, Done: g.Active == opts.Resume}
			res.Projection, res.Generation, res.Phase = projection, opts.Resume, PhaseDone
			if !res.Done {
				res.Phase = PhaseAbandoned
			}
			return res, nil
		}
	}
	if opts.Restart {
		g, err := r.rm.Generation(ctx, projection)
		if err != nil {
			return Result{}, err
		}
		if g.Building > 0 {
			if err := r.rm.AbandonBuild(ctx, projection, g.Building); err != nil && !errors.Is(err, readmodel.ErrNoBuild) {
				return Result{}, err
			}
			r.log.InfoContext(ctx, "rebuild abandoned", "projection", projection, "generation", g.Building)
		}
	}
	g, err := r.rm.BeginBuild(ctx, projection, start)
	if err != nil {
		return Result{}, err
	}
	b, ok, err := r.rm.Build(ctx, projection, g.Building)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		startedAt := g.StartedAt
		if startedAt.IsZero() {
			startedAt = start
		}
		segments := opts.Segments
		if opts.Feed != nil {
			segments = 1 // the feed's checkpoint; the segment holds the progress
		}
		b, err = r.rm.CreateBuild(ctx, readmodel.Build{
			Projection: projection, Generation: g.Building, Segments: make([]readmodel.Segment, segments),
			StartedAt: startedAt, ScanAfter: startedAt.Add(opts.Settle), Total: r.total(ctx),
		})
		if err != nil {
			return Result{}, err
		}
		r.log.InfoContext(ctx, "rebuild started", "projection", projection, "generation", b.Generation,
			"segments", len(b.Segments), "total_estimate", b.Total)
	} else {
		r.log.InfoContext(ctx, "rebuild resumed", "projection", projection, "generation", b.Generation,
			"segments", len(b.Segments), "events", b.Events())
	}

	run := &runState{r: r, b: b, opts: opts, start: start, projection: projection, pr: pr}
	run.events.Store(b.Events())
	run.aggregates.Store(b.Aggregates())
	res := Result{Previous: g.Active}

	if wait := b.ScanAfter.Sub(r.now()); wait > 0 {
		if !opts.Until.IsZero() && r.now().Add(wait).After(opts.Until) {
			res.Progress = run.progress(PhasePaused)
			return res, nil
		}
		p := run.progress(PhaseSettling)
		p.Wait = wait
		run.report(p)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return Result{Progress: run.progress(PhasePaused)}, err
		}
	}

	run.report(run.progress(PhaseScanning))
	scan := run.scan
	if opts.Feed != nil {
		scan = run.catchUp
	}
	if err := scan(ctx); err != nil {
		res.Progress = run.progress(PhasePaused)
		return res, err
	}
	for _, seg := range run.b.Segments {
		if !seg.Done {
			res.Progress = run.progress(PhasePaused)
			return res, nil
		}
	}

	run.report(run.progress(PhaseSwitching))
	if err := r.rm.ActivateBuild(ctx, projection, b.Generation, r.now()); err != nil {
		// Another run may have switched it already.
		cur, gerr := r.rm.Generation(ctx, projection)
		if gerr != nil || cur.Active != b.Generation {
			return Result{Progress: run.progress(PhasePaused)}, err
		}
	}
	if err := r.rm.FinishBuild(ctx, projection, b.Generation, r.now()); err != nil {
		r.log.WarnContext(ctx, "rebuild: record the finish", "err", err)
	}
	res.Progress, res.Done = run.progress(PhaseDone), true
	run.report(res.Progress)
	r.log.InfoContext(ctx, "rebuild switched", "projection", projection, "generation", b.Generation,
		"previous", g.Active, "events", res.Events, "duration_ms", res.Elapsed.Milliseconds())
	return res, nil
}

// total is the events table's item count, 0 when unknown. DynamoDB updates
// it about every six hours: an estimate for the progress bar.
func (r *Rebuilder) total(ctx context.Context) int64 {
	out, err := r.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.table)})
	if err != nil || out.Table == nil {
		return 0
	}
	return aws.ToInt64(out.Table.ItemCount)
}

// runState is one Run of a build.
type runState struct {
	r          *Rebuilder
	b          readmodel.Build
	opts       Options
	start      time.Time
	projection string
	pr         projection.Projection // the projection named projection

	events, aggregates, runEvents atomic.Int64
	mu                            sync.Mutex // serializes Progress calls and b.Segments writes
}

func (s *runState) progress(phase string) Progress {
	return Progress{
		Projection: s.projection, Generation: s.b.Generation, Phase: phase, Segments: len(s.b.Segments),
		Events: s.events.Load(), Aggregates: s.aggregates.Load(), Total: s.b.Total,
		RunEvents: s.runEvents.Load(), Elapsed: s.r.now().Sub(s.start),
	}
}

func (s *runState) report(p Progress) {
	if s.opts.Progress == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Progress(p)
}

// scan runs every unfinished segment at once.
func (s *runState) scan(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target := s.r.rm.At(s.projection, s.b.Generation)
	errs := make([]error, len(s.b.Segments))
	var wg sync.WaitGroup
	for i, seg := range s.b.Segments {
		if seg.Done {
			continue
		}
		wg.Go(func() {
			if err := s.segment(ctx, target, seg); err != nil {
				errs[i] = err
				cancel()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// segment folds one segment page by page, checkpointing after each.
func (s *runState) segment(ctx context.Context, target *readmodel.Store, seg readmodel.Segment) error {
	sc := &segmentScan{
		r: s.r, segment: seg.Number, segments: len(s.b.Segments), pageSize: s.opts.PageSize,
		decode: s.pr.Decodes(), startKey: seg.LastKey,
	}
	write := s.writer(target)
	for !sc.done {
		p, err := sc.next(ctx)
		if err != nil {
			return err
		}
		if err := each(ctx, p.streams, s.opts.Writers, write); err != nil {
			return fmt.Errorf("segment %d: %w", seg.Number, err)
		}
		seg.LastKey, seg.Done = p.lastKey, sc.done
		seg.Events += int64(p.events)
		seg.Aggregates += int64(p.fresh)
		seg.UpdatedAt = s.r.now()
		if err := s.r.rm.SaveSegment(ctx, s.projection, s.b.Generation, seg); err != nil {
			return err
		}
		s.events.Add(int64(p.events))
		s.runEvents.Add(int64(p.events))
		s.aggregates.Add(int64(p.fresh))
		s.mu.Lock()
		s.b.Segments[seg.Number] = seg
		s.mu.Unlock()
		s.report(s.progress(PhaseScanning))
		// At least one page per run, so that a run always progresses.
		if !s.opts.Until.IsZero() && s.r.now().After(s.opts.Until) {
			return nil
		}
	}
	return nil
}

// writer writes one whole stream into target.
func (s *runState) writer(target *readmodel.Store) func(context.Context, []es.Record) error {
	return func(ctx context.Context, recs []es.Record) error {
		if !projection.Takes(s.pr, recs) {
			return nil // another kind of aggregate's stream
		}
		return s.pr.Put(ctx, target, recs, false)
	}
}

// Status is what is known of a projection's generations and of the build
// in progress (or the last one).
type Status struct {
	readmodel.Generation
	Build    readmodel.Build
	HasBuild bool
}

// Status returns the generations of projection and the progress of its
// build in progress, or else of the one that made the active generation.
func (r *Rebuilder) Status(ctx context.Context, projection string) (Status, error) {
	if _, err := r.known(projection); err != nil {
		return Status{}, err
	}
	g, err := r.rm.Generation(ctx, projection)
	if err != nil {
		return Status{}, err
	}
	st := Status{Generation: g}
	gen := g.Building
	if gen == 0 {
		gen = g.Active
	}
	st.Build, st.HasBuild, err = r.rm.Build(ctx, projection, gen)
	return st, err
}

// Abort abandons the build in progress of projection: the live projector
// stops writing its generation, readers never used it, and the next Run
// starts a new one. It returns the generation abandoned.
func (r *Rebuilder) Abort(ctx context.Context, projection string) (int64, error) {
	if _, err := r.known(projection); err != nil {
		return 0, err
	}
	g, err := r.rm.Generation(ctx, projection)
	if err != nil {
		return 0, err
	}
	if g.Building == 0 {
		return 0, fmt.Errorf("%s: %w", projection, readmodel.ErrNoBuild)
	}
	return g.Building, r.rm.AbandonBuild(ctx, projection, g.Building)
}

// ErrNoEvents: the aggregate has no events.
var ErrNoEvents = errors.New("aggregate has no events")

// Repair is the outcome of Aggregate.
type Repair struct {
	AggregateID string
	Version     int64   // the event store's
	Generations []int64 // the generations written
	// NotTaken: the projection does not take this aggregate's stream (it
	// is of another kind: projection.Takes), so it has no rows to repair.
	NotTaken bool `json:",omitempty"`
}

// Aggregate rebuilds one aggregate's rows of projection in place, in the
// active generation and in the one building if any, from its stream: what
// fixes one view found wrong without rebuilding them all. A row that the
// live projector moved past the stream read is left alone.
func (r *Rebuilder) Aggregate(ctx context.Context, name, id string) (Repair, error) {
	pr, err := r.known(name)
	if err != nil {
		return Repair{}, err
	}
	recs, err := r.events.Load(ctx, id, 1, 0)
	if err != nil {
		return Repair{}, err
	}
	if len(recs) == 0 {
		return Repair{}, fmt.Errorf("%s: %w", id, ErrNoEvents)
	}
	rep := Repair{AggregateID: id, Version: recs[len(recs)-1].Version}
	if !projection.Takes(pr, recs) {
		rep.NotTaken = true
		return rep, nil
	}
	if err := r.decodeAll(ctx, recs); err != nil {
		return Repair{}, err
	}
	g, err := r.rm.Generation(ctx, name)
	if err != nil {
		return Repair{}, err
	}
	for _, gen := range []int64{g.Active, g.Building} {
		if gen == 0 {
			continue
		}
		if err := pr.Put(ctx, r.rm.At(name, gen), recs, true); err != nil {
			return rep, err
		}
		rep.Generations = append(rep.Generations, gen)
	}
	return rep, nil
}
