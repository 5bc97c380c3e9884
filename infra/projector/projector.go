// Package projector keeps the read models up to date: it is the SQS handler
// that applies each event delivered by the relay to every projection.
//
// The projections are the service's (projection.Projection, given to New;
// the User service's are in infra/userviews): each keeps a fold of one
// aggregate's events with the version applied, and the projector runs them
// all the same way, by name only in its logs, checkpoints and metrics.
//
// Delivery is at least once and, across retries, out of order, so each
// event is checked against the applied version: at or below it, it is a
// duplicate and skipped; past the next one, the missing events are read
// from the event store and applied first (the gap heals itself). Every
// write is conditional on the applied version; losing that race means
// reading again and deciding again.
//
// The messages of one message group (one aggregate) in a batch are
// coalesced: each projection reads the aggregate once, folds all of the
// group's new events (and those that heal a gap) and writes once, on
// condition that it is still at the version it read. Failures stay per
// message: a group fails from its first message not applied.
//
// While a rebuild fills a new generation of the read model (package
// rebuild), the projector writes the active generation and the new one, so
// that the new generation follows the events that arrive during the
// rebuild; a failure in either fails the message.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// EventLoader reads a stream from the event store: the records with
// from <= version <= to, in version order.
type EventLoader interface {
	Load(ctx context.Context, aggregateID string, from, to int64) ([]es.Record, error)
}

// ReadModel is the part of the read-model store the projector writes
// through: *readmodel.Store is one. The projector writes every store
// WriteTargets names, the active generation first and, while a rebuild
// fills one, the generation it builds; the projections write the rows.
type ReadModel interface {
	WriteTargets(ctx context.Context, projection string) ([]*readmodel.Store, error)
	AdvanceCheckpoint(ctx context.Context, c readmodel.Checkpoint) error
}

var _ ReadModel = (*readmodel.Store)(nil)

// maxAttempts bounds the read-decide-write rounds of one projection for one
// message when conditional writes keep losing races.
const maxAttempts = 5

// FailureLog records why a message failed, under its id, for the
// dead-letter tools: *deadletter.Store is one.
type FailureLog = deadletter.Recorder

var _ FailureLog = (*deadletter.Store)(nil)

// Projector is the handler of the projections queue. It is safe for
// concurrent use.
type Projector struct {
	events      EventLoader
	registry    *es.Registry
	store       ReadModel
	log         *slog.Logger
	now         func() time.Time
	projections []projection.Projection

	metrics    *metrics.Recorder // nil: none
	failures   FailureLog        // nil: none
	maxReceive int               // the queue's maxReceiveCount; 0: unknown
	backoff    *relay.Backoff    // nil: failed messages wait the visibility timeout
	parallel   int               // message groups of a batch handled at once
	// open opens the personal fields of the records the messages carry
	// (sealed, as the events table holds them); nil: none are sealed.
	open func(ctx context.Context, recs []es.Record) error
}

// DefaultGroupConcurrency is how many message groups (aggregates) of a
// batch the projector handles at once by default: all ten of a full FIFO
// batch. Each group costs a few sequential DynamoDB round trips; handling
// them one after the other makes a batch of ten distinct users wait ten
// times that, which on DynamoDB (a few ms per call) caps one projector
// instance at a few hundred events per second however many partitions the
// table has.
const DefaultGroupConcurrency = 10

// StartBudget is the least time left to an invocation for the projector to
// start a message: with less, the message and the rest of the batch are
// failed untouched (and come back after a short backoff) rather than cut
// off mid-write by the deadline, which fails them all the same and wastes
// the writes done.
const StartBudget = 1500 * time.Millisecond

// Reserve is the part of an invocation the messages never use: a message
// still running Reserve before the deadline is cut off there and failed
// (its writes are conditional and idempotent, so the retry completes
// it), leaving time to back off the failed messages and answer. A handler
// that runs into the deadline answers nothing: Lambda then fails the
// whole batch, which waits out the queue's visibility timeout.
const Reserve = time.Second

// Option tunes a Projector.
type Option func(*Projector)

// WithMetrics makes the projector write EMF metrics to m after each batch:
// Messages, BatchFailures, DLQSends and ProjectionLag. Default: none.
func WithMetrics(m *metrics.Recorder) Option { return func(p *Projector) { p.metrics = m } }

// WithFailureLog makes the projector record each failed delivery in f, so
// that the dead-letter tools can say why a message failed. Default: only
// the log line.
func WithFailureLog(f FailureLog) Option { return func(p *Projector) { p.failures = f } }

// WithMaxReceiveCount tells the projector its queue's maxReceiveCount, so
// that it can tell a failure SQS will dead-letter (DLQSends, and a log line
// at error level). Default 0: unknown.
func WithMaxReceiveCount(n int) Option { return func(p *Projector) { p.maxReceive = n } }

// WithBackoff makes the projector shorten the visibility of the messages it
// reports failed (relay.Backoff), so that they come back within seconds.
// Default: none.
func WithBackoff(b *relay.Backoff) Option { return func(p *Projector) { p.backoff = b } }

// WithGroupConcurrency sets how many message groups of a batch are handled
// at once (at least 1). Groups are distinct aggregates, so their writes
// never touch the same items; within a group, messages stay in order.
// Default DefaultGroupConcurrency.
func WithGroupConcurrency(n int) Option { return func(p *Projector) { p.parallel = max(n, 1) } }

// WithOpener makes the projector open the personal fields of each message's
// event with open (pii.Cipher.Open) before it decodes it: the messages
// carry them sealed. A forgotten user's fields open as null.
func WithOpener(open func(ctx context.Context, recs []es.Record) error) Option {
	return func(p *Projector) { p.open = open }
}

// New returns a projector running projections, in their order, into
// store, healing gaps from events and decoding with registry. A message is
// applied once every projection has applied it.
func New(events EventLoader, registry *es.Registry, store ReadModel, projections []projection.Projection, logger *slog.Logger, now func() time.Time, opts ...Option) *Projector {
	p := &Projector{events: events, registry: registry, store: store, log: logger, now: now,
		parallel: DefaultGroupConcurrency, projections: slices.Clone(projections)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Handle applies the messages' events to every projection, the messages
// of one message group (one aggregate) together: each projection reads the
// aggregate's view once, folds the group's events into it and writes it
// once, on condition that it is still at the version it read (coalescing).
//
// A message that fails is reported in BatchItemFailures, and so is every
// later message of the same group, so that the queue redelivers them in
// order; the others are acknowledged, and a message is never reported once
// every projection has applied it. A message that cannot be decoded (a
// poison) fails there: the group's messages before it are applied. When a
// coalesced write fails, the group fails from its first message not yet
// applied. Per-message failures are never the handler's error. With less
// than StartBudget left to the invocation, the remaining groups are failed
// without being started, and a group still running Reserve before the
// deadline is cut off and failed. Failed messages come back after a short
// backoff when WithBackoff is set.
func (p *Projector) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := p.now()
	var (
		resp    events.SQSEventResponse
		failed  = map[int]bool{} // indexes in ev.Records
		applied = map[string]*readmodel.Checkpoint{}
		errs    []string
		skipped int
	)
	lags := map[string][]time.Duration{}
	dlq := 0
	// work is the messages' context: it ends Reserve before the
	// invocation; tail, the backoff's and the checkpoints', ends a little
	// before it, so that the handler always answers.
	work, tail := ctx, ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancelWork, cancelTail context.CancelFunc
		work, cancelWork = context.WithDeadline(ctx, deadline.Add(-Reserve))
		defer cancelWork()
		tail, cancelTail = context.WithDeadline(ctx, deadline.Add(-Reserve/5))
		defer cancelTail()
	}
	gs := groups(ev.Records)
	outcomes := p.handleGroups(ctx, work, ev.Records, gs, applied, lags)
	for k, g := range gs {
		from, err := outcomes[k].from, outcomes[k].err
		if err == nil {
			continue
		}
		first := ev.Records[g[from]]
		errs = append(errs, fmt.Sprintf("%s: %v", first.MessageId, err))
		for k, i := range g[from:] {
			failed[i] = true
			msg := ev.Records[i]
			why := err
			if k > 0 {
				skipped++
				why = fmt.Errorf("not applied: message %s of the same group failed before it", first.MessageId)
			}
			if p.failed(ctx, msg, why) {
				dlq++
			}
		}
	}
	for i, msg := range ev.Records { // in the batch's order
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	// Backoff first: it is what brings the failed messages back soon; the
	// checkpoints below are only the ops view.
	p.backoff.Apply(tail, ev, resp)
	now := p.now()
	for _, name := range p.names() {
		c := applied[name]
		if c == nil {
			continue
		}
		c.ProcessedAt = now
		// The read model is already written; a checkpoint that fails to
		// move is only an older ops view, so it fails no message.
		if err := p.store.AdvanceCheckpoint(tail, *c); err != nil {
			errs = append(errs, err.Error())
		}
	}
	level := slog.LevelInfo
	if len(resp.BatchItemFailures) > 0 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Int("messages", len(ev.Records)),
		slog.Int("failures", len(resp.BatchItemFailures)),
		slog.Int("skipped_after_failure", skipped),
		slog.Any("applied", appliedCounts(applied)),
		slog.Int64("duration_ms", now.Sub(start).Milliseconds()),
	}
	if len(errs) > 0 {
		attrs = append(attrs, slog.Any("errors", errs))
	}
	p.log.LogAttrs(ctx, level, "projector batch", attrs...)
	p.metrics.Batch(ctx, metrics.Batch{Messages: len(ev.Records), Failures: len(resp.BatchItemFailures),
		DLQSends: dlq, Duration: now.Sub(start)})
	p.metrics.ProjectionLag(ctx, lags)
	return resp, nil
}

// outcome is how one message group of a batch went: nil, or the first
// message not applied (an index in the group) and why.
type outcome struct {
	from int
	err  error
}

// handleGroups runs handleGroup on each group of gs, up to p.parallel at
// once, and returns their outcomes in the order of gs. A group is started
// only with StartBudget left to the invocation (ctx); work is the groups'
// context. What the groups apply is added to applied and lags.
func (p *Projector) handleGroups(ctx, work context.Context, msgs []events.SQSMessage, gs [][]int, applied map[string]*readmodel.Checkpoint, lags map[string][]time.Duration) []outcome {
	outcomes := make([]outcome, len(gs))
	var (
		mu    sync.Mutex // guards applied and lags
		wg    sync.WaitGroup
		slots = make(chan struct{}, p.parallel)
	)
	for k, g := range gs {
		slots <- struct{}{}
		if left, ok := timeLeft(ctx); ok && left < StartBudget {
			<-slots
			outcomes[k].err = fmt.Errorf("not attempted: %s left to the invocation", left.Round(time.Millisecond))
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			gApplied := map[string]*readmodel.Checkpoint{}
			gLags := map[string][]time.Duration{}
			gctx, span := tracing.StartMessages(work, "project", msgs, g)
			outcomes[k].from, outcomes[k].err = p.handleGroup(gctx, msgs, g, gApplied, gLags)
			tracing.End(span, outcomes[k].err)
			mu.Lock()
			defer mu.Unlock()
			mergeCounts(applied, lags, gApplied, gLags)
		})
	}
	wg.Wait()
	return outcomes
}

// mergeCounts adds one group's checkpoints and lags to the batch's.
func mergeCounts(applied map[string]*readmodel.Checkpoint, lags map[string][]time.Duration, gApplied map[string]*readmodel.Checkpoint, gLags map[string][]time.Duration) {
	for name, g := range gApplied {
		c := applied[name]
		if c == nil {
			c = &readmodel.Checkpoint{Projection: name}
			applied[name] = c
		}
		c.Processed += g.Processed
		if !g.LastEventAt.Before(c.LastEventAt) {
			c.LastEventID, c.LastEventAt = g.LastEventID, g.LastEventAt
		}
	}
	for name, l := range gLags {
		lags[name] = append(lags[name], l...)
	}
}

// groups splits msgs by message group: the indexes of each group's
// messages in delivery order, the groups in the order of their first
// message.
func groups(msgs []events.SQSMessage) [][]int {
	var out [][]int
	at := map[string]int{}
	for i, m := range msgs {
		g := groupOf(m)
		k, ok := at[g]
		if !ok {
			k = len(out)
			at[g] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// timeLeft is the time to ctx's deadline, if it has one.
func timeLeft(ctx context.Context) (time.Duration, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return time.Until(deadline), true
}

// failed reports why msg failed (deadletter.Report) and whether this was
// its last allowed receive.
func (p *Projector) failed(ctx context.Context, msg events.SQSMessage, err error) bool {
	return deadletter.Report{Consumer: "projector", MaxReceive: p.maxReceive, Log: p.log, Failures: p.failures, Now: p.now}.
		Report(ctx, msg, err)
}

// groupOf is the FIFO message group of msg: the aggregate id the relay set.
// Without one (a standard queue), it is the aggregate id of the body, and a
// message that has neither is a group of its own.
func groupOf(msg events.SQSMessage) string {
	if g := msg.Attributes["MessageGroupId"]; g != "" {
		return g
	}
	if rec, err := relay.DecodeMessage(msg.Body); err == nil {
		return rec.AggregateID
	}
	return "message:" + msg.MessageId
}

func (p *Projector) names() []string { return projection.Names(p.projections) }

func appliedCounts(applied map[string]*readmodel.Checkpoint) map[string]int64 {
	counts := make(map[string]int64, len(applied))
	for name, c := range applied {
		counts[name] = c.Processed
	}
	return counts
}

// handleGroup runs every projection on the messages of one group, g (their
// indexes in msgs), adding what they applied to the batch's checkpoints and
// lags. It returns nil when every message is applied, else the first
// message (an index in g) that is not, and why: the messages before it are
// applied by every projection, it and those after it are not (or not
// known to be).
//
// The messages are decoded up to the first that cannot be (a poison); each
// projection that takes the stream (projection.Takes: the queue carries
// every kind of aggregate), on each of its targets, then applies at most
// the messages every projection before it applied, so that no projection
// runs ahead of another by more than a failed write.
func (p *Projector) handleGroup(ctx context.Context, msgs []events.SQSMessage, g []int, applied map[string]*readmodel.Checkpoint, lags map[string][]time.Duration) (int, error) {
	recs := make([]es.Record, 0, len(g))
	var why error // why the message at limit is not applied
	for _, i := range g {
		rec, err := relay.DecodeMessage(msgs[i].Body)
		if err == nil {
			rec.Event, err = p.decode(ctx, rec)
		}
		if err == nil && len(recs) > 0 && rec.AggregateID != recs[0].AggregateID {
			err = fmt.Errorf("an event of %s in the message group of %s", rec.AggregateID, recs[0].AggregateID)
		}
		if err != nil {
			why = fmt.Errorf("message %s: %w", msgs[i].MessageId, err)
			break
		}
		recs = append(recs, rec)
	}
	limit := len(recs) // the messages every projection so far applied
	for _, pr := range p.projections {
		if limit == 0 {
			break
		}
		if !projection.Takes(pr, recs[:limit]) {
			continue // the stream of another kind of aggregate: none of its rows
		}
		name := pr.Name()
		targets, err := p.targets(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("%s of %s: %w", name, recs[0].AggregateID, err)
		}
		for i, target := range targets {
			run := recs[:limit]
			reached, done, err := p.project(ctx, pr, target, run)
			if i == 0 { // the active generation: what the checkpoint and the lag describe
				p.count(applied, lags, name, done)
			}
			if limit = covered(run, reached); limit == len(run) {
				continue // an error past the run (none today) fails no message
			}
			if err == nil {
				err = errors.New("not applied")
			}
			if i > 0 {
				err = fmt.Errorf("generation being rebuilt: %w", err)
			}
			why = fmt.Errorf("%s of %s v%d: %w", name, run[limit].AggregateID, run[limit].Version, err)
			if limit == 0 {
				break
			}
		}
	}
	if limit == len(g) {
		return 0, nil
	}
	return limit, why
}

// covered is how many of recs, from the first, are at or below reached.
func covered(recs []es.Record, reached int64) int {
	for i, r := range recs {
		if r.Version > reached {
			return i
		}
	}
	return len(recs)
}

// count adds done, the records projection name applied to its active
// generation, to the batch's checkpoints and lags.
func (p *Projector) count(applied map[string]*readmodel.Checkpoint, lags map[string][]time.Duration, name string, done []es.Record) {
	now := p.now()
	for _, r := range done {
		c := applied[name]
		if c == nil {
			c = &readmodel.Checkpoint{Projection: name}
			applied[name] = c
		}
		c.Processed++
		if !r.OccurredAt.Before(c.LastEventAt) {
			c.LastEventID, c.LastEventAt = r.ID, r.OccurredAt
		}
		lags[name] = append(lags[name], now.Sub(r.OccurredAt))
	}
}

// targets are the read models a projection writes: the active generation
// and, while a rebuild fills one, the one building.
func (p *Projector) targets(ctx context.Context, projection string) ([]*readmodel.Store, error) {
	return p.store.WriteTargets(ctx, projection)
}

// missing returns the events of rec's stream after applied up to rec, read
// from the event store and decoded: what a projection at applied must apply
// to reach rec.
func (p *Projector) missing(ctx context.Context, rec es.Record, applied int64) ([]es.Record, error) {
	recs, err := p.events.Load(ctx, rec.AggregateID, applied+1, rec.Version)
	if err != nil {
		return nil, fmt.Errorf("heal gap v%d..v%d: %w", applied+1, rec.Version, err)
	}
	if want := rec.Version - applied; int64(len(recs)) != want || recs[len(recs)-1].ID != rec.ID {
		return nil, fmt.Errorf("heal gap v%d..v%d: the event store holds %d of %d events ending with %s",
			applied+1, rec.Version, len(recs), want, rec.ID)
	}
	if err := p.decodeAll(ctx, recs); err != nil {
		return nil, fmt.Errorf("heal gap v%d..v%d: %w", applied+1, rec.Version, err)
	}
	return recs, nil
}

// decode decodes rec's event, its personal fields opened; rec.Data stays
// as stored (sealed), so that what the projections keep of the record (the
// activity) holds nothing personal in clear.
func (p *Projector) decode(ctx context.Context, rec es.Record) (es.Event, error) {
	if p.open == nil {
		return p.registry.Decode(rec)
	}
	one := []es.Record{rec}
	if err := p.open(ctx, one); err != nil {
		return nil, err
	}
	return p.registry.Decode(one[0])
}

// decodeAll is decode on every record of recs.
func (p *Projector) decodeAll(ctx context.Context, recs []es.Record) error {
	if p.open == nil {
		return p.registry.DecodeAll(recs)
	}
	opened := slices.Clone(recs)
	if err := p.open(ctx, opened); err != nil {
		return err
	}
	if err := p.registry.DecodeAll(opened); err != nil {
		return err
	}
	for i := range recs {
		recs[i].Event = opened[i].Event
	}
	return nil
}
