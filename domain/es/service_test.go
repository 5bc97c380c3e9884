package es_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
)

// A note-taking aggregate: the smallest decider that exercises the loop.
type notes struct{ Count int }

func noteDecider() es.Decider[notes, string] {
	return es.Decider[notes, string]{
		Type: "notebook",
		Decide: func(_ notes, text string, _ time.Time) ([]es.Event, error) {
			if text == "" {
				return nil, nil
			}
			return []es.Event{noted{Text: text}}, nil
		},
		Evolve: func(s notes, _ es.Record) notes { s.Count++; return s },
	}
}

// racingStore appends a competing event before each of the first n appends,
// as a concurrent writer would.
type racingStore struct {
	*memory.Store
	n int
}

func (r *racingStore) Append(ctx context.Context, req es.AppendRequest) error {
	if r.n > 0 {
		r.n--
		rival := req.Records[0]
		rival.ID += "-rival"
		if err := r.Store.Append(ctx, es.AppendRequest{AggregateID: req.AggregateID, ExpectedVersion: req.ExpectedVersion, Records: []es.Record{rival}}); err != nil {
			return err
		}
	}
	return r.Store.Append(ctx, req)
}

func TestExecuteRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	store := &racingStore{Store: memory.New(), n: 2}
	svc := es.NewService(noteDecider(), registry(), store, es.Options{MaxAttempts: 3, Backoff: time.Microsecond})
	res, err := svc.Execute(ctx, "n1", "hello", es.ExecOptions{})
	if err != nil || res.Attempts != 3 || res.Version != 3 {
		t.Fatalf("got %+v, %v; want success at v3 on the third attempt", res, err)
	}
	store.n = 5
	if _, err := svc.Execute(ctx, "n1", "again", es.ExecOptions{}); !errors.Is(err, es.ErrConflict) {
		t.Fatalf("after the attempts run out: %v, want ErrConflict", err)
	}
}

func TestExecuteExpectedVersion(t *testing.T) {
	ctx := context.Background()
	store := &racingStore{Store: memory.New()}
	svc := es.NewService(noteDecider(), registry(), store, es.Options{})
	for _, text := range []string{"a", "b"} {
		if _, err := svc.Execute(ctx, "n1", text, es.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	v := int64(1)
	var pe *es.PreconditionError
	if _, err := svc.Execute(ctx, "n1", "c", es.ExecOptions{ExpectedVersion: &v}); !errors.As(err, &pe) || pe.Current != 2 {
		t.Fatalf("stale If-Match: %v", err)
	}
	// A conflict under If-Match is not retried: it is a failed precondition.
	v, store.n = 2, 1
	if _, err := svc.Execute(ctx, "n1", "c", es.ExecOptions{ExpectedVersion: &v}); !errors.As(err, &pe) || pe.Current != 3 {
		t.Fatalf("conflict under If-Match: %v", err)
	}
	v = 3
	res, err := svc.Execute(ctx, "n1", "", es.ExecOptions{ExpectedVersion: &v})
	if err != nil || res.Version != 3 || len(res.Records) != 0 {
		t.Fatalf("no-op: %+v, %v", res, err)
	}
}
