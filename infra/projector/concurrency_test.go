package projector_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// barrierViews is the user view whose reads wait until n of them are in
// flight at once (or until a deadline), so that a test can tell whether
// the projector reads the views of a batch's groups concurrently.
type barrierViews struct {
	projection.Projection // the user view

	mu      sync.Mutex
	n       int
	waiting int           // reads in flight
	all     chan struct{} // closed once n reads were in flight at once
	max     time.Duration
}

func newBarrierViews(view projection.Projection, n int, max time.Duration) *barrierViews {
	return &barrierViews{Projection: view, n: n, all: make(chan struct{}), max: max}
}

func (b *barrierViews) Read(ctx context.Context, rm *readmodel.Store, id string) (projection.State, int64, error) {
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(b.max):
	}
	b.mu.Lock()
	b.waiting--
	b.mu.Unlock()
	return b.Projection.Read(ctx, rm, id)
}

// met reports whether n reads were in flight at once.
func (b *barrierViews) met() bool {
	select {
	case <-b.all:
		return true
	default:
		return false
	}
}

// The message groups of a batch (distinct aggregates) are handled at once,
// up to the group concurrency: with three users in a batch, their three
// view reads are in flight together; with a concurrency of one, never more
// than one is. Either way every view ends equal to the fold of its events.
func TestGroupsOfABatchRunConcurrently(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		concurrency int
		together    bool
	}{
		{"default", 0, true},
		{"one at a time", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var msgs []events.SQSMessage
			var ids []string
			for range 3 {
				id := uuid.NewString()
				history(t, e.svc, id, "", false)
				_, recs := replay(t, e, id)
				for _, r := range recs {
					msgs = append(msgs, message(t, r))
				}
				ids = append(ids, id)
			}
			// One read waits 2 s for the others at most: with one group at a
			// time each read waits it out, alone.
			views := newBarrierViews(userviews.View, 3, 2*time.Second)
			var opts []projector.Option
			if tc.concurrency > 0 {
				opts = append(opts, projector.WithGroupConcurrency(tc.concurrency))
			}
			p := projector.New(e.events, user.NewRegistry(), e.views, []projection.Projection{views, userviews.Activity}, testLogger(t), time.Now, opts...)
			if resp := handle(t, p, msgs...); len(resp.BatchItemFailures) > 0 {
				t.Fatalf("failures: %v", failedIDs(resp))
			}
			if got := views.met(); got != tc.together {
				t.Errorf("three view reads in flight at once: %v, want %v", got, tc.together)
			}
			for _, id := range ids {
				checkReadModel(t, e, id, "")
			}
		})
	}
}
