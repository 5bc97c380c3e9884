package pii_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// BenchmarkCommandSealed: the p50 of a warm rename on DynamoDB Local with
// the personal fields sealed and without, interleaved command by command
// (the machine is noisy); and the replay of a 2,000-event stream (10,000 took too long on the shared machine), sealed
// and in clear (load + open + decode + fold), interleaved.
//
//	go run ./cmd/emulators -- go test -run '^$' -bench CommandSealed -benchtime 1x ./infra/pii/
func BenchmarkCommandSealed(b *testing.B) {
	f := newFixture(b, 0)
	ctx := b.Context()
	plain := es.NewService(user.Decider(), user.NewRegistry(), dynamo.New(f.ddb, f.tables), es.Options{CacheSize: 16})
	sealed := es.NewService(user.Decider(), user.NewRegistry(), f.store, es.Options{CacheSize: 16})
	idP, idS := uuid.NewString(), uuid.NewString()
	for _, x := range []struct {
		svc *es.Service[user.State, user.Command]
		id  string
	}{{plain, idP}, {sealed, idS}} {
		if _, err := x.svc.Execute(ctx, x.id, user.Create{Name: "Bench Mark", Email: x.id[:8] + "@bench.example"}, es.ExecOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	const commands = 100
	var dp, ds []time.Duration
	for i := range commands {
		for _, x := range []struct {
			svc *es.Service[user.State, user.Command]
			id  string
			out *[]time.Duration
		}{{plain, idP, &dp}, {sealed, idS, &ds}} {
			start := time.Now()
			if _, err := x.svc.Execute(ctx, x.id, user.Rename{Name: fmt.Sprintf("Bench Mark %d", i)}, es.ExecOptions{}); err != nil {
				b.Fatal(err)
			}
			*x.out = append(*x.out, time.Since(start))
		}
	}
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	pp, ps := p50(dp), p50(ds)
	b.ReportMetric(float64(pp.Microseconds()), "plain-p50-µs")
	b.ReportMetric(float64(ps.Microseconds()), "sealed-p50-µs")
	b.ReportMetric(float64(ps)/float64(pp), "command-ratio")

	// A 10,000-event stream of renames, written directly, each way.
	const events = 2_000
	rp, rs := uuid.NewString(), uuid.NewString()
	for _, x := range []struct {
		id   string
		seal bool
	}{{rp, false}, {rs, true}} {
		recs := make([]es.Record, events)
		for i := range recs {
			recs[i] = es.Record{ID: uuid.NewString(), AggregateID: x.id, AggregateType: "user", Version: int64(i + 1),
				Type: "user.renamed.v1", SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: []byte(fmt.Sprintf(`{"name":"Name %d"}`, i))}
		}
		recs[0].Type, recs[0].Data = "user.created.v1", []byte(`{"name":"First","email":"first@bench.example"}`)
		if x.seal {
			var err error
			if recs, err = f.cipher.Seal(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
		for lo := 0; lo < events; lo += 50 {
			if err := (dynamo.New(f.ddb, f.tables)).Append(ctx, es.AppendRequest{AggregateID: x.id, ExpectedVersion: int64(lo), Records: recs[lo : lo+50]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	var lp, ls []time.Duration
	for range 3 {
		for _, x := range []struct {
			svc *es.Service[user.State, user.Command]
			id  string
			out *[]time.Duration
		}{{plain, rp, &lp}, {sealed, rs, &ls}} {
			start := time.Now()
			agg, err := x.svc.Load(ctx, x.id)
			if err != nil || agg.Version != events {
				b.Fatalf("replay: v%d, %v", agg.Version, err)
			}
			*x.out = append(*x.out, time.Since(start))
		}
	}
	b.ReportMetric(float64(p50(lp).Milliseconds()), "plain-replay-ms")
	b.ReportMetric(float64(p50(ls).Milliseconds()), "sealed-replay-ms")
	b.ReportMetric(float64(p50(ls))/float64(p50(lp)), "replay-ratio")
}
