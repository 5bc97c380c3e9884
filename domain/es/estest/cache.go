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

// The state cache (es.Options.CacheSize) lets a warm command decide on the
// state its container folded last and append without reading. These tests
// run two services with caches of their own over one store, as two Lambda
// containers are, and make one's cache stale on purpose by writing through
// the other.

// cached returns a counter service with a state cache, as one container has.
func cached(s es.Store) *es.Service[counter, counterCmd] {
	return es.NewService(counterDecider(), counterRegistry(), s, es.Options{CacheSize: 64, MaxAttempts: 50})
}

// callStore counts the store calls a command makes.
type callStore struct {
	es.Store
	loads, appends, idem, snaps atomic.Int64
}

func (c *callStore) Load(ctx context.Context, id string, from, to int64) ([]es.Record, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, id, from, to)
}

func (c *callStore) Append(ctx context.Context, req es.AppendRequest) error {
	c.appends.Add(1)
	return c.Store.Append(ctx, req)
}

func (c *callStore) Idempotency(ctx context.Context, key string) (es.IdempotencyRecord, bool, error) {
	c.idem.Add(1)
	return c.Store.Idempotency(ctx, key)
}

func (c *callStore) Snapshot(ctx context.Context, id string) (es.Snapshot, bool, error) {
	c.snaps.Add(1)
	return c.Store.Snapshot(ctx, id)
}

func (c *callStore) reset() { c.loads.Store(0); c.appends.Store(0); c.idem.Store(0); c.snaps.Store(0) }

func (c *callStore) calls() (reads, appends int64) {
	return c.loads.Load() + c.idem.Load() + c.snaps.Load(), c.appends.Load()
}

func mustExec(t *testing.T, svc *es.Service[counter, counterCmd], id string, cmd counterCmd, x es.ExecOptions) es.Result[counter] {
	t.Helper()
	res, err := svc.Execute(context.Background(), id, cmd, x)
	if err != nil {
		t.Fatalf("execute %+v: %v", cmd, err)
	}
	return res
}

// testCacheWarmCommandWritesOnly: a command on an aggregate the service has
// seen reads nothing and appends once; with an idempotency key too.
func testCacheWarmCommandWritesOnly(t *testing.T, s es.Store) {
	cs := &callStore{Store: s}
	svc := cached(cs)
	id := newID()
	mustExec(t, svc, id, counterCmd{Add: 1}, es.ExecOptions{Absent: true})
	if r, a := cs.calls(); r != 0 || a != 1 {
		t.Errorf("create under a new id: %d reads, %d appends; want 0 and 1", r, a)
	}
	cs.reset()
	mustExec(t, svc, id, counterCmd{Add: 1}, es.ExecOptions{})
	if r, a := cs.calls(); r != 0 || a != 1 {
		t.Errorf("warm command: %d reads, %d appends; want 0 and 1", r, a)
	}
	cs.reset()
	key := es.IdempotencyKey{Key: "k-" + id, RequestHash: "h"}
	mustExec(t, svc, id, counterCmd{Add: 1}, es.ExecOptions{Idempotency: &key})
	if r, a := cs.calls(); r != 0 || a != 1 {
		t.Errorf("warm command with an idempotency key: %d reads, %d appends; want 0 and 1", r, a)
	}
	cs.reset()
	cold := cached(cs)
	res := mustExec(t, cold, id, counterCmd{Add: 1}, es.ExecOptions{})
	if r, a := cs.calls(); r != 1 || a != 1 || res.Version != 4 {
		t.Errorf("cold command: %d reads, %d appends, version %d; want 1, 1, 4", r, a, res.Version)
	}
}

// testCacheStale: container A's cache is made stale by container B's
// writes. A's next commands answer as if A had read the stream: no update
// is lost, a rule broken only in the current state is reported, and a
// command that would be a no-op on the stale state but is not on the
// current one writes.
func testCacheStale(t *testing.T, s es.Store) {
	a, b := cached(s), cached(s)
	id := newID()
	mustExec(t, a, id, counterCmd{Add: 1, Tag: "u-" + id}, es.ExecOptions{}) // v1, v2; A caches v2
	mustExec(t, b, id, counterCmd{Add: 10}, es.ExecOptions{})                // v3, behind A's back

	// No lost update: A's append at v3 conflicts, A catches up and writes v4.
	res := mustExec(t, a, id, counterCmd{Add: 100}, es.ExecOptions{})
	if res.Version != 4 || res.State.N != 111 || res.Attempts != 2 {
		t.Errorf("stale add: version %d, n %d, attempts %d; want 4, 111, 2", res.Version, res.State.N, res.Attempts)
	}

	// A no-op on A's stale state is not one on the stream's: A's cache says
	// the tag is u, B changed it to v; tagging u again must write.
	mustExec(t, b, id, counterCmd{Tag: "v-" + id}, es.ExecOptions{}) // v5
	res = mustExec(t, a, id, counterCmd{Tag: "u-" + id}, es.ExecOptions{})
	if res.Version != 6 || res.State.Tag != "u-"+id || len(res.Records) != 1 {
		t.Errorf("tag that the stale cache holds: version %d, tag %q, %d records; want 6, u, 1", res.Version, res.State.Tag, len(res.Records))
	}

	// A rule broken only in the current state: B tags w; A, whose cache
	// says u, asks for a fresh w and is told it is already tagged.
	mustExec(t, b, id, counterCmd{Tag: "w-" + id}, es.ExecOptions{}) // v7
	if _, err := a.Execute(context.Background(), id, counterCmd{Tag: "w-" + id, Fresh: true}, es.ExecOptions{}); !errors.Is(err, errAlreadyTagged) {
		t.Errorf("fresh tag already set behind the cache: got %v, want errAlreadyTagged", err)
	}
	// And the reverse: A's cache says w now; B tags x; A's fresh w is fine.
	mustExec(t, b, id, counterCmd{Tag: "x-" + id}, es.ExecOptions{}) // v8
	if res := mustExec(t, a, id, counterCmd{Tag: "w-" + id, Fresh: true}, es.ExecOptions{}); res.Version != 9 {
		t.Errorf("fresh tag on a stale cache that says it is set: version %d, want 9", res.Version)
	}

	agg, err := cached(s).Load(context.Background(), id)
	if err != nil || agg.Version != 9 || agg.State.N != 111 || agg.State.Tag != "w-"+id {
		t.Fatalf("final state: %+v, %v; want v9, n 111, tag w", agg, err)
	}
	assertVersions(t, load(t, s, id, 1, 0), 1, 9)
}

// testCacheStaleIfMatch: If-Match is checked against the stream's version,
// not the cache's: a stale cache neither turns a valid If-Match into a
// failed precondition nor lets a stale one through.
func testCacheStaleIfMatch(t *testing.T, s es.Store) {
	ctx := context.Background()
	a, b := cached(s), cached(s)
	id := newID()
	mustExec(t, a, id, counterCmd{Add: 1}, es.ExecOptions{}) // v1, cached by A
	mustExec(t, b, id, counterCmd{Add: 1}, es.ExecOptions{}) // v2, behind A's back

	// Valid If-Match (the client read v2 elsewhere), stale cache (v1).
	v2 := int64(2)
	res, err := a.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{ExpectedVersion: &v2})
	if err != nil || res.Version != 3 {
		t.Fatalf("If-Match v2 on a cache at v1: %+v, %v; want version 3", res, err)
	}
	mustExec(t, b, id, counterCmd{Add: 1}, es.ExecOptions{}) // v4, behind A's back (A caches v3)

	// Stale If-Match equal to the stale cache: a failed precondition that
	// names the stream's version.
	v3 := int64(3)
	var pre *es.PreconditionError
	_, err = a.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{ExpectedVersion: &v3})
	if !errors.As(err, &pre) || pre.Current != 4 {
		t.Fatalf("If-Match v3 on a stream at v4, cache at v3: got %v, want a precondition failure naming v4", err)
	}
	// The same with a rule broken on the cached state: still the precondition.
	_, err = a.Execute(ctx, id, counterCmd{Add: -1}, es.ExecOptions{ExpectedVersion: &v3})
	if !errors.As(err, &pre) || pre.Current != 4 {
		t.Fatalf("If-Match v3, broken rule, stream at v4: got %v, want a precondition failure naming v4", err)
	}
	assertVersions(t, load(t, s, id, 1, 0), 1, 4)
}

// testCacheIdempotentRepeat: repeats of an idempotent request, from the
// container that ran it (warm) and from another, after the stream moved
// on, answer with the first result and write nothing; another request
// under the key is a mismatch.
func testCacheIdempotentRepeat(t *testing.T, s es.Store) {
	ctx := context.Background()
	a, b := cached(s), cached(s)
	id := newID()
	key := es.IdempotencyKey{Key: "k-" + id, RequestHash: "tag-t"}
	cmd := counterCmd{Add: 1, Tag: "t-" + id}
	first := mustExec(t, a, id, cmd, es.ExecOptions{Idempotency: &key})
	if first.Version != 2 || first.Replayed {
		t.Fatalf("first: %+v", first)
	}
	check := func(name string, svc *es.Service[counter, counterCmd]) {
		t.Helper()
		res, err := svc.Execute(ctx, id, cmd, es.ExecOptions{Idempotency: &key})
		if err != nil || !res.Replayed || res.Version != 2 || res.ID != id {
			t.Errorf("%s: %+v, %v; want the first's answer, version 2, replayed", name, res, err)
		}
	}
	check("warm repeat", a)
	check("repeat from another container", b)
	mustExec(t, b, id, counterCmd{Add: 5}, es.ExecOptions{}) // v3, behind A's back
	check("warm repeat, stale cache", a)
	one := int64(1)
	if res, err := a.Execute(ctx, id, cmd, es.ExecOptions{Idempotency: &key, ExpectedVersion: &one}); err != nil || !res.Replayed || res.Version != 2 {
		t.Errorf("repeat with its If-Match, now stale: %+v, %v; want the first's answer", res, err)
	}
	other := es.IdempotencyKey{Key: key.Key, RequestHash: "add-7"}
	if _, err := a.Execute(ctx, id, counterCmd{Add: 7}, es.ExecOptions{Idempotency: &other}); !errors.Is(err, es.ErrIdempotencyMismatch) {
		t.Errorf("same key, other request, warm: got %v, want ErrIdempotencyMismatch", err)
	}
	agg, err := cached(s).Load(ctx, id)
	if err != nil || agg.Version != 3 || agg.State.N != 6 {
		t.Fatalf("final: %+v, %v; want v3, n 6: a repeat wrote", agg, err)
	}
}

// testCacheTwoContainersConcurrent: writers spread over two services with
// caches of their own, all on one aggregate: every success is one event,
// nothing lost or doubled.
func testCacheTwoContainersConcurrent(t *testing.T, s es.Store) {
	ctx := context.Background()
	svcs := []*es.Service[counter, counterCmd]{cached(s), cached(s)}
	id := newID()
	const writers, commands = 10, 10
	var successes atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range commands {
				_, err := svcs[w%2].Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{})
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
	for i, svc := range svcs {
		// Each container's next command lands on the stream's tip.
		res, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		successes.Add(1)
		if res.Version != successes.Load() || res.State.N != int(successes.Load()) {
			t.Fatalf("container %d: version %d, sum %d, successes %d: want all equal", i, res.Version, res.State.N, successes.Load())
		}
	}
	assertVersions(t, load(t, s, id, 1, 0), 1, successes.Load())
}

// streamCalls counts the reads of a store that keeps snapshots in the
// stream, and passes LoadLatest on (an embedded es.Store alone would hide it).
type streamCalls struct {
	callStore
	latest     atomic.Int64
	latestRecs atomic.Int64
}

func (c *streamCalls) LoadLatest(ctx context.Context, id string, to int64, usable func(es.Snapshot) bool, pageHint int) (es.Snapshot, bool, []es.Record, error) {
	c.latest.Add(1)
	snap, ok, recs, err := c.Store.(es.StreamSnapshots).LoadLatest(ctx, id, to, usable, pageHint)
	c.latestRecs.Add(int64(len(recs)))
	return snap, ok, recs, err
}

// testStreamSnapshots, for a store that keeps snapshots in the stream: a
// load is one LoadLatest returning the events after the latest snapshot;
// time travel and old state schemas still answer right; event readers see
// events only.
func testStreamSnapshots(t *testing.T, s es.Store) {
	ctx := context.Background()
	cs := &streamCalls{callStore: callStore{Store: s}}
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	clock := func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Minute) }
	const every = 10
	svc := es.NewService(counterDecider(), counterRegistry(), cs, es.Options{SnapshotEvery: every, Now: clock})
	id := newID()
	for i := range 25 {
		res, err := svc.Execute(ctx, id, counterCmd{Add: 1}, es.ExecOptions{})
		if err != nil || res.SnapshotErr != nil {
			t.Fatalf("command %d: %v, snapshot: %v", i, err, res.SnapshotErr)
		}
	}
	if cs.snaps.Load() != 0 {
		t.Errorf("%d snapshot reads: a stream snapshot store should be read with LoadLatest only", cs.snaps.Load())
	}
	cs.reset()
	cs.latest.Store(0)
	cs.latestRecs.Store(0)
	agg, err := svc.Load(ctx, id)
	if err != nil || agg.Version != 25 || agg.State.N != 25 {
		t.Fatalf("load: %+v, %v", agg, err)
	}
	if r, _ := cs.calls(); r != 0 || cs.latest.Load() != 1 || cs.latestRecs.Load() != 5 {
		t.Errorf("load: %d other reads, %d LoadLatest returning %d records; want 0, 1 and 5 (after the snapshot at v20)",
			r, cs.latest.Load(), cs.latestRecs.Load())
	}
	for _, v := range []int64{7, 10, 12, 20, 25, 30} {
		at, err := svc.LoadAt(ctx, id, v)
		want := min(v, 25)
		if err != nil || at.Version != want || at.State.N != int(want) {
			t.Errorf("state at v%d: %+v, %v", v, at, err)
		}
	}
	asOf, err := svc.LoadAsOf(ctx, id, start.Add(12*time.Minute+30*time.Second))
	if err != nil || asOf.Version != 12 || asOf.State.N != 12 {
		t.Errorf("state as of v12's time: %+v, %v", asOf, err)
	}
	if before, err := svc.LoadAsOf(ctx, id, start); err != nil || before.Version != 0 {
		t.Errorf("state before the first event: %+v, %v", before, err)
	}
	d2 := counterDecider()
	d2.StateSchema = 2
	cs.latestRecs.Store(0)
	agg2, err := es.NewService(d2, counterRegistry(), cs, es.Options{SnapshotEvery: every}).Load(ctx, id)
	if err != nil || agg2.Version != 25 || agg2.State.N != 25 || cs.latestRecs.Load() != 25 {
		t.Errorf("load past snapshots of an old schema: %+v, %v, %d records; want v25 from all 25", agg2, err, cs.latestRecs.Load())
	}
	// Event readers see the 25 events, no more.
	assertVersions(t, load(t, s, id, 1, 0), 1, 25)
}
