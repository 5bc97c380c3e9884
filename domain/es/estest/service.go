package estest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
)

// The suite drives the kernel's Service over the store under test with a tiny
// counter aggregate, so that the command loop is checked against every store.

type counter struct {
	N   int    `json:"n"`
	Tag string `json:"tag,omitempty"`
}

type counterCmd struct {
	Add int
	Tag string
	// Fresh makes a Tag already set a broken rule (errAlreadyTagged), as
	// suspending a suspended user is.
	Fresh bool
}

type added struct {
	N int `json:"n"`
}

func (added) EventType() string { return "counter.added.v1" }

type tagged struct {
	Tag string `json:"tag"`
}

func (tagged) EventType() string { return "counter.tagged.v1" }

var (
	errNothing       = errors.New("nothing to do")
	errAlreadyTagged = errors.New("already tagged")
)

func counterDecider() es.Decider[counter, counterCmd] {
	return es.Decider[counter, counterCmd]{
		Type:        "counter",
		StateSchema: 1,
		Decide: func(s counter, c counterCmd, _ time.Time) ([]es.Event, error) {
			var out []es.Event
			if c.Add < 0 {
				return nil, errNothing
			}
			if c.Fresh && c.Tag == s.Tag {
				return nil, errAlreadyTagged
			}
			if c.Add > 0 {
				out = append(out, added{N: c.Add})
			}
			if c.Tag != "" && c.Tag != s.Tag {
				out = append(out, tagged{Tag: c.Tag})
			}
			return out, nil
		},
		Evolve: func(s counter, r es.Record) counter {
			switch e := r.Event.(type) {
			case added:
				s.N += e.N
			case tagged:
				s.Tag = e.Tag
			}
			return s
		},
		Unique: func(s counter) []string {
			if s.Tag == "" {
				return nil
			}
			return []string{"tag#" + s.Tag}
		},
	}
}

func counterRegistry() *es.Registry {
	r := es.NewRegistry()
	es.Register[added](r, 1)
	es.Register[tagged](r, 1)
	return r
}

// countingStore counts the records Load returns, to check how much a load reads.
type countingStore struct {
	es.Store
	loaded atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, id string, from, to int64) ([]es.Record, error) {
	recs, err := c.Store.Load(ctx, id, from, to)
	c.loaded.Add(int64(len(recs)))
	return recs, err
}

// testServiceConcurrentCommands: concurrent writers on one aggregate through
// the command loop; every success is one event, versions have no gap.
func testServiceConcurrentCommands(t *testing.T, s es.Store) {
	ctx := context.Background()
	svc := es.NewService(counterDecider(), counterRegistry(), s, es.Options{MaxAttempts: 50})
	id := newID()
	const writers, commands = 10, 10
	var successes atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range commands {
				_, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{})
				switch {
				case err == nil:
					successes.Add(1)
				case !errors.Is(err, es.ErrConflict):
					t.Errorf("execute: %v", err)
				}
			}
		})
	}
	wg.Wait()
	agg, err := svc.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if agg.Version != successes.Load() || agg.State.N != int(successes.Load()) {
		t.Fatalf("version %d, sum %d, successes %d: want all equal", agg.Version, agg.State.N, successes.Load())
	}
	recs := load(t, s, id, 1, 0)
	assertVersions(t, recs, 1, agg.Version)
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.ID] {
			t.Fatalf("event %s stored twice", r.ID)
		}
		seen[r.ID] = true
	}
}

func testServiceIdempotency(t *testing.T, s es.Store) {
	ctx := context.Background()
	svc := es.NewService(counterDecider(), counterRegistry(), s, es.Options{})
	id := newID()
	key := es.IdempotencyKey{Key: "k-" + id, RequestHash: "add-1"}
	first, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{Idempotency: &key})
	if err != nil || first.Version != 1 || first.Replayed {
		t.Fatalf("first: %+v, %v", first, err)
	}
	// Same key, same request, even concurrently: the first result, nothing written.
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			again, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{Idempotency: &key})
			if err != nil || !again.Replayed || again.Version != 1 || again.ID != id {
				t.Errorf("repeat: %+v, %v", again, err)
			}
		})
	}
	wg.Wait()
	other := es.IdempotencyKey{Key: key.Key, RequestHash: "add-2"}
	if _, err := svc.Execute(ctx, id, counterCmd{Add: 2}, es.ExecOptions{Idempotency: &other}); !errors.Is(err, es.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other request: got %v, want ErrIdempotencyMismatch", err)
	}
	assertVersions(t, load(t, s, id, 1, 0), 1, 1)

	// Racing first uses of one key: one writes, the others get its result.
	id2 := newID()
	key2 := es.IdempotencyKey{Key: "k-" + id2, RequestHash: "add-1"}
	for range 5 {
		wg.Go(func() {
			res, err := svc.Execute(ctx, id2, counterCmd{Add: 1}, es.ExecOptions{Idempotency: &key2})
			if err != nil || res.Version != 1 {
				t.Errorf("racing first use: %+v, %v", res, err)
			}
		})
	}
	wg.Wait()
	assertVersions(t, load(t, s, id2, 1, 0), 1, 1)
}

// testServiceSnapshotAndTimeTravel: snapshots bound what a load reads; state
// at a version or a time; what-if writes nothing; old snapshot schemas are ignored.
// countingPager counts the records LoadPages hands out.
type countingPager struct {
	*countingStore
	pl es.PageLoader
}

func (c countingPager) LoadPages(ctx context.Context, id string, from, to int64, fn func([]es.Record) error) error {
	return c.pl.LoadPages(ctx, id, from, to, func(page []es.Record) error {
		c.loaded.Add(int64(len(page)))
		return fn(page)
	})
}

// testServiceSnapshotAndTimeTravel runs through Load, and through
// LoadPages when the store has it.
func testServiceSnapshotAndTimeTravel(t *testing.T, s es.Store) {
	t.Run("Load", func(t *testing.T) {
		cs := &countingStore{Store: s}
		serviceSnapshotAndTimeTravel(t, s, cs, &cs.loaded)
	})
	if pl, ok := s.(es.PageLoader); ok {
		t.Run("LoadPages", func(t *testing.T) {
			cs := &countingStore{Store: s}
			serviceSnapshotAndTimeTravel(t, s, countingPager{cs, pl}, &cs.loaded)
		})
	}
}

// serviceSnapshotAndTimeTravel uses s through cs, which counts in loaded
// the records it loads.
func serviceSnapshotAndTimeTravel(t *testing.T, s, cs es.Store, loaded *atomic.Int64) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	clock := func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Minute) }
	const every = 10
	svc := es.NewService(counterDecider(), counterRegistry(), cs, es.Options{SnapshotEvery: every, Now: clock})
	id := newID()
	for i := range 25 {
		res, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{Metadata: es.Metadata{Actor: "bob"}})
		if err != nil || res.SnapshotErr != nil {
			t.Fatalf("command %d: %v, snapshot: %v", i, err, res.SnapshotErr)
		}
	}
	snap, ok, err := s.Snapshot(ctx, id)
	if err != nil || !ok || snap.Version != 20 {
		t.Fatalf("snapshot: %+v ok=%v err=%v, want version 20", snap, ok, err)
	}
	loaded.Store(0)
	agg, err := svc.Load(ctx, id)
	if err != nil || agg.Version != 25 || agg.State.N != 25 {
		t.Fatalf("load: %+v, %v", agg, err)
	}
	if n := loaded.Load(); n > every {
		t.Errorf("load with a snapshot read %d events, want at most %d", n, every)
	}

	at7, err := svc.LoadAt(ctx, id, 7)
	if err != nil || at7.Version != 7 || at7.State.N != 7 {
		t.Errorf("state at v7: %+v, %v", at7, err)
	}
	// Event v12 occurred at start + 12 minutes; just before v13.
	asOf, err := svc.LoadAsOf(ctx, id, start.Add(12*time.Minute+30*time.Second))
	if err != nil || asOf.Version != 12 || asOf.State.N != 12 {
		t.Errorf("state as of v12's time: %+v, %v", asOf, err)
	}
	before, err := svc.LoadAsOf(ctx, id, start)
	if err != nil || before.Version != 0 {
		t.Errorf("state before the first event: %+v, %v", before, err)
	}

	wi, err := svc.WhatIfCommand(ctx, id, start.Add(5*time.Minute), counterCmd{Add: 100, Tag: "x"}, es.Metadata{Actor: "eve"})
	if err != nil || wi.Rejected != nil || wi.Before.Version != 5 || wi.After.Version != 7 || wi.After.State.N != 105 || len(wi.Records) != 2 {
		t.Errorf("what-if: %+v, %v", wi, err)
	}
	rej, err := svc.WhatIfCommand(ctx, id, start.Add(5*time.Minute), counterCmd{Add: -1}, es.Metadata{})
	if err != nil || !errors.Is(rej.Rejected, errNothing) || rej.After.Version != 5 {
		t.Errorf("rejected what-if: %+v, %v", rej, err)
	}
	if agg, _ := svc.Load(ctx, id); agg.Version != 25 {
		t.Errorf("what-if wrote: version %d", agg.Version)
	}

	// A decider whose state schema moved on ignores the old snapshot and replays.
	d2 := counterDecider()
	d2.StateSchema = 2
	loaded.Store(0)
	agg2, err := es.NewService(d2, counterRegistry(), cs, es.Options{SnapshotEvery: every}).Load(ctx, id)
	if err != nil || agg2.Version != 25 || agg2.State.N != 25 {
		t.Errorf("load past an old snapshot: %+v, %v", agg2, err)
	}
	if n := loaded.Load(); n != 25 {
		t.Errorf("load past an old snapshot read %d events, want the whole stream (25)", n)
	}
}

// raceStore runs before once, just before the first Load: a request that
// commits between a command's idempotency check and its load.
type raceStore struct {
	es.Store
	once   sync.Once
	before func()
}

func (r *raceStore) Load(ctx context.Context, id string, from, to int64) ([]es.Record, error) {
	r.once.Do(r.before)
	return r.Store.Load(ctx, id, from, to)
}

// testServiceIdempotentRepeatRacesFirst: a repeat of an idempotent request
// whose first run commits after the repeat checked the key, but before it
// loaded, answers with the first's result (or the mismatch), never with the
// error its own stale attempt ran into: a broken rule or a failed
// precondition caused by the first run itself.
func testServiceIdempotentRepeatRacesFirst(t *testing.T, s es.Store) {
	ctx := context.Background()
	cases := []struct {
		name      string
		ifMatch   bool
		firstHash string // the first run's request hash; "same" for the repeat's
		wantErr   error
	}{
		{name: "broken rule", firstHash: "same"},
		{name: "failed precondition", ifMatch: true, firstHash: "same"},
		{name: "another request first", firstHash: "other", wantErr: es.ErrIdempotencyMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := es.NewService(counterDecider(), counterRegistry(), s, es.Options{})
			id := newID()
			if _, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{}); err != nil {
				t.Fatal(err)
			}
			cmd := counterCmd{Tag: "x-" + id, Fresh: true} // tags are unique values
			key := es.IdempotencyKey{Key: "k-" + id, RequestHash: "tag-x"}
			firstKey := key
			if tc.firstHash != "same" {
				firstKey.RequestHash = tc.firstHash
			}
			one := int64(1)
			x := es.ExecOptions{Idempotency: &key}
			if tc.ifMatch {
				x.ExpectedVersion = &one
			}
			var first es.Result[counter]
			rs := &raceStore{Store: s, before: func() {
				var err error
				first, err = svc.Execute(ctx, id, cmd, es.ExecOptions{Idempotency: &firstKey, ExpectedVersion: x.ExpectedVersion})
				if err != nil || first.Version != 2 {
					t.Errorf("first run: %+v, %v", first, err)
				}
			}}
			repeat, err := es.NewService(counterDecider(), counterRegistry(), rs, es.Options{}).Execute(ctx, id, cmd, x)
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("repeat: %+v, %v; want %v", repeat, err, tc.wantErr)
			case tc.wantErr == nil && (err != nil || !repeat.Replayed || repeat.Version != first.Version || repeat.ID != id):
				t.Fatalf("repeat: %+v, %v; want the first's answer, version %d, replayed", repeat, err, first.Version)
			}
			assertVersions(t, load(t, s, id, 1, 0), 1, 2)
		})
	}
}
