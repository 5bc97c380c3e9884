package projector_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// counting is a projection the projector has never heard of: it keeps each
// aggregate's applied version in memory and counts its writes.
type counting struct {
	types   []string // EventTypes; nil: every event
	mu      sync.Mutex
	applied map[string]int64
	writes  map[string]int // by aggregate
}

func (c *counting) Name() string                   { return "counting" }
func (c *counting) EventTypes() []string           { return c.types }
func (c *counting) Decodes() bool                  { return false }
func (c *counting) Owns(logicalPK, sk string) bool { return false }

func (c *counting) Read(_ context.Context, _ *readmodel.Store, id string) (projection.State, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return nil, c.applied[id], nil
}

func (c *counting) Write(_ context.Context, _ *readmodel.Store, _ projection.State, applied int64, run []es.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := run[0].AggregateID
	if c.applied[id] != applied {
		return readmodel.ErrConflict
	}
	if run[0].Version != applied+1 {
		return fmt.Errorf("run of %s starts at v%d after v%d", id, run[0].Version, applied)
	}
	c.applied[id] = run[len(run)-1].Version
	c.writes[id]++
	return nil
}

func (c *counting) Put(context.Context, *readmodel.Store, []es.Record, bool) error { return nil }

func (c *counting) Audit(context.Context, *readmodel.Store, []es.Record) ([]projection.Difference, error) {
	return nil, nil
}

// TestAnyRegisteredProjectionRuns: a projection registered next to the
// User service's is run like them, by the interface alone: one write per
// aggregate per batch, a run of several events coalesced into it, nothing
// written for a redelivered batch, and the checkpoint under its name.
func TestAnyRegisteredProjectionRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := &counting{applied: map[string]int64{}, writes: map[string]int{}}
	p := projector.New(e.events, user.NewRegistry(), e.views,
		append(userviews.Projections(), c), testLogger(t), time.Now)
	a, b := newID(), newID()
	recsA, recsB := life(t, e, a, "", 4), life(t, e, b, "", 3)
	msgs := messages(t, recsA[0], recsB[0], recsA[1], recsA[2], recsB[1], recsA[3], recsB[2])
	for round := range 2 { // the second is a redelivery: duplicates only
		if resp := handle(t, p, msgs...); len(resp.BatchItemFailures) > 0 {
			t.Fatalf("round %d: failures %v", round, failedIDs(resp))
		}
	}
	if c.applied[a] != 4 || c.applied[b] != 3 {
		t.Errorf("applied %v, want %s at v4 and %s at v3", c.applied, a, b)
	}
	if c.writes[a] != 1 || c.writes[b] != 1 {
		t.Errorf("writes %v, want one per aggregate", c.writes)
	}
	cps, err := e.views.CheckpointsOf(t.Context(), projection.Names(append(userviews.Projections(), c)))
	if err != nil {
		t.Fatal(err)
	}
	processed := map[string]int64{}
	for _, cp := range cps {
		processed[cp.Projection] = cp.Processed
	}
	if processed["counting"] != 7 {
		t.Errorf("checkpoints %+v: want counting at 7 events processed", cps)
	}
}

// TestAProjectionIsHandedOnlyItsOwnStreams: the projections queue carries
// every kind of aggregate (the relay routes "*" to it), so a projection
// whose EventTypes name another kind's events is never handed a user's
// stream, while one that consumes every event is; the user projections go
// on as before.
func TestAProjectionIsHandedOnlyItsOwnStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := &counting{types: []string{"team.created", "team.renamed"}, applied: map[string]int64{}, writes: map[string]int{}}
	every := &counting{applied: map[string]int64{}, writes: map[string]int{}}
	p := projector.New(e.events, user.NewRegistry(), e.views,
		append(userviews.Projections(), other, every), testLogger(t), time.Now)
	a := newID()
	recs := life(t, e, a, "", 3)
	if resp := handle(t, p, messages(t, recs...)...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	if len(other.writes) != 0 || len(other.applied) != 0 {
		t.Errorf("a projection of other events was handed a user's stream: writes %v", other.writes)
	}
	if every.applied[a] != 3 {
		t.Errorf("a projection of every event applied %v, want %s at v3", every.applied, a)
	}
	if v, _, err := e.views.UserViewForUpdate(t.Context(), a); err != nil || v.Version != 3 {
		t.Errorf("user view at v%d, %v; want v3", v.Version, err)
	}
}
