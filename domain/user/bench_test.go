package user_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
)

// BenchmarkDecideEvolve: one rename decided and applied, in memory, no store.
func BenchmarkDecideEvolve(b *testing.B) {
	s := given(user.Created{Name: "Bench", Email: "bench@example.com"})
	names := [2]string{"Ada", "Grace"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		evs, err := user.Decide(s, user.Rename{Name: names[i%2]}, t0)
		if err != nil || len(evs) != 1 {
			b.Fatal(evs, err)
		}
		s = user.Evolve(s, es.Record{Version: int64(i + 2), OccurredAt: t0, Event: evs[0]})
	}
}

// BenchmarkReplay10k: load a 10,000-event stream from the in-memory store
// without a snapshot: decode every event and fold it.
func BenchmarkReplay10k(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	svc := user.NewService(store, es.Options{})
	id := "00000000-0000-7000-8000-000000000001"
	appendStream(b, store, id, 10_000)
	b.ReportAllocs()
	for b.Loop() {
		agg, err := svc.Load(ctx, id)
		if err != nil || agg.Version != 10_000 {
			b.Fatal(agg.Version, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
}

// BenchmarkExecute: the whole command loop (load with snapshot, decide, append)
// on the in-memory store.
func BenchmarkExecute(b *testing.B) {
	ctx := context.Background()
	svc := usertest.Service(memory.New())
	id := "00000000-0000-7000-8000-000000000002"
	if _, err := svc.Execute(ctx, id, user.Create{Name: "Bench", Email: "bench@example.com"}, es.ExecOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.Execute(ctx, id, user.Rename{Name: fmt.Sprint("name ", i)}, es.ExecOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// appendStream writes a user stream of n events (a create, then renames)
// straight to the store, in appends of 100.
func appendStream(b *testing.B, store es.Store, id string, n int) {
	b.Helper()
	reg := user.NewRegistry()
	var recs []es.Record
	for v := 1; v <= n; v++ {
		var e es.Event = user.Renamed{Name: fmt.Sprint("name ", v)}
		if v == 1 {
			e = user.Created{Name: "Bench", Email: "bench@example.com"}
		}
		typ, schema, data, err := reg.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, es.Record{ID: fmt.Sprint("evt-", v), AggregateID: id, AggregateType: user.AggregateType,
			Version: int64(v), Type: typ, SchemaVersion: schema, OccurredAt: t0, Data: data,
			Metadata: es.Metadata{Actor: "bench", CorrelationID: "corr"}})
		if len(recs) == 100 || v == n {
			if err := store.Append(context.Background(), es.AppendRequest{AggregateID: id, ExpectedVersion: int64(v - len(recs)), Records: recs}); err != nil {
				b.Fatal(err)
			}
			recs = nil
		}
	}
}
