package es

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Load returns the current state of aggregate id: the latest usable snapshot,
// then the events after it.
func (s *Service[S, C]) Load(ctx context.Context, id string) (Aggregate[S], error) {
	return s.loadUntil(ctx, id, 0, time.Time{})
}

// LoadAt returns the state of aggregate id at version (time travel by version).
// A version past the end gives the current state; Version 0 means it did not exist.
func (s *Service[S, C]) LoadAt(ctx context.Context, id string, version int64) (Aggregate[S], error) {
	if version <= 0 {
		return Aggregate[S]{ID: id}, nil
	}
	return s.loadUntil(ctx, id, version, time.Time{})
}

// LoadAsOf returns the state of aggregate id as it was at time t: the events
// that occurred at or before t.
func (s *Service[S, C]) LoadAsOf(ctx context.Context, id string, t time.Time) (Aggregate[S], error) {
	return s.loadUntil(ctx, id, 0, t)
}

// loadUntil folds the stream up to version (0: no bound) and up to time asOf
// (zero: no bound), starting from a snapshot when one is usable.
func (s *Service[S, C]) loadUntil(ctx context.Context, id string, version int64, asOf time.Time) (Aggregate[S], error) {
	if ss, ok := s.store.(StreamSnapshots); ok && s.opts.SnapshotEvery > 0 {
		return s.loadLatest(ctx, ss, id, version, asOf) // one read: see stream_snapshots.go
	}
	agg, err := s.fromSnapshot(ctx, id, version, asOf)
	if err != nil {
		return Aggregate[S]{}, err
	}
	if version > 0 && agg.Version >= version {
		return agg, nil
	}
	if pl, ok := s.store.(PageLoader); ok {
		return s.foldPages(ctx, pl, agg, version, asOf)
	}
	recs, err := s.store.Load(ctx, id, agg.Version+1, version)
	if err != nil {
		return Aggregate[S]{}, fmt.Errorf("load %s from v%d: %w", id, agg.Version+1, err)
	}
	if !asOf.IsZero() {
		n := 0
		for n < len(recs) && !recs[n].OccurredAt.After(asOf) {
			n++
		}
		recs = recs[:n]
	}
	if err := s.registry.DecodeAll(recs); err != nil {
		return Aggregate[S]{}, err
	}
	return s.decider.Fold(agg, recs), nil
}

// fromSnapshot starts a load: the snapshot when it is of the current state
// schema and not past the bounds, else the empty aggregate. A snapshot that
// cannot be read is ignored: the stream is the truth.
func (s *Service[S, C]) fromSnapshot(ctx context.Context, id string, version int64, asOf time.Time) (Aggregate[S], error) {
	agg := Aggregate[S]{ID: id}
	if s.opts.SnapshotEvery <= 0 {
		return agg, nil
	}
	snap, ok, err := s.store.Snapshot(ctx, id)
	if err != nil {
		// A caller that gave up is told so; any other failure costs a full
		// replay, never the answer.
		if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return agg, fmt.Errorf("load snapshot of %s: %w", id, err)
		}
		return agg, nil
	}
	if !ok || snap.SchemaVersion != s.decider.StateSchema ||
		(version > 0 && snap.Version > version) || (!asOf.IsZero() && snap.UpdatedAt.After(asOf)) {
		return agg, nil
	}
	var state S
	if err := json.Unmarshal(snap.State, &state); err != nil {
		return agg, nil
	}
	return Aggregate[S]{ID: id, Version: snap.Version, State: state, UpdatedAt: snap.UpdatedAt}, nil
}

// WhatIf is the answer to "what would have happened": the state before, the
// events that would have been appended (or the rule that rejects them), and
// the state after. Nothing is written.
type WhatIf[S any] struct {
	Before   Aggregate[S]
	Records  []Record
	After    Aggregate[S]
	Rejected error // the domain error of Decide, when the command is refused
}

// WhatIfCommand rebuilds aggregate id as it was at time at and decides cmd
// against it, at that time. Nothing is written.
func (s *Service[S, C]) WhatIfCommand(ctx context.Context, id string, at time.Time, cmd C, md Metadata) (WhatIf[S], error) {
	before, err := s.LoadAsOf(ctx, id, at)
	if err != nil {
		return WhatIf[S]{}, err
	}
	events, derr := s.decider.Decide(before.State, cmd, at)
	if derr != nil {
		return WhatIf[S]{Before: before, After: before, Rejected: derr}, nil
	}
	return s.whatIf(before, events, at, md)
}

// WhatIfEvent rebuilds aggregate id as it was at time at and applies e to it,
// without the rules a command would check. Nothing is written.
func (s *Service[S, C]) WhatIfEvent(ctx context.Context, id string, at time.Time, e Event, md Metadata) (WhatIf[S], error) {
	before, err := s.LoadAsOf(ctx, id, at)
	if err != nil {
		return WhatIf[S]{}, err
	}
	return s.whatIf(before, []Event{e}, at, md)
}

func (s *Service[S, C]) whatIf(before Aggregate[S], events []Event, at time.Time, md Metadata) (WhatIf[S], error) {
	recs, err := s.records(before, events, at, md)
	if err != nil {
		return WhatIf[S]{}, err
	}
	return WhatIf[S]{Before: before, Records: recs, After: s.decider.Fold(before, recs)}, nil
}
