package es_test

import (
	"context"
	"errors"
	"fmt"
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

// failingStore fails the first n appends with err, writing nothing, as a
// store does when it cancels a transaction for a reason other than the
// version: a concurrent transaction on the same items, say.
type failingStore struct {
	*memory.Store
	n   int
	err error
}

func (f *failingStore) Append(ctx context.Context, req es.AppendRequest) error {
	if f.n > 0 {
		f.n--
		return f.err
	}
	return f.Store.Append(ctx, req)
}

// TestCancelledNotForTheVersion: defect 9. An append cancelled while the
// aggregate is still at the If-Match version is no failed precondition:
// the service attempts again (a busy store, or a conflict that was not the
// version's) or answers the true error (a guard held by another).
func TestCancelledNotForTheVersion(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		err     error
		wantErr error // nil: the command succeeds on a later attempt
	}{
		{"busy", fmt.Errorf("append: concurrent transaction: %w", es.ErrBusy), nil},
		{"conflict not on the version", fmt.Errorf("append: concurrent transaction: %w", es.ErrConflict), nil},
		{"release held by another", &es.ReleaseError{Key: "email#a@example.com"}, es.ErrConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &failingStore{Store: memory.New()}
			svc := es.NewService(noteDecider(), registry(), store, es.Options{Backoff: time.Millisecond})
			if _, err := svc.Execute(ctx, "n1", "a", es.ExecOptions{}); err != nil {
				t.Fatal(err)
			}
			store.n, store.err = 3, tc.err
			v := int64(1)
			res, err := svc.Execute(ctx, "n1", "b", es.ExecOptions{ExpectedVersion: &v})
			var pe *es.PreconditionError
			if errors.As(err, &pe) {
				t.Fatalf("got %v: a failed precondition at the If-Match version", err)
			}
			switch {
			case tc.wantErr == nil && (err != nil || res.Version != 2 || res.Attempts != 4):
				t.Fatalf("got %+v, %v; want v2 on the fourth attempt", res, err)
			case tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || res.Attempts != 1):
				t.Fatalf("got %+v, %v; want %v at once", res, err, tc.wantErr)
			}
		})
	}
}
