package peer_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	hes "github.com/hallgren/eventsourcing/aggregate"
	hmemory "github.com/hallgren/eventsourcing/eventstore/memory"

	"github.com/chronicle-go/chronicle/bench/peer"
	"github.com/chronicle-go/chronicle/bench/peer/hallgren"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/user"
)

// Each Chronicle benchmark has a Plain twin doing the same work with the
// framework-free aggregate of package peer, and a Hallgren twin doing it
// on hallgren/eventsourcing (package hallgren). They stand in this file
// one after the other, so that go test runs them in alternation; cmd/bench
// runs the file several times and reports the ratios.

// cpuMeter reports, besides the wall time go test measures, the
// process's CPU time per operation (user and system, the garbage
// collector's included) as cpu-ns/op: on a machine whose cores other work
// shares, wall time counts the waits for a core, CPU time only the work,
// and cmd/bench compares that.
type cpuMeter struct {
	b        *testing.B
	begin    time.Duration
	excluded time.Duration // spent with the timer stopped
	stopped  time.Duration
}

func meter(b *testing.B) *cpuMeter {
	b.ReportAllocs()
	return &cpuMeter{b: b, begin: cpuTime()}
}

func (m *cpuMeter) stop() {
	m.b.StopTimer()
	m.stopped = cpuTime()
}

func (m *cpuMeter) start() {
	m.excluded += cpuTime() - m.stopped
	m.b.StartTimer()
}

func (m *cpuMeter) report() {
	if m.b.N > 0 {
		m.b.ReportMetric(float64(cpuTime()-m.begin-m.excluded)/float64(m.b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestMain(m *testing.M) {
	hallgren.Register()
	m.Run()
}

const streamLength = 10_000

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var names = [2]string{"Ada Lovelace", "Grace Hopper"}

// BenchmarkChronicleDecideEvolve: one rename decided (validated, checked
// against the state) and applied, in memory, no store.
func BenchmarkChronicleDecideEvolve(b *testing.B) {
	s := user.Evolve(user.State{}, es.Record{Version: 1, OccurredAt: t0, Event: user.Created{Name: "Bench", Email: "bench@example.com"}})
	m := meter(b)
	defer m.report()
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
	m := meter(b)
	defer m.report()
	for i := 0; b.Loop(); i++ {
		if err := u.Rename(names[i%2], t0); err != nil {
			b.Fatal(err)
		}
		peer.DropChanges(u)
	}
}

// BenchmarkHallgrenDecideEvolve is BenchmarkChronicleDecideEvolve's twin
// on hallgren/eventsourcing: each round renames a copy of a saved user,
// so that the raised change is dropped, as Chronicle's returned event is.
func BenchmarkHallgrenDecideEvolve(b *testing.B) {
	saved, err := hallgren.Create("bench", "Bench", "bench@example.com")
	if err != nil {
		b.Fatal(err)
	}
	if err := hes.Save(hmemory.Create(), saved); err != nil {
		b.Fatal(err)
	}
	m := meter(b)
	defer m.report()
	for i := 0; b.Loop(); i++ {
		u := *saved
		if err := u.Rename(names[i%2]); err != nil || u.Version() != 2 {
			b.Fatal(u.Version(), err)
		}
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
	m := meter(b)
	defer m.report()
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
	m := meter(b)
	defer m.report()
	for b.Loop() {
		got, err := store.Load("bench")
		if err != nil || got.Version != streamLength {
			b.Fatal(got.Version, err)
		}
	}
	b.ReportMetric(float64(streamLength)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHallgrenReplay10k is BenchmarkChronicleReplay10k's twin on
// hallgren/eventsourcing and its in-memory event store.
func BenchmarkHallgrenReplay10k(b *testing.B) {
	ctx := context.Background()
	store := hmemory.Create()
	u, err := hallgren.Create("bench", "Bench", "bench@example.com")
	if err != nil {
		b.Fatal(err)
	}
	for v := 2; v <= streamLength; v++ {
		if err := u.Rename(fmt.Sprint("name ", v)); err != nil {
			b.Fatal(err)
		}
		if v%100 == 0 {
			if err := hes.Save(store, u); err != nil {
				b.Fatal(err)
			}
		}
	}
	m := meter(b)
	defer m.report()
	for b.Loop() {
		got := &hallgren.User{}
		if err := hes.Load(ctx, store, "bench", got); err != nil || got.Version() != streamLength {
			b.Fatal(got.Version(), err)
		}
	}
	b.ReportMetric(float64(streamLength)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// The command benchmarks rename users of 10 events (a create, 9 renames),
// loading each, deciding and appending the 11th event: a command on an
// aggregate a service has not seen before. Each user takes one command, so
// that every one has 10 events; users are made in batches of poolSize,
// with the timer stopped.
const (
	commandHistory = 10
	poolSize       = 1000
)

// BenchmarkChronicleCommand10: es.Service.Execute of a rename on the
// in-memory store, without snapshots.
func BenchmarkChronicleCommand10(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	reg := user.NewRegistry()
	svc := es.NewService(user.Decider(), reg, store, es.Options{})
	md := es.Metadata{Actor: "bench"}
	pool := func(batch int) []string {
		ids := make([]string, poolSize)
		for i := range ids {
			ids[i] = fmt.Sprintf("00000000-0000-7000-8000-%012d", batch*poolSize+i)
			recs := make([]es.Record, commandHistory)
			for v := range recs {
				var e es.Event = user.Renamed{Name: fmt.Sprint("name ", v)}
				if v == 0 {
					e = user.Created{Name: "Bench", Email: "bench@example.com"}
				}
				typ, schema, data, err := reg.Encode(e)
				if err != nil {
					b.Fatal(err)
				}
				recs[v] = es.Record{ID: fmt.Sprint(ids[i], "-", v), AggregateID: ids[i], AggregateType: user.AggregateType,
					Version: int64(v + 1), Type: typ, SchemaVersion: schema, OccurredAt: t0, Data: data, Metadata: md}
			}
			if err := store.Append(ctx, es.AppendRequest{AggregateID: ids[i], Records: recs}); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	m := meter(b)
	defer m.report()
	var ids []string
	for i := range b.N {
		if i%poolSize == 0 {
			m.stop()
			ids = pool(i / poolSize)
			m.start()
		}
		res, err := svc.Execute(ctx, ids[i%poolSize], user.Rename{Name: names[i%2]}, es.ExecOptions{Metadata: md})
		if err != nil || res.Version != commandHistory+1 {
			b.Fatal(res.Version, err)
		}
	}
}

// BenchmarkPlainCommand10 is BenchmarkChronicleCommand10's twin.
func BenchmarkPlainCommand10(b *testing.B) {
	store := peer.NewStore()
	pool := func(batch int) []string {
		ids := make([]string, poolSize)
		for i := range ids {
			ids[i] = fmt.Sprint("bench-", batch*poolSize+i)
			u := &peer.User{ID: ids[i]}
			if err := u.Create("Bench", "bench@example.com", t0); err != nil {
				b.Fatal(err)
			}
			for v := 1; v < commandHistory; v++ {
				if err := u.Rename(fmt.Sprint("name ", v), t0); err != nil {
					b.Fatal(err)
				}
			}
			if err := store.Save(u, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	m := meter(b)
	defer m.report()
	var ids []string
	for i := range b.N {
		if i%poolSize == 0 {
			m.stop()
			ids = pool(i / poolSize)
			m.start()
		}
		u, err := store.Load(ids[i%poolSize])
		if err != nil {
			b.Fatal(err)
		}
		if err := u.Rename(names[i%2], time.Now().UTC()); err != nil {
			b.Fatal(err)
		}
		if err := store.Save(u, "bench"); err != nil || u.Version != commandHistory+1 {
			b.Fatal(u.Version, err)
		}
	}
}

// BenchmarkHallgrenCommand10 is BenchmarkChronicleCommand10's twin on
// hallgren/eventsourcing.
func BenchmarkHallgrenCommand10(b *testing.B) {
	ctx := context.Background()
	store := hmemory.Create()
	pool := func(batch int) []string {
		ids := make([]string, poolSize)
		for i := range ids {
			ids[i] = fmt.Sprint("bench-", batch*poolSize+i)
			u, err := hallgren.Create(ids[i], "Bench", "bench@example.com")
			if err != nil {
				b.Fatal(err)
			}
			for v := 1; v < commandHistory; v++ {
				if err := u.Rename(fmt.Sprint("name ", v)); err != nil {
					b.Fatal(err)
				}
			}
			if err := hes.Save(store, u); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	m := meter(b)
	defer m.report()
	var ids []string
	for i := range b.N {
		if i%poolSize == 0 {
			m.stop()
			ids = pool(i / poolSize)
			m.start()
		}
		u := &hallgren.User{}
		if err := hes.Load(ctx, store, ids[i%poolSize], u); err != nil {
			b.Fatal(err)
		}
		if err := u.Rename(names[i%2]); err != nil {
			b.Fatal(err)
		}
		if err := hes.Save(store, u); err != nil || u.Version() != commandHistory+1 {
			b.Fatal(u.Version(), err)
		}
	}
}
