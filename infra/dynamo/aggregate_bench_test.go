package dynamo_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// The aggregate benchmarks load a 10,000-event user through the kernel (query,
// decode, fold), without and with a snapshot; BenchmarkRawQuery10k is their floor.

const streamLength = 10_000

// userStream stores a user of n events: a create, then renames.
func userStream(b *testing.B, n int) (*dynamo.Store, string) {
	b.Helper()
	client, tables := benchTables(b)
	reg := user.NewRegistry()
	id := newID()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := make([]es.Record, n)
	for i := range recs {
		var e es.Event = user.Renamed{Name: fmt.Sprint("name ", i)}
		if i == 0 {
			e = user.Created{Name: "Bench", Email: "bench@example.com"}
		}
		typ, schema, data, err := reg.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = es.Record{ID: newID(), AggregateID: id, AggregateType: user.AggregateType, Version: int64(i + 1),
			Type: typ, SchemaVersion: schema, OccurredAt: at.Add(time.Duration(i) * time.Millisecond), Data: data,
			Metadata: es.Metadata{Actor: "bench", CorrelationID: "corr"}}
	}
	writeRecords(b, client, tables.Events, recs)
	return dynamo.New(client, tables), id
}

func benchmarkAggregateLoad(b *testing.B, snapshotEvery int) {
	store, id := userStream(b, streamLength)
	svc := es.NewService(user.Decider(), user.NewRegistry(), store, es.Options{SnapshotEvery: snapshotEvery})
	ctx := b.Context()
	if snapshotEvery > 0 {
		// The snapshot the policy would have written last: at the highest
		// multiple of the interval, leaving up to interval-1 events after it.
		at := int64(streamLength - streamLength%snapshotEvery - snapshotEvery/2)
		agg, err := svc.LoadAt(ctx, id, at)
		if err != nil {
			b.Fatal(err)
		}
		state, err := json.Marshal(agg.State)
		if err != nil {
			b.Fatal(err)
		}
		if err := store.PutSnapshot(ctx, es.Snapshot{AggregateID: id, Version: agg.Version, SchemaVersion: user.StateSchema,
			State: state, UpdatedAt: agg.UpdatedAt, TakenAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		agg, err := svc.Load(ctx, id)
		if err != nil || agg.Version != streamLength {
			b.Fatalf("load: v%d, %v", agg.Version, err)
		}
	}
}

// BenchmarkAggregateLoad10k: the whole stream, no snapshot.
func BenchmarkAggregateLoad10k(b *testing.B) { benchmarkAggregateLoad(b, 0) }

// BenchmarkAggregateLoad10kSnapshot: a snapshot 50 events before the end, as
// with the default policy (every 100).
func BenchmarkAggregateLoad10kSnapshot(b *testing.B) { benchmarkAggregateLoad(b, 100) }
