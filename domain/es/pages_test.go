package es_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
)

// unpaged hides the memory store's LoadPages: loads through it use Load.
type unpaged struct{ es.Store }

// failingPages fails every LoadPages after its first page.
type failingPages struct {
	*memory.Store
	err error
}

func (f failingPages) LoadPages(ctx context.Context, id string, from, to int64, fn func([]es.Record) error) error {
	return f.Store.LoadPages(ctx, id, from, to, func(page []es.Record) error {
		if err := fn(page); err != nil {
			return err
		}
		return f.err
	})
}

// noteStream appends n notes, one a minute from t0, and, when bad, an
// event of a type the registry does not know at version bad.
func noteStream(t *testing.T, s es.Store, id string, n int, bad int) time.Time {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []es.Record
	for v := 1; v <= n; v++ {
		typ := "person.noted.v1"
		if v == bad {
			typ = "person.vanished.v1"
		}
		recs = append(recs, es.Record{ID: fmt.Sprint("e", v), AggregateID: id, AggregateType: "notebook", Version: int64(v),
			Type: typ, SchemaVersion: 2, OccurredAt: t0.Add(time.Duration(v) * time.Minute),
			Data: json.RawMessage(fmt.Sprintf(`{"text":"n%d"}`, v))})
		if len(recs) == 100 || v == n {
			if err := s.Append(context.Background(), es.AppendRequest{AggregateID: id, ExpectedVersion: int64(v - len(recs)), Records: recs}); err != nil {
				t.Fatal(err)
			}
			recs = nil
		}
	}
	return t0
}

// TestLoadPagedAsUnpaged: a load through LoadPages, over several pages,
// answers what a load through Load answers: bounded by version or by time,
// from a snapshot or not.
func TestLoadPagedAsUnpaged(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	t0 := noteStream(t, mem, "n1", 2500, 0)
	opts := es.Options{SnapshotEvery: 1000}
	paged := es.NewService(noteDecider(), registry(), mem, opts)
	plain := es.NewService(noteDecider(), registry(), unpaged{mem}, opts)
	for _, v := range []int64{1, 999, 1000, 1001, 2500, 3000} {
		a, aerr := paged.LoadAt(ctx, "n1", v)
		b, berr := plain.LoadAt(ctx, "n1", v)
		if aerr != nil || berr != nil || a != b || a.Version != min(v, 2500) || a.State.Count != int(a.Version) {
			t.Errorf("at v%d: paged %+v, %v; unpaged %+v, %v", v, a, aerr, b, berr)
		}
	}
	for _, m := range []int{0, 1, 1500, 2500, 4000} {
		at := t0.Add(time.Duration(m)*time.Minute + time.Second)
		a, aerr := paged.LoadAsOf(ctx, "n1", at)
		b, berr := plain.LoadAsOf(ctx, "n1", at)
		if aerr != nil || berr != nil || a != b || a.Version != int64(min(m, 2500)) {
			t.Errorf("as of minute %d: paged %+v, %v; unpaged %+v, %v", m, a, aerr, b, berr)
		}
	}
	if _, err := paged.Execute(ctx, "n1", "one more", es.ExecOptions{}); err != nil { // crosses no snapshot
		t.Fatal(err)
	}
	a, aerr := paged.Load(ctx, "n1")
	b, berr := plain.Load(ctx, "n1")
	if aerr != nil || berr != nil || a != b || a.Version != 2501 {
		t.Errorf("load: paged %+v, %v; unpaged %+v, %v", a, aerr, b, berr)
	}
}

// TestLoadPagedErrors: an event the registry cannot decode is the same
// error either way, and a store's failure is wrapped with the load.
func TestLoadPagedErrors(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	noteStream(t, mem, "n2", 1500, 1200)
	for name, store := range map[string]es.Store{"paged": mem, "unpaged": unpaged{mem}} {
		_, err := es.NewService(noteDecider(), registry(), store, es.Options{}).Load(ctx, "n2")
		if !errors.Is(err, es.ErrUnknownEvent) {
			t.Errorf("%s: %v, want ErrUnknownEvent", name, err)
		}
	}
	boom := errors.New("throttled")
	_, err := es.NewService(noteDecider(), registry(), failingPages{mem, boom}, es.Options{}).Load(ctx, "n2")
	if !errors.Is(err, boom) || err.Error() != "load n2 from v1: throttled" {
		t.Errorf("store failure: %v", err)
	}
}
