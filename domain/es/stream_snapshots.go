package es

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// loadLatest is loadUntil on a store that keeps snapshots in the stream:
// the latest snapshot of the decider's state schema (at or before version
// and asOf when they are set) and the events after it, in one read when
// snapshots are written every SnapshotEvery events. A snapshot that cannot
// be decoded is passed over for an older one: the stream is the truth.
func (s *Service[S, C]) loadLatest(ctx context.Context, store StreamSnapshots, id string, version int64, asOf time.Time) (Aggregate[S], error) {
	if version < 0 {
		return Aggregate[S]{ID: id}, nil
	}
	var state S
	usable := func(snap Snapshot) bool {
		if snap.SchemaVersion != s.decider.StateSchema || (!asOf.IsZero() && snap.UpdatedAt.After(asOf)) {
			return false
		}
		var st S
		if err := json.Unmarshal(snap.State, &st); err != nil {
			return false
		}
		state = st
		return true
	}
	snap, ok, recs, err := store.LoadLatest(ctx, id, version, usable, s.opts.SnapshotEvery)
	if err != nil {
		return Aggregate[S]{}, fmt.Errorf("load %s from its latest snapshot: %w", id, err)
	}
	if !asOf.IsZero() {
		n := 0
		for n < len(recs) && !recs[n].OccurredAt.After(asOf) {
			n++
		}
		recs = recs[:n]
	}
	agg := Aggregate[S]{ID: id}
	if ok {
		agg = Aggregate[S]{ID: id, Version: snap.Version, State: state, UpdatedAt: snap.UpdatedAt}
	}
	if err := s.registry.DecodeAll(recs); err != nil {
		return Aggregate[S]{}, err
	}
	return s.decider.Fold(agg, recs), nil
}
