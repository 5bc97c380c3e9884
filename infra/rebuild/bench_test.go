package rebuild_test

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// BenchmarkRebuildUserView rebuilds the user view from 100,000 events
// (20,000 users of 5 events; CHRONICLE_REBUILD_EVENTS sets another count)
// in DynamoDB Local, with 1 and with 4 scan segments. Each iteration
// builds a new generation of the same read-model table. The events table
// has no stream (rebuildtest.EventsTable), so that seeding is fast.
//
//	go run ./cmd/emulators -- go test -run '^$' -bench RebuildUserView -benchtime 1x ./infra/rebuild/
func BenchmarkRebuildUserView(b *testing.B) {
	events := 100_000
	if v := os.Getenv("CHRONICLE_REBUILD_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 {
			b.Fatalf("CHRONICLE_REBUILD_EVENTS=%q", v)
		}
		events = n
	}
	writers := 0 // the default
	if v := os.Getenv("CHRONICLE_REBUILD_WRITERS"); v != "" {
		writers, _ = strconv.Atoi(v)
	}
	const perUser = 5
	ctx := b.Context()
	client := awstest.DynamoDB(b)
	table := rebuildtest.EventsTable(b, client)
	store := dynamo.New(client, dynamo.Tables{Events: table})
	start := time.Now()
	if _, err := rebuildtest.Seed(ctx, client, table, events/perUser, perUser, 4); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d events in %v", events/perUser*perUser, time.Since(start).Round(time.Millisecond))

	for _, segments := range []int{1, 4} {
		b.Run(fmt.Sprintf("segments=%d", segments), func(b *testing.B) {
			rm := readmodeltest.Store(b)
			rb := rebuild.New(client, table, store, rm, user.NewRegistry(), userviews.Projections(), slog.New(slog.DiscardHandler))
			var total time.Duration
			var folded int64
			for b.Loop() {
				res, err := rb.Run(ctx, userviews.ProjectionUserView, rebuild.Options{Segments: segments, Writers: writers, Settle: -1})
				if err != nil || !res.Done {
					b.Fatalf("%+v %v", res, err)
				}
				total += res.Elapsed
				folded += res.RunEvents
			}
			rate := float64(folded) / total.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(0, "ns/op")
			b.Logf("segments=%d: %d events in %v: %.0f events/s", segments, folded, total.Round(time.Millisecond), rate)
		})
	}
}
