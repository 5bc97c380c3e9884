package readmodel_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Two projections as the core sees them: names, in a stable order.
const (
	projA = "user-view"
	projB = "actor-activity"
)

var projections = []string{projA, projB}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	s := readmodeltest.Store(t)
	ctx := t.Context()
	if cps, err := s.CheckpointsOf(ctx, projections); len(cps) != 0 || err != nil {
		t.Fatalf("empty table: %v, %v", cps, err)
	}
	steps := []readmodel.Checkpoint{
		{Projection: projA, LastEventID: "e2", LastEventAt: t0.Add(2 * time.Second), ProcessedAt: t0.Add(time.Minute), Processed: 3},
		// An older batch finishing later: the last event stays, the count grows.
		{Projection: projA, LastEventID: "e1", LastEventAt: t0.Add(time.Second), ProcessedAt: t0.Add(2 * time.Minute), Processed: 2},
		{Projection: projB, LastEventID: "e9", LastEventAt: t0.Add(9 * time.Second), ProcessedAt: t0.Add(3 * time.Minute), Processed: 1},
	}
	for _, c := range steps {
		if err := s.AdvanceCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CheckpointsOf(ctx, projections)
	if err != nil {
		t.Fatal(err)
	}
	want := []readmodel.Checkpoint{
		{Projection: projA, LastEventID: "e2", LastEventAt: t0.Add(2 * time.Second), ProcessedAt: t0.Add(2 * time.Minute), Processed: 5},
		steps[2],
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("checkpoints:\ngot  %+v\nwant %+v", got, want)
	}
}
