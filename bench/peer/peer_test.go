package peer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/bench/peer"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/user"
)

// Each Chronicle benchmark has a Plain twin doing the same work with the
// framework-free aggregate of package peer; cmd/bench runs them in
// alternation and reports the ratio.

const streamLength = 10_000

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var names = [2]string{"Ada Lovelace", "Grace Hopper"}

// BenchmarkChronicleDecideEvolve: one rename decided (validated, checked
// against the state) and applied, in memory, no store.
func BenchmarkChronicleDecideEvolve(b *testing.B) {
	s := user.Evolve(user.State{}, es.Record{Version: 1, OccurredAt: t0, Event: user.Created{Name: "Bench", Email: "bench@example.com"}})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		evs, err := user.Decide(s, user.Rename{Name: names[i%2]}, t0)
		if err != nil || len(evs) != 1 {
			b.Fatal(evs, err)
		}
		s = user.Evolve(s, es.Record{Version: int64(i + 2), OccurredAt: t0, Event: evs[0]})
	}
}

// BenchmarkPlainDecideEvolve is BenchmarkChronicleDecideEvolve's twin; the
// raised change is dropped, as Chronicle's returned event is.
func BenchmarkPlainDecideEvolve(b *testing.B) {
	u := &peer.User{ID: "bench"}
	if err := u.Create("Bench", "bench@example.com", t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := u.Rename(names[i%2], t0); err != nil {
			b.Fatal(err)
		}
		peer.DropChanges(u)
	}
}

// BenchmarkChronicleReplay10k: load a user of 10,000 events (a create,
// then renames) from the in-memory store without a snapshot: copy, decode
// and fold every event.
func BenchmarkChronicleReplay10k(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	id := "00000000-0000-7000-8000-000000000001"
	reg := user.NewRegistry()
	for v := 1; v <= streamLength; v += 100 {
		recs := make([]es.Record, 0, 100)
		for w := v; w < v+100; w++ {
			var e es.Event = user.Renamed{Name: fmt.Sprint("name ", w)}
			if w == 1 {
				e = user.Created{Name: "Bench", Email: "bench@example.com"}
			}
			typ, schema, data, err := reg.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, es.Record{ID: fmt.Sprint("evt-", w), AggregateID: id, AggregateType: user.AggregateType,
				Version: int64(w), Type: typ, SchemaVersion: schema, OccurredAt: t0, Data: data,
				Metadata: es.Metadata{Actor: "bench"}})
		}
		if err := store.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: int64(v - 1), Records: recs}); err != nil {
			b.Fatal(err)
		}
	}
	svc := es.NewService(user.Decider(), reg, store, es.Options{})
	b.ReportAllocs()
	for b.Loop() {
		agg, err := svc.Load(ctx, id)
		if err != nil || agg.Version != streamLength {
			b.Fatal(agg.Version, err)
		}
	}
	b.ReportMetric(float64(streamLength)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPlainReplay10k is BenchmarkChronicleReplay10k's twin.
func BenchmarkPlainReplay10k(b *testing.B) {
	store := peer.NewStore()
	u := &peer.User{ID: "bench"}
	if err := u.Create("Bench", "bench@example.com", t0); err != nil {
		b.Fatal(err)
	}
	for v := 2; v <= streamLength; v++ {
		if err := u.Rename(fmt.Sprint("name ", v), t0); err != nil {
			b.Fatal(err)
		}
		if v%100 == 0 {
			if err := store.Save(u, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := store.Load("bench")
		if err != nil || got.Version != streamLength {
			b.Fatal(got.Version, err)
		}
	}
	b.ReportMetric(float64(streamLength)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
