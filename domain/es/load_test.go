package es_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
)

// brokenSnapshots fails every snapshot read, as a snapshots table that is
// throttled or unreachable does.
type brokenSnapshots struct {
	*memory.Store
	err error
}

func (b brokenSnapshots) Snapshot(context.Context, string) (es.Snapshot, bool, error) {
	return es.Snapshot{}, false, b.err
}

// A snapshot is an optimisation: when it cannot be read, a load replays the
// stream instead of failing, unless the caller gave up (its context).
func TestLoadIgnoresAnUnreadableSnapshot(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	opts := es.Options{SnapshotEvery: 2, Backoff: time.Microsecond}
	for _, text := range []string{"a", "b", "c"} {
		if _, err := es.NewService(noteDecider(), registry(), mem, opts).Execute(ctx, "n1", text, es.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	svc := es.NewService(noteDecider(), registry(), brokenSnapshots{mem, errors.New("throttled")}, opts)
	agg, err := svc.Load(ctx, "n1")
	if err != nil || agg.Version != 3 || agg.State.Count != 3 {
		t.Fatalf("given an unreadable snapshot: got %+v, %v; want v3 with 3 notes from the stream", agg, err)
	}

	svc = es.NewService(noteDecider(), registry(), brokenSnapshots{mem, context.DeadlineExceeded}, opts)
	if _, err := svc.Load(ctx, "n1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("given a snapshot read that ran out of time: %v, want it reported", err)
	}
}
