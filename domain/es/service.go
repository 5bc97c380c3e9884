package es

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
)

// Options tune a Service. Zero values take the defaults.
type Options struct {
	// SnapshotEvery writes a snapshot after an append that crosses a multiple
	// of it. 0 disables snapshots.
	SnapshotEvery int
	// RetryBudget bounds the time a command spends retrying version
	// conflicts and busy stores (default 5s: half the commands function's
	// 10 s timeout). A context deadline closer than the budget plus a
	// reserve to answer cuts it short.
	RetryBudget time.Duration
	// MaxAttempts, when positive, also caps the load-decide-append rounds.
	// 0 leaves only RetryBudget.
	MaxAttempts int
	// Backoff is the least wait between attempts (default 5ms); MaxBackoff
	// the most (default 100ms). Waits are decorrelated jitter between them.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// IdempotencyTTL is how long idempotency records live (default 24h).
	IdempotencyTTL time.Duration
	// Now is the clock (default time.Now, in UTC).
	Now func() time.Time
	// NewID makes event ids (default UUID v7).
	NewID func() string
	// CacheSize, when positive, keeps the folded state of that many
	// aggregates (the least recently used go first), so that a command on
	// one of them decides without reading and makes a single conditional
	// write. 0 reads the aggregate before every command. A cached state is
	// shared by the commands that start from it: Evolve must return a new
	// state, never change maps or slices of the one it is given.
	CacheSize int
}

// Service runs commands against one kind of aggregate: load, decide, append at
// the expected version, retry on conflict. It also answers time-travel and
// what-if questions. It is safe for concurrent use.
type Service[S, C any] struct {
	decider  Decider[S, C]
	registry *Registry
	store    Store
	opts     Options
	cache    *stateCache[S] // nil without Options.CacheSize
}

// NewService returns a Service for d, storing events in store.
func NewService[S, C any](d Decider[S, C], reg *Registry, store Store, opts Options) *Service[S, C] {
	if opts.RetryBudget <= 0 {
		opts.RetryBudget = 5 * time.Second
	}
	if opts.MaxAttempts < 0 {
		opts.MaxAttempts = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 5 * time.Millisecond
	}
	if opts.MaxBackoff < opts.Backoff {
		opts.MaxBackoff = max(100*time.Millisecond, opts.Backoff)
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	return &Service[S, C]{decider: d, registry: reg, store: store, opts: opts, cache: newStateCache[S](opts.CacheSize)}
}

// Decider returns the service's decider.
func (s *Service[S, C]) Decider() Decider[S, C] { return s.decider }

// Registry returns the service's codec registry.
func (s *Service[S, C]) Registry() *Registry { return s.registry }

// ExecOptions carry what a command needs besides itself.
type ExecOptions struct {
	// ExpectedVersion, when set, makes the command fail with a
	// *PreconditionError unless the aggregate is at that version; there is
	// then no retry on conflict.
	ExpectedVersion *int64
	// Metadata is recorded on every event the command causes.
	Metadata Metadata
	// Idempotency, when set, makes a repeat of the same request return the
	// first result and write nothing.
	Idempotency *IdempotencyKey
	// Authorize, when set, is checked on the state (an S) before anything
	// else: its error is the answer, before a failed precondition or a
	// broken rule. On a cached state that error is confirmed on the
	// current one, as a broken rule is.
	Authorize func(state any) error
	// Absent says the caller has just made the aggregate id up (a create
	// under a new id): the command decides on the empty aggregate without
	// reading it, and the append at version 0 checks that it is.
	Absent bool
}

// IdempotencyKey identifies a request made with an idempotency key.
type IdempotencyKey struct {
	Key         string // the caller's key, scoped as the caller sees fit
	RequestHash string // what identifies the request; another hash is ErrIdempotencyMismatch
}

// Result is the outcome of a command.
type Result[S any] struct {
	Aggregate[S]          // state after the command
	Records      []Record // events appended; none for a no-op or a replay
	Replayed     bool     // the first result of an idempotent request, nothing written
	Attempts     int      // load-decide-append rounds
	SnapshotErr  error    // a failed snapshot write, which never fails the command
	unverified   bool     // decided on the cached state, which the failed append may have found stale
}

// answerReserve is the time kept, under the context's deadline, to answer
// after the last attempt.
const answerReserve = 500 * time.Millisecond

// Execute runs cmd against aggregate id. Domain errors from Decide are returned
// as they are; store errors are wrapped with context.
//
// With an idempotency key, nothing is read first: the idempotency record
// is written in the same atomic append as the events, on condition that
// the key is unused, so a repeat cannot write, and its append fails with
// ErrIdempotencyReplay (stores report it before any other failure). Only
// then, or after any other failure, is the key's record looked up: a first
// run with the same key may have committed before this one decided, and
// this one may have failed only because of it (a rule it broke, a
// precondition, a conflict). The first run's answer is then the answer.
// A repeat therefore costs a failed write and a read, and a first run
// nothing more than its append.
func (s *Service[S, C]) Execute(ctx context.Context, id string, cmd C, x ExecOptions) (Result[S], error) {
	res, err := s.execute(ctx, id, cmd, x)
	if err != nil && x.Idempotency != nil {
		if r, ok, rerr := s.replay(ctx, *x.Idempotency); ok {
			r.Attempts = res.Attempts
			return r, rerr // rerr: ErrIdempotencyMismatch, or nil
		}
	}
	return res, err
}

// execute is the command loop: attempt, and on a version conflict or a busy
// store, wait (decorrelated jitter) and attempt again, within the retry
// budget.
func (s *Service[S, C]) execute(ctx context.Context, id string, cmd C, x ExecOptions) (Result[S], error) {
	start := time.Now()
	deadline := start.Add(s.opts.RetryBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-answerReserve).Before(deadline) {
		deadline = d.Add(-answerReserve)
	}
	var release *ReleaseError
	var pause time.Duration
	var base *Aggregate[S] // what the last attempt loaded, to catch up from
	free := 0              // attempts not counted against MaxAttempts
	for attempt := 1; ; attempt++ {
		res, err := s.attempt(ctx, id, cmd, x, base)
		res.Attempts = attempt
		if res.ID == id {
			base = &res.Aggregate
		}
		stale := res.unverified && errors.Is(err, ErrConflict)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, ErrIdempotencyReplay):
			// A concurrent request with the same key won the race: answer
			// with its result. Should its record have expired in between,
			// the key is free again and the next attempt writes.
			r, ok, rerr := s.replay(ctx, *x.Idempotency)
			if ok || rerr != nil {
				r.Attempts = attempt
				return r, rerr
			}
		case errors.Is(err, ErrBusy):
			// Nothing was written and nothing is known of the version:
			// attempt again, If-Match or not.
		case errors.As(err, &release):
			return res, err // the guards disagree with the stream: no retry helps
		case !errors.Is(err, ErrConflict):
			return res, err
		case x.ExpectedVersion != nil:
			cur, lerr := s.Load(ctx, id)
			if lerr != nil {
				return res, lerr
			}
			if x.Authorize != nil {
				if aerr := x.Authorize(cur.State); aerr != nil {
					return res, aerr // before the precondition, as in an attempt
				}
			}
			if cur.Version != *x.ExpectedVersion {
				return res, &PreconditionError{Expected: *x.ExpectedVersion, Current: cur.Version}
			}
			// Still at the expected version: the conflict was not about
			// it, so a 412 would be a lie. Attempt again.
		}
		if stale && attempt == 1 {
			// The cached state was behind the stream: another container
			// wrote since. That is no contention to back off from: catch
			// up and attempt again at once. The attempt read nothing, so
			// it does not count against MaxAttempts either: a command has
			// as many rounds that read as it had without the cache.
			free = 1
			continue
		}
		if s.opts.MaxAttempts > 0 && attempt-free >= s.opts.MaxAttempts {
			return res, fmt.Errorf("execute on %s after %d attempts: %w", id, attempt, err)
		}
		pause = s.backoff(pause, time.Since(start), deadline.Sub(start))
		if time.Now().Add(pause).After(deadline) {
			return res, fmt.Errorf("execute on %s: gave up after %d attempts in %s: %w",
				id, attempt, time.Since(start).Round(time.Millisecond), err)
		}
		if err := backoff.Sleep(ctx, pause); err != nil {
			return res, fmt.Errorf("execute on %s: %w", id, err)
		}
	}
}

// attempt loads, decides and appends once. With base, the state an earlier
// attempt read, it only reads the events after it: under contention each
// retry reads the few events the other writers added, not the stream.
// Without base it starts from the cached state when there is one, or from
// the empty aggregate when the caller says it is absent, and reads nothing:
// the append is conditional on that state's version, so a stale state
// makes it fail with ErrConflict and the next attempt catches up. An
// attempt on such an unverified state that writes nothing (a broken rule, a
// failed precondition, a no-op) is not an answer until the state is known
// to be current: it catches up (usually reading nothing new) and decides again.
func (s *Service[S, C]) attempt(ctx context.Context, id string, cmd C, x ExecOptions, base *Aggregate[S]) (Result[S], error) {
	var agg Aggregate[S]
	var err error
	verified := true
	switch cached, ok := s.cache.get(id); {
	case base != nil:
		agg, err = s.catchUp(ctx, *base)
	case ok:
		agg, verified = cached, false
	case x.Absent:
		agg, verified = Aggregate[S]{ID: id}, false
	default:
		agg, err = s.Load(ctx, id)
	}
	if err != nil {
		return Result[S]{}, err
	}
	if verified {
		s.cache.put(agg)
	}
	res, appended, err := s.decideAndAppend(ctx, id, cmd, x, agg, verified)
	if !verified && !appended {
		if err == nil && x.Idempotency != nil {
			// A keyed no-op on the cache is most often the repeat of a
			// request that ran (its events are in the cache): its record
			// answers. Else it is confirmed on the current state below.
			if r, ok, rerr := s.replay(ctx, *x.Idempotency); ok || rerr != nil {
				return r, rerr
			}
		}
		return s.attempt(ctx, id, cmd, x, &agg)
	}
	res.unverified = !verified
	if err == nil {
		s.cache.put(res.Aggregate)
	}
	return res, err
}

// decideAndAppend decides cmd on agg and appends the outcome at agg's
// version. appended says whether the store was asked to write; verified,
// whether agg was read from the store rather than taken from the cache.
func (s *Service[S, C]) decideAndAppend(ctx context.Context, id string, cmd C, x ExecOptions, agg Aggregate[S], verified bool) (_ Result[S], appended bool, _ error) {
	if x.Authorize != nil {
		if err := x.Authorize(agg.State); err != nil {
			return Result[S]{Aggregate: agg}, false, err
		}
	}
	now := s.now(agg)
	if x.ExpectedVersion != nil && agg.Version != *x.ExpectedVersion {
		if agg.Version == 0 {
			// An aggregate that does not exist answers as the decider says
			// (not found), not with a failed precondition.
			if _, err := s.decider.Decide(agg.State, cmd, now); err != nil {
				return Result[S]{Aggregate: agg}, false, err
			}
		}
		return Result[S]{Aggregate: agg}, false, &PreconditionError{Expected: *x.ExpectedVersion, Current: agg.Version}
	}
	events, err := s.decider.Decide(agg.State, cmd, now)
	if err != nil {
		return Result[S]{Aggregate: agg}, false, err
	}
	recs, err := s.records(agg, events, now, x.Metadata)
	if err != nil {
		return Result[S]{Aggregate: agg}, false, err
	}
	next := s.decider.Fold(agg, recs)
	if len(recs) == 0 && !verified {
		// A no-op on a cached state writes nothing, not even the
		// idempotency record: a store need not check the version of an
		// append without events (DynamoDB's conditions are on the events'
		// items), so the key would record a decision on a stale state for
		// good. The caller confirms it on the current state first.
		return Result[S]{Aggregate: next}, false, nil
	}
	req := AppendRequest{AggregateID: id, ExpectedVersion: agg.Version, Records: recs}
	req.Claims, req.Releases = s.decider.guards(id, agg.State, next.State)
	if x.Idempotency != nil {
		req.Idempotency = &IdempotencyRecord{
			Key: x.Idempotency.Key, RequestHash: x.Idempotency.RequestHash,
			AggregateID: id, Version: next.Version,
			CreatedAt: now, ExpiresAt: now.Add(s.opts.IdempotencyTTL),
		}
	}
	if req.Items() == 0 {
		return Result[S]{Aggregate: next}, false, nil // a no-op: nothing to write
	}
	res := Result[S]{Aggregate: next, Records: recs}
	_, inStream := s.store.(StreamSnapshots)
	crossed := s.opts.SnapshotEvery > 0 && len(recs) > 0 && next.Version/int64(s.opts.SnapshotEvery) > agg.Version/int64(s.opts.SnapshotEvery)
	if crossed && inStream {
		// Written with the event, in the same request.
		snap, err := s.snapshotOf(next, now)
		if err != nil {
			res.SnapshotErr = err
		} else {
			req.Snapshot = &snap
		}
	}
	if err := s.store.Append(ctx, req); err != nil {
		return Result[S]{Aggregate: agg}, true, err // stores say which append failed
	}
	if crossed && !inStream {
		res.SnapshotErr = s.snapshot(ctx, next, now)
	}
	return res, true, nil
}

// catchUp folds the events after agg onto it.
func (s *Service[S, C]) catchUp(ctx context.Context, agg Aggregate[S]) (Aggregate[S], error) {
	recs, err := s.store.Load(ctx, agg.ID, agg.Version+1, 0)
	if err != nil {
		return Aggregate[S]{}, fmt.Errorf("load %s from v%d: %w", agg.ID, agg.Version+1, err)
	}
	if err := s.registry.DecodeAll(recs); err != nil {
		return Aggregate[S]{}, err
	}
	return s.decider.Fold(agg, recs), nil
}

// now is the clock, never earlier than the aggregate's last event, so that
// occurred-at never decreases along a stream and "as of T" is a prefix of it.
func (s *Service[S, C]) now(agg Aggregate[S]) time.Time {
	now := s.opts.Now().UTC()
	if now.Before(agg.UpdatedAt) {
		return agg.UpdatedAt
	}
	return now
}

func (s *Service[S, C]) records(agg Aggregate[S], events []Event, now time.Time, md Metadata) ([]Record, error) {
	recs := make([]Record, 0, len(events))
	for i, e := range events {
		typ, schema, data, err := s.registry.Encode(e)
		if err != nil {
			return nil, err
		}
		recs = append(recs, Record{
			ID: s.opts.NewID(), AggregateID: agg.ID, AggregateType: s.decider.Type,
			Version: agg.Version + int64(i) + 1, Type: typ, SchemaVersion: schema,
			OccurredAt: now, Data: data, Metadata: md, Event: e,
		})
	}
	return recs, nil
}

func (s *Service[S, C]) replay(ctx context.Context, k IdempotencyKey) (Result[S], bool, error) {
	rec, ok, err := s.store.Idempotency(ctx, k.Key)
	if err != nil {
		return Result[S]{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if !ok {
		return Result[S]{}, false, nil
	}
	if rec.RequestHash != k.RequestHash {
		return Result[S]{}, true, ErrIdempotencyMismatch
	}
	res := Result[S]{Replayed: true}
	res.ID, res.Version = rec.AggregateID, rec.Version
	return res, true, nil
}

func (s *Service[S, C]) snapshotOf(agg Aggregate[S], now time.Time) (Snapshot, error) {
	state, err := json.Marshal(agg.State)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s v%d: %w", agg.ID, agg.Version, err)
	}
	return Snapshot{AggregateID: agg.ID, AggregateType: s.decider.Type, Version: agg.Version, SchemaVersion: s.decider.StateSchema,
		State: state, UpdatedAt: agg.UpdatedAt, TakenAt: now}, nil
}

func (s *Service[S, C]) snapshot(ctx context.Context, agg Aggregate[S], now time.Time) error {
	snap, err := s.snapshotOf(agg, now)
	if err != nil {
		return err
	}
	if err := s.store.PutSnapshot(ctx, snap); err != nil {
		return fmt.Errorf("snapshot %s v%d: %w", agg.ID, agg.Version, err)
	}
	return nil
}

// backoff is the wait after one of prev, elapsed into a budget:
// decorrelated jitter, uniform between Backoff and three times prev, at
// most MaxBackoff, and the window narrows as the budget runs out. Writers
// that keep colliding spread out, while a command that has waited long
// retries sooner than fresh ones, which would otherwise win every round
// (a writer whose command just committed loads the new version first).
func (s *Service[S, C]) backoff(prev, elapsed, budget time.Duration) time.Duration {
	lo, hi := backoff.Policy{Base: s.opts.Backoff, Cap: s.opts.MaxBackoff}.Window(0, prev)
	if budget > 0 && elapsed > 0 {
		left := max(float64(budget-elapsed)/float64(budget), 0)
		hi = lo + time.Duration(float64(hi-lo)*left)
	}
	return backoff.Draw(lo, hi)
}
