package dynamo_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// counted is the one event of the counter aggregate the feed tests write.
type counted struct {
	N int64 `json:"n"`
}

func (counted) EventType() string { return "counter.counted.v1" }

// count is the counter's one command: it counts By events in one append.
type count struct{ By int }

func counterDecider() es.Decider[int64, count] {
	return es.Decider[int64, count]{
		Type: "counter",
		Decide: func(n int64, c count, _ time.Time) ([]es.Event, error) {
			out := make([]es.Event, c.By)
			for i := range out {
				out[i] = counted{N: n + int64(i) + 1}
			}
			return out, nil
		},
		Evolve: func(n int64, rec es.Record) int64 { return n + 1 },
	}
}

func counterRegistry() *es.Registry {
	r := es.NewRegistry()
	es.Register[counted](r, 1)
	return r
}

// skewed is a clock off the real one by d.
func skewed(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

// slowStore delays some appends between the decision and the write, as a
// paused or throttled writer would: those past the append window are refused
// and decided again.
type slowStore struct {
	*dynamo.Store
	pause   time.Duration // the longest pause
	delayed atomic.Int64
	mu      sync.Mutex
	slowest time.Duration // the longest Append, from the store's window check to its answer
}

func (s *slowStore) Append(ctx context.Context, req es.AppendRequest) error {
	if rand.N(200) == 0 {
		s.delayed.Add(1)
		t := time.NewTimer(rand.N(s.pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	start := time.Now()
	err := s.Store.Append(ctx, req)
	took := time.Since(start)
	s.mu.Lock()
	s.slowest = max(s.slowest, took)
	s.mu.Unlock()
	return err
}

// TestFeedInvariant is the feed's invariant under load: 8 writers with
// clocks up to 200 ms apart, one append in 200 paused up to 4 s between
// deciding and appending, write 5,000 events on 200 aggregates (racing on
// the same aggregates) while a reader, its clock 200 ms ahead, polls the
// feed with random page sizes. The reader sees every event exactly once, each
// aggregate's versions in order, never an event at or behind its cursor; and
// a second reading from the beginning, afterwards, sees the same sequence.
//
// It is not parallel: Go runs it alone, before the package's parallel tests.
// Beside them, on a loaded machine, the reader fell behind its deadline
// (4,908 of 4,993 events seen 17 s after the writers ended).
func TestFeedInvariant(t *testing.T) {
	const (
		writers    = 8
		aggregates = 200
		perAgg     = 25 // 5,000 events
		skew       = 200 * time.Millisecond
		appendWin  = 3 * time.Second
		// The invariant's bound, with 3 s for the emulator to finish a write
		// the append window cut in flight (it answers in milliseconds, but
		// the machine is shared: seconds have been seen at its start).
		feedWin = appendWin + 2*skew + 4*time.Second
	)
	client, tables := newTables(t)
	ctx := t.Context()
	ids := make([]string, aggregates)
	for i := range ids {
		ids[i] = fmt.Sprintf("agg-%03d-%s", i, newID()[:8])
	}

	// Commands of 1 to 3 events each (an append's events share their
	// occurred-at), the aggregates in a new order each round, so that
	// writers race on the same aggregates.
	type job struct {
		id string
		by int
	}
	work := make(chan job, aggregates*perAgg)
	left := make([]int, aggregates)
	for i := range left {
		left[i] = perAgg
	}
	for more := true; more; {
		more = false
		for _, i := range rand.Perm(aggregates) {
			if left[i] > 0 {
				by := min(left[i], 1+rand.N(3))
				left[i] -= by
				work <- job{ids[i], by}
				more = true
			}
		}
	}
	close(work)
	var wg sync.WaitGroup
	var again, unknown atomic.Int64
	stores := make([]*slowStore, writers)
	for w := range writers {
		clock := skewed(time.Duration(w%5-2) * skew / 2)
		stores[w] = &slowStore{Store: dynamo.New(client, tables, dynamo.WithClock(clock), dynamo.WithAppendWindow(appendWin)), pause: appendWin * 4 / 3}
		svc := es.NewService(counterDecider(), counterRegistry(), stores[w], es.Options{Now: clock, RetryBudget: 20 * time.Second})
		wg.Go(func() {
			for j := range work {
				res, err := svc.Execute(ctx, j.id, count{By: j.by}, es.ExecOptions{})
				if err != nil && ctx.Err() == nil {
					// Cut in flight by the append window: written or not,
					// the count below reads what the table holds.
					t.Logf("writer %d on %s: %v", w, j.id, err)
					unknown.Add(1)
					continue
				}
				again.Add(int64(res.Attempts - 1))
			}
		})
	}
	start := time.Now()
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	reader := dynamo.New(client, tables, dynamo.WithClock(skewed(skew)), dynamo.WithFeedWindow(feedWin))
	var (
		cursor dynamo.FeedCursor
		seen   = map[string]bool{}
		last   = map[string]int64{}
		order  []string
		polls  int
		done   time.Time
	)
	total := -1 // the events in the table, once the writers are done
	for total < 0 || len(order) < total {
		select {
		case <-writing:
			if done.IsZero() {
				done = time.Now()
				total = 0
				for _, id := range ids {
					recs, err := reader.Load(ctx, id, 1, 0)
					if err != nil {
						t.Fatal(err)
					}
					total += len(recs)
				}
			}
		default:
		}
		if !done.IsZero() && time.Since(done) > feedWin+10*time.Second {
			t.Fatalf("after the writers ended, the reader saw %d of %d events", len(order), total)
		}
		page, err := reader.ReadFeed(ctx, cursor, 1+rand.N(200))
		if err != nil {
			t.Fatal(err)
		}
		polls++
		for _, e := range page.Events {
			r := e.Record
			if !cursor.Before(e.Position) {
				t.Fatalf("%s v%d at %v: at or behind the cursor %v", r.AggregateID, r.Version, e.Position, cursor)
			}
			if seen[r.ID] {
				t.Fatalf("%s v%d seen twice", r.AggregateID, r.Version)
			}
			if r.Version != last[r.AggregateID]+1 {
				t.Fatalf("%s v%d after v%d", r.AggregateID, r.Version, last[r.AggregateID])
			}
			seen[r.ID], last[r.AggregateID], cursor = true, r.Version, e.Position
			order = append(order, r.ID)
		}
		if page.Next != cursor {
			t.Fatalf("next cursor %v, want %v (the last event's, or the one read from)", page.Next, cursor)
		}
		time.Sleep(100 * time.Millisecond) // polling; the loop's deadline bounds it
	}
	<-writing
	delayed, slowest := 0, time.Duration(0)
	for _, s := range stores {
		delayed += int(s.delayed.Load())
		slowest = max(slowest, s.slowest)
	}
	t.Logf("%d events written in %s, read in %d polls; %d appends delayed, %d attempts again (conflicts, refused appends), %d outcomes unknown; slowest append %s",
		len(order), done.Sub(start).Round(time.Millisecond), polls, delayed, again.Load(), unknown.Load(), slowest.Round(time.Millisecond))
	if len(order) < aggregates*perAgg-3*int(unknown.Load()) {
		t.Fatalf("%d events, want about %d", len(order), aggregates*perAgg)
	}

	// Read again from the beginning: the same events in the same order.
	var second []string
	for c := (dynamo.FeedCursor{}); ; {
		page, err := reader.ReadFeed(ctx, c, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			second = append(second, e.Record.ID)
		}
		c = page.Next
	}
	if len(second) != len(order) {
		t.Fatalf("second reading: %d events, first %d", len(second), len(order))
	}
	for i := range order {
		if second[i] != order[i] {
			t.Fatalf("second reading differs at %d: %s, first %s", i, second[i], order[i])
		}
	}
}

// TestFeedAppendWindow: an append sent later than the window after its
// events occurred is refused as busy, before anything is written.
func TestFeedAppendWindow(t *testing.T) {
	t.Parallel()
	store := newStore(t, dynamo.WithAppendWindow(time.Second))
	id := newID()
	late := records(id, 0, 1, 10)
	late[0].OccurredAt = time.Now().Add(-2 * time.Second)
	err := store.Append(t.Context(), es.AppendRequest{AggregateID: id, Records: late})
	if !errors.Is(err, es.ErrBusy) {
		t.Fatalf("late append: %v, want ErrBusy", err)
	}
	if recs, err := store.Load(t.Context(), id, 1, 0); err != nil || len(recs) != 0 {
		t.Fatalf("after a refused append: %d events, %v", len(recs), err)
	}
	onTime := records(id, 0, 1, 10)
	onTime[0].OccurredAt = time.Now()
	if err := store.Append(t.Context(), es.AppendRequest{AggregateID: id, Records: onTime}); err != nil {
		t.Fatal(err)
	}
}

// TestFeedPages: the horizon holds back recent events, an empty page keeps
// the cursor, FeedFrom starts at a time, and items that are not events stay
// out of the feed.
func TestFeedPages(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	now := time.Now()
	store := dynamo.New(client, tables, dynamo.WithClock(func() time.Time { return now }), dynamo.WithFeedWindow(time.Minute))
	id := newID()
	recs := records(id, 0, 12, 10)
	for i := range recs {
		recs[i].OccurredAt = now.Add(time.Duration(i-11) * time.Minute) // v11 and v12 within the window
	}
	if err := store.Append(t.Context(), es.AppendRequest{AggregateID: id, Records: recs}); err != nil {
		t.Fatal(err)
	}
	page, err := store.ReadFeed(t.Context(), dynamo.FeedCursor{}, 5)
	if err != nil || len(page.Events) != 5 || page.Events[4].Record.Version != 5 {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page, err = store.ReadFeed(t.Context(), page.Next, 100)
	if err != nil || len(page.Events) != 5 || page.Events[4].Record.Version != 10 {
		t.Fatalf("second page: %d events, %v; want v6..v10 (v11 and v12 are past the horizon)", len(page.Events), err)
	}
	empty, err := store.ReadFeed(t.Context(), page.Next, 100)
	if err != nil || len(empty.Events) != 0 || empty.Next != page.Next {
		t.Fatalf("caught up: %+v, %v; want no events and the same cursor", empty, err)
	}
	from, err := store.ReadFeed(t.Context(), dynamo.FeedFrom(recs[9].OccurredAt), 100)
	if err != nil || len(from.Events) != 1 || from.Events[0].Record.Version != 10 {
		t.Fatalf("from v10's time: %+v, %v", from, err)
	}
	// A cursor survives its opaque form.
	c, err := dynamo.ParseFeedCursor(page.Next.String())
	if err != nil || c != page.Next {
		t.Fatalf("cursor round trip: %v, %v", c, err)
	}
	// Not an event: no feed attributes, even in an event's partition.
	snap := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: id}, "sk": &types.AttributeValueMemberN{Value: "0"},
		"state": &types.AttributeValueMemberS{Value: "{}"},
	}
	if dynamo.IsEventItem(snap) {
		t.Fatal("a snapshot item counts as an event")
	}
	if !dynamo.IsEventItem(dynamo.ItemFromRecord(recs[0])) {
		t.Fatal("an event item does not count as an event")
	}
}

// TestFeedCursorForged: cursors ReadFeed did not hand out are refused.
func TestFeedCursorForged(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"!!", enc("x"), enc("f1:"), enc("f1:yesterday"), enc("f2:2026-01-02T03:04:05.000000000Z"),
		enc("f1:2026-01-02T03:04:05.000000000Z#"), enc("f1:2026-01-02T03:04:05.000000000Z#a#1"),
		enc("f1:2026-01-02T03:04:05.000000000Z#a#00000000000000000000"),
		enc("f1:2026-01-02T03:04:05.000000000Z##00000000000000000001"),
	} {
		if _, err := dynamo.ParseFeedCursor(s); !errors.Is(err, dynamo.ErrBadFeedCursor) {
			t.Errorf("ParseFeedCursor(%q) = %v, want ErrBadFeedCursor", s, err)
		}
	}
	for _, s := range []string{"", dynamo.FeedCursor{}.String(), dynamo.FeedFrom(time.Now()).String(),
		enc("f1:2026-01-02T03:04:05.000000000Z#a#b#00000000000000000012")} {
		if _, err := dynamo.ParseFeedCursor(s); err != nil {
			t.Errorf("ParseFeedCursor(%q): %v", s, err)
		}
	}
}
