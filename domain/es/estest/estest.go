// Package estest is the conformance suite every es.Store must pass: the
// in-memory store in unit tests, the DynamoDB store against DynamoDB Local.
// Call Run from a test with a constructor that returns a fresh, empty store.
package estest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
)

// NewStore returns a fresh store for one test; it registers its own cleanup.
type NewStore func(t *testing.T) es.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s es.Store)
	}{
		{"AppendAndLoadOrder", testAppendAndLoadOrder},
		{"LoadRange", testLoadRange},
		{"LoadPages", testLoadPages},
		{"ExpectedVersionConflict", testExpectedVersionConflict},
		{"InvalidAppend", testInvalidAppend},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"GuardUniquenessUnderRace", testGuardRace},
		{"GuardClaimRelease", testGuardClaimRelease},
		{"AtomicAppend", testAtomicAppend},
		{"IdempotencyRecord", testIdempotencyRecord},
		{"IdempotencyExpired", testIdempotencyExpired},
		{"Snapshots", testSnapshots},
		{"SizeLimits", testSizeLimits},
		{"ServiceConcurrentCommands", testServiceConcurrentCommands},
		{"ServiceIdempotency", testServiceIdempotency},
		{"ServiceIdempotentRepeatRacesFirst", testServiceIdempotentRepeatRacesFirst},
		{"ServiceSnapshotAndTimeTravel", testServiceSnapshotAndTimeTravel},
		{"CacheWarmCommandWritesOnly", testCacheWarmCommandWritesOnly},
		{"CacheStale", testCacheStale},
		{"CacheStaleIfMatch", testCacheStaleIfMatch},
		{"CacheIdempotentRepeat", testCacheIdempotentRepeat},
		{"CacheTwoContainersConcurrent", testCacheTwoContainersConcurrent},
	}
	if _, ok := newStore(t).(es.StreamSnapshots); ok {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, s es.Store)
		}{"StreamSnapshots", testStreamSnapshots})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// records makes n records of stream id following version after.
func records(id string, after int64, n int) []es.Record {
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	out := make([]es.Record, n)
	for i := range out {
		v := after + int64(i) + 1
		out[i] = es.Record{
			ID: newID(), AggregateID: id, AggregateType: "counter", Version: v,
			Type: "counter.added.v1", SchemaVersion: 1,
			OccurredAt: base.Add(time.Duration(v) * time.Second),
			Data:       json.RawMessage(fmt.Sprintf(`{"n":%d}`, v)),
			Metadata: es.Metadata{Actor: "alice", Reason: "test", CorrelationID: "corr-" + id,
				CausationID: "cause", CommandID: "cmd", RequestID: "req"},
		}
	}
	return out
}

func appendN(t *testing.T, s es.Store, id string, after int64, n int) []es.Record {
	t.Helper()
	recs := records(id, after, n)
	if err := s.Append(context.Background(), es.AppendRequest{AggregateID: id, ExpectedVersion: after, Records: recs}); err != nil {
		t.Fatalf("append %d after v%d: %v", n, after, err)
	}
	return recs
}

func load(t *testing.T, s es.Store, id string, from, to int64) []es.Record {
	t.Helper()
	recs, err := s.Load(context.Background(), id, from, to)
	if err != nil {
		t.Fatalf("load %s [%d,%d]: %v", id, from, to, err)
	}
	return recs
}

func assertVersions(t *testing.T, recs []es.Record, from, to int64) {
	t.Helper()
	if int64(len(recs)) != to-from+1 {
		t.Fatalf("got %d records, want versions %d..%d", len(recs), from, to)
	}
	for i, r := range recs {
		if r.Version != from+int64(i) {
			t.Fatalf("record %d has version %d, want %d", i, r.Version, from+int64(i))
		}
	}
}

func testAppendAndLoadOrder(t *testing.T, s es.Store) {
	id := newID()
	want := append(appendN(t, s, id, 0, 3), appendN(t, s, id, 3, 2)...)
	got := load(t, s, id, 1, 0)
	assertVersions(t, got, 1, 5)
	for i := range want {
		w, g := want[i], got[i]
		w.Event = nil
		if g.ID != w.ID || g.AggregateID != w.AggregateID || g.AggregateType != w.AggregateType ||
			g.Type != w.Type || g.SchemaVersion != w.SchemaVersion || !g.OccurredAt.Equal(w.OccurredAt) ||
			g.Metadata != w.Metadata || !jsonEqual(g.Data, w.Data) {
			t.Errorf("record %d round trip:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if other := load(t, s, newID(), 1, 0); len(other) != 0 {
		t.Errorf("unknown stream loaded %d records, want none", len(other))
	}
}

func testLoadRange(t *testing.T, s es.Store) {
	id := newID()
	appendN(t, s, id, 0, 10)
	assertVersions(t, load(t, s, id, 4, 7), 4, 7)
	assertVersions(t, load(t, s, id, 8, 0), 8, 10)
	assertVersions(t, load(t, s, id, 0, 2), 1, 2)
	assertVersions(t, load(t, s, id, 9, 100), 9, 10)
	if got := load(t, s, id, 11, 0); len(got) != 0 {
		t.Errorf("load past the end returned %d records", len(got))
	}
}

// testLoadPages: a store that hands streams out page by page
// (es.PageLoader) hands out what Load returns, in order, in non-empty pages,
// and stops at the callback's first error. The stream is long and heavy
// enough to take several pages in each store: more records than the memory
// store's page (256), more bytes than a DynamoDB Query page (1 MB).
func testLoadPages(t *testing.T, s es.Store) {
	pl, ok := s.(es.PageLoader)
	if !ok {
		t.Skip("the store has no LoadPages: loads use Load")
	}
	ctx := context.Background()
	id := newID()
	for after := int64(0); after < 300; after += 100 {
		appendN(t, s, id, after, 100)
	}
	for after := int64(300); after < 308; after += 4 {
		heavy := records(id, after, 4)
		for i := range heavy {
			heavy[i].Data = json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("p", 300*1024)))
		}
		if err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: after, Records: heavy}); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(id string, from, to int64) (int, []es.Record) {
		t.Helper()
		n := 0
		var got []es.Record
		err := pl.LoadPages(ctx, id, from, to, func(page []es.Record) error {
			if len(page) == 0 {
				t.Errorf("[%d,%d]: an empty page", from, to)
			}
			n++
			got = append(got, page...)
			return nil
		})
		if err != nil {
			t.Fatalf("pages [%d,%d]: %v", from, to, err)
		}
		return n, got
	}
	n, all := pages(id, 1, 0)
	if n < 2 {
		t.Errorf("308 records, 2.4 MB, in %d page: want several", n)
	}
	t.Logf("308 records in %d pages", n)
	for _, r := range [][2]int64{{1, 0}, {0, 3}, {5, 17}, {255, 258}, {250, 305}, {305, 0}, {308, 308}, {309, 0}, {7, 6}} {
		_, got := pages(id, r[0], r[1])
		want := load(t, s, id, r[0], r[1])
		if len(got) != len(want) {
			t.Fatalf("[%d,%d]: %d records in pages, Load %d", r[0], r[1], len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.Version != w.Version || g.Type != w.Type || !g.OccurredAt.Equal(w.OccurredAt) ||
				g.Metadata != w.Metadata || string(g.Data) != string(w.Data) {
				t.Fatalf("[%d,%d] record %d: pages %+v, Load %+v", r[0], r[1], i, g.Version, w.Version)
			}
		}
	}
	if n, got := pages(newID(), 1, 0); n != 0 || len(got) != 0 {
		t.Errorf("an unknown stream: %d pages, %d records", n, len(got))
	}
	if len(all) != 308 || all[307].Version != 308 {
		t.Fatalf("whole stream: %d records", len(all))
	}
	// The callback's error stops the load and is returned.
	stop := errors.New("enough")
	calls := 0
	err := pl.LoadPages(ctx, id, 1, 0, func([]es.Record) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("stopped at the first page: %v after %d calls", err, calls)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := pl.LoadPages(cancelled, id, 1, 0, func([]es.Record) error { return nil }); err == nil {
		t.Error("a cancelled context loaded")
	}
}

func testExpectedVersionConflict(t *testing.T, s es.Store) {
	ctx := context.Background()
	id := newID()
	appendN(t, s, id, 0, 2)
	// A writer that loaded v1 and appends two events over the existing v2.
	err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 1, Records: records(id, 1, 2)})
	if !errors.Is(err, es.ErrConflict) {
		t.Fatalf("append at stale version: got %v, want ErrConflict", err)
	}
	assertVersions(t, load(t, s, id, 1, 0), 1, 2)
	err = s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 0, Records: records(id, 0, 1)})
	if !errors.Is(err, es.ErrConflict) {
		t.Fatalf("second create: got %v, want ErrConflict", err)
	}
}

func testInvalidAppend(t *testing.T, s es.Store) {
	id := newID()
	bad := records(id, 0, 2)
	bad[1].Version = 3 // a gap
	for name, req := range map[string]es.AppendRequest{
		"gap":          {AggregateID: id, Records: bad},
		"no aggregate": {Records: records(id, 0, 1)},
		"empty":        {AggregateID: id},
		"other stream": {AggregateID: id, Records: records(newID(), 0, 1)},
	} {
		if err := s.Append(context.Background(), req); !errors.Is(err, es.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want ErrInvalidAppend", name, err)
		}
	}
	if got := load(t, s, id, 1, 0); len(got) != 0 {
		t.Errorf("invalid appends wrote %d records", len(got))
	}
}

// testConcurrentAppenders: writers race for the next version of one stream;
// each version is won exactly once and the stream has no gap.
func testConcurrentAppenders(t *testing.T, s es.Store) {
	ctx := context.Background()
	id := newID()
	const writers, tries = 10, 10
	var mu sync.Mutex
	wins := 0
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range tries {
				head, err := s.Load(ctx, id, 1, 0)
				if err != nil {
					t.Error(err)
					return
				}
				recs := records(id, int64(len(head)), 1)
				err = s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: int64(len(head)), Records: recs})
				switch {
				case err == nil:
					mu.Lock()
					wins++
					ids[recs[0].ID] = true
					mu.Unlock()
				case !errors.Is(err, es.ErrConflict):
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := load(t, s, id, 1, 0)
	assertVersions(t, got, 1, int64(wins))
	for _, r := range got {
		if !ids[r.ID] {
			t.Errorf("stored event %s at v%d was not reported as appended", r.ID, r.Version)
		}
	}
}

// testGuardRace: two aggregates claim the same value at once, many rounds;
// exactly one wins each round and the loser writes nothing.
func testGuardRace(t *testing.T, s es.Store) {
	ctx := context.Background()
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	for round := range rounds {
		key := fmt.Sprintf("email#race-%d-%s@example.com", round, newID())
		a, b := newID(), newID()
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, id := range []string{a, b} {
			wg.Go(func() {
				errs[i] = s.Append(ctx, es.AppendRequest{AggregateID: id, Records: records(id, 0, 1),
					Claims: []es.Guard{{Key: key, Owner: id}}})
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			var dup *es.DuplicateError
			switch {
			case err == nil:
				won++
			case errors.As(err, &dup) && dup.Key == key && dup.Field() == "email":
				if got := load(t, s, []string{a, b}[i], 1, 0); len(got) != 0 {
					t.Fatalf("round %d: the loser wrote %d events", round, len(got))
				}
			default:
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d claims succeeded, want exactly 1 (%v)", round, won, errs)
		}
	}
}

func testGuardClaimRelease(t *testing.T, s es.Store) {
	ctx := context.Background()
	key := "email#" + newID() + "@example.com"
	a, b := newID(), newID()
	claim := func(id string, after int64) error {
		return s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: after, Records: records(id, after, 1),
			Claims: []es.Guard{{Key: key, Owner: id}}})
	}
	if err := claim(a, 0); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := claim(a, 1); err != nil {
		t.Fatalf("re-claim by the owner: %v", err)
	}
	if err := claim(b, 0); !errors.Is(err, es.ErrDuplicate) {
		t.Fatalf("claim of a held value: got %v, want ErrDuplicate", err)
	}
	// b may not release what a holds.
	err := s.Append(ctx, es.AppendRequest{AggregateID: b, Records: records(b, 0, 1), Releases: []es.Guard{{Key: key, Owner: b}}})
	if !errors.Is(err, es.ErrConflict) {
		t.Fatalf("release by a non-owner: got %v, want ErrConflict", err)
	}
	err = s.Append(ctx, es.AppendRequest{AggregateID: a, ExpectedVersion: 2, Records: records(a, 2, 1), Releases: []es.Guard{{Key: key, Owner: a}}})
	if err != nil {
		t.Fatalf("release by the owner: %v", err)
	}
	if err := claim(b, 0); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// testAtomicAppend: when any part of an append fails, nothing of it is written.
func testAtomicAppend(t *testing.T, s es.Store) {
	ctx := context.Background()
	key := "email#" + newID() + "@example.com"
	holder, id := newID(), newID()
	if err := s.Append(ctx, es.AppendRequest{AggregateID: holder, Records: records(holder, 0, 1),
		Claims: []es.Guard{{Key: key, Owner: holder}}}); err != nil {
		t.Fatal(err)
	}
	free := "email#" + newID() + "@example.com"
	err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: records(id, 0, 3),
		Claims:      []es.Guard{{Key: free, Owner: id}, {Key: key, Owner: id}},
		Idempotency: &es.IdempotencyRecord{Key: "atomic-" + id, RequestHash: "h", AggregateID: id, Version: 3, ExpiresAt: time.Now().Add(time.Hour)}})
	if !errors.Is(err, es.ErrDuplicate) {
		t.Fatalf("got %v, want ErrDuplicate", err)
	}
	if got := load(t, s, id, 1, 0); len(got) != 0 {
		t.Errorf("failed append wrote %d events", len(got))
	}
	if _, ok, _ := s.Idempotency(ctx, "atomic-"+id); ok {
		t.Error("failed append wrote its idempotency record")
	}
	// The free value was not taken by the failed append.
	other := newID()
	if err := s.Append(ctx, es.AppendRequest{AggregateID: other, Records: records(other, 0, 1),
		Claims: []es.Guard{{Key: free, Owner: other}}}); err != nil {
		t.Errorf("value claimed by a failed append is still held: %v", err)
	}
}

func testIdempotencyRecord(t *testing.T, s es.Store) {
	ctx := context.Background()
	id, key := newID(), "key-"+newID()
	now := time.Now().UTC().Truncate(time.Second)
	rec := es.IdempotencyRecord{Key: key, RequestHash: "hash-1", AggregateID: id, Version: 1, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if _, ok, err := s.Idempotency(ctx, key); err != nil || ok {
		t.Fatalf("unknown key: ok=%v err=%v", ok, err)
	}
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: records(id, 0, 1), Idempotency: &rec}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Idempotency(ctx, key)
	if err != nil || !ok {
		t.Fatalf("stored key: ok=%v err=%v", ok, err)
	}
	if got.RequestHash != rec.RequestHash || got.AggregateID != id || got.Version != 1 || !got.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Errorf("got %+v, want %+v", got, rec)
	}
	rec2 := rec
	rec2.Version = 2
	err = s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 1, Records: records(id, 1, 1), Idempotency: &rec2})
	if !errors.Is(err, es.ErrIdempotencyReplay) {
		t.Fatalf("second use of a key: got %v, want ErrIdempotencyReplay", err)
	}
	// A repeat that would also conflict and take a held value is told it is a
	// repeat: the key wins over the other failures.
	err = s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 0, Records: records(id, 0, 1), Idempotency: &rec2,
		Claims: []es.Guard{{Key: "email#held-" + id, Owner: id}}})
	if !errors.Is(err, es.ErrIdempotencyReplay) {
		t.Fatalf("repeat that also conflicts: got %v, want ErrIdempotencyReplay", err)
	}
	assertVersions(t, load(t, s, id, 1, 0), 1, 1)
	// A record alone (a no-op command made with a key) is a valid append.
	key2 := "key-" + newID()
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 1,
		Idempotency: &es.IdempotencyRecord{Key: key2, RequestHash: "h", AggregateID: id, Version: 1, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatalf("idempotency record alone: %v", err)
	}
}

func testIdempotencyExpired(t *testing.T, s es.Store) {
	ctx := context.Background()
	id, key := newID(), "key-"+newID()
	past := time.Now().Add(-time.Hour).UTC()
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: records(id, 0, 1),
		Idempotency: &es.IdempotencyRecord{Key: key, RequestHash: "old", AggregateID: id, Version: 1, ExpiresAt: past}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Idempotency(ctx, key); err != nil || ok {
		t.Fatalf("expired key: ok=%v err=%v, want absent", ok, err)
	}
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 1, Records: records(id, 1, 1),
		Idempotency: &es.IdempotencyRecord{Key: key, RequestHash: "new", AggregateID: id, Version: 2, ExpiresAt: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatalf("reuse of an expired key: %v", err)
	}
}

func testSnapshots(t *testing.T, s es.Store) {
	ctx := context.Background()
	id := newID()
	if _, ok, err := s.Snapshot(ctx, id); err != nil || ok {
		t.Fatalf("no snapshot yet: ok=%v err=%v", ok, err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	put := func(v int64) {
		t.Helper()
		snap := es.Snapshot{AggregateID: id, Version: v, SchemaVersion: 2, State: json.RawMessage(fmt.Sprintf(`{"v":%d}`, v)), UpdatedAt: at, TakenAt: at}
		if err := s.PutSnapshot(ctx, snap); err != nil {
			t.Fatalf("put snapshot v%d: %v", v, err)
		}
	}
	put(100)
	put(200)
	put(150) // older than what is stored: ignored, not an error
	got, ok, err := s.Snapshot(ctx, id)
	if err != nil || !ok {
		t.Fatalf("get: ok=%v err=%v", ok, err)
	}
	if got.Version != 200 || got.SchemaVersion != 2 || !jsonEqual(got.State, json.RawMessage(`{"v":200}`)) || !got.UpdatedAt.Equal(at) {
		t.Errorf("got %+v, want version 200", got)
	}
}

func testSizeLimits(t *testing.T, s es.Store) {
	ctx := context.Background()
	id := newID()
	big := records(id, 0, 1)
	big[0].Data = json.RawMessage(`"` + strings.Repeat("x", 410*1024) + `"`)
	many := records(id, 0, 101)
	heavy := records(id, 0, 11)
	for i := range heavy {
		heavy[i].Data = json.RawMessage(`"` + strings.Repeat("y", 390*1024) + `"`)
	}
	for name, recs := range map[string][]es.Record{"item over 400 KB": big, "101 items": many, "over 4 MB": heavy} {
		var lim *es.LimitError
		err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: recs})
		if !errors.Is(err, es.ErrTooLarge) || !errors.As(err, &lim) {
			t.Errorf("%s: got %v, want a LimitError", name, err)
		}
	}
	if got := load(t, s, id, 1, 0); len(got) != 0 {
		t.Errorf("rejected appends wrote %d events", len(got))
	}
	// Just under the limits passes.
	ok := records(id, 0, 99)
	ok[0].Data = json.RawMessage(`"` + strings.Repeat("z", 300*1024) + `"`)
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: ok,
		Idempotency: &es.IdempotencyRecord{Key: "lim-" + id, RequestHash: "h", AggregateID: id, Version: 99, ExpiresAt: time.Now().Add(time.Hour)}}); err != nil {
		t.Errorf("100 items under 4 MB: %v", err)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
