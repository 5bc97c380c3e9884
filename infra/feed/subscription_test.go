package feed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// projection is a per-aggregate fold with an applied version, as the
// read-model projections have: an event at or below it is a repeat,
// skipped; one beyond the next is a gap, an error.
type projection struct {
	mu      sync.Mutex
	applied map[string]int64
	repeats int
	calls   int
	failAt  int // the call that fails, 0 for none
}

var errInjected = errors.New("injected failure")

func (p *projection) handle(_ context.Context, recs []es.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.calls == p.failAt {
		return errInjected
	}
	for _, r := range recs {
		switch v := p.applied[r.AggregateID]; {
		case r.Version <= v:
			p.repeats++
		case r.Version == v+1:
			p.applied[r.AggregateID] = r.Version
		default:
			return fmt.Errorf("gap: %s v%d after v%d", r.AggregateID, r.Version, v)
		}
	}
	return nil
}

func (p *projection) total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, v := range p.applied {
		n += v
	}
	return n
}

// TestCatchUpThenFollow: a projection started after 2,000 events catches up
// from the feed (interrupted once by a failure, resumed from its
// checkpoint), then follows live writes; it ends with every event applied
// once, in each aggregate's order, and repeats only of the page that failed.
func TestCatchUpThenFollow(t *testing.T) {
	ctx := t.Context()
	client := awstest.DynamoDB(t)
	tables := dynamo.Tables{Events: awstest.TableName("events"), Guards: awstest.TableName("guards"), Snapshots: awstest.TableName("snapshots")}
	rmTable := awstest.TableName("readmodel")
	if err := dynamo.CreateTables(ctx, client, tables); err != nil {
		t.Fatal(err)
	}
	if err := userviews.CreateTable(ctx, client, rmTable); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = dynamo.DeleteTables(ctx, client, tables)
		_ = readmodel.DeleteTable(ctx, client, rmTable)
	})
	// As wide as production's: the machine running the tests may be slow.
	const appendWin, feedWin = 5 * time.Second, 8 * time.Second
	writer := dynamo.New(client, tables, dynamo.WithAppendWindow(appendWin))
	reader := dynamo.New(client, tables, dynamo.WithFeedWindow(feedWin))
	ids := make([]string, 20)
	versions := make([]int64, len(ids))
	write := func(i, n int) {
		t.Helper()
		recs := make([]es.Record, n)
		now := time.Now()
		for j := range recs {
			versions[i]++
			recs[j] = es.Record{ID: uuid.Must(uuid.NewV7()).String(), AggregateID: ids[i], AggregateType: "counter",
				Version: versions[i], Type: "counter.counted.v1", SchemaVersion: 1, OccurredAt: now,
				Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, versions[i]))}
		}
		err := writer.Append(ctx, es.AppendRequest{AggregateID: ids[i], ExpectedVersion: versions[i] - int64(n), Records: recs})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		ids[i] = uuid.NewString()
		write(i, 100) // 2,000 events before the projection starts
	}

	proj := &projection{applied: map[string]int64{}, failAt: 4}
	sub := func() *feed.Subscription {
		return &feed.Subscription{Name: "counter-" + ids[0][:8], Feed: reader, Checkpoints: feed.NewCheckpoints(client, rmTable),
			Handle: proj.handle, PageSize: 300, Poll: 50 * time.Millisecond}
	}
	// The events are not yet past the horizon: wait until they are.
	time.Sleep(feedWin)
	if _, err := sub().CatchUp(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("first run: %v, want the injected failure", err)
	}
	p, err := sub().CatchUp(ctx)
	if err != nil || proj.total() != 2000 || proj.repeats != 0 {
		t.Fatalf("resumed catch-up: %+v, %v; applied %d, repeats %d", p, err, proj.total(), proj.repeats)
	}

	// Live: follow while 200 more events are written.
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := sub().Follow(fctx); done <- err }()
	for k := range 200 {
		write(k%len(ids), 1)
	}
	deadline := time.Now().Add(feedWin + 30*time.Second)
	for proj.total() < 2200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if proj.total() != 2200 || proj.repeats != 0 {
		t.Fatalf("after following: applied %d of 2200, %d repeats", proj.total(), proj.repeats)
	}
	for i, id := range ids {
		if proj.applied[id] != versions[i] {
			t.Errorf("%s at v%d, want v%d", id, proj.applied[id], versions[i])
		}
	}
	// A checkpoint never moves back. (It may still move forward: a save the
	// cancelled follower gave up on can reach the table after the follower
	// returned, as a request whose reply is lost does.)
	cps := feed.NewCheckpoints(client, rmTable)
	before, _, _ := cps.Load(ctx, sub().Name)
	if err := cps.Save(ctx, sub().Name, dynamo.FeedCursor{}); err != nil {
		t.Fatal(err)
	}
	if after, _, _ := cps.Load(ctx, sub().Name); after.Before(before) {
		t.Fatalf("checkpoint moved back from %v to %v", before, after)
	}
}
