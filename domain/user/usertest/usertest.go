// Package usertest holds the User service's store-level scenarios (concurrent
// writers, racing creates, idempotency) so that they run against every store:
// in memory and on DynamoDB Local.
package usertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
)

// Service is the user command service over store, with the defaults the
// reference service uses, its state cache on: one Service is one
// container's.
func Service(store es.Store) *es.Service[user.State, user.Command] {
	return user.NewService(store, es.Options{SnapshotEvery: 100, MaxAttempts: 8, CacheSize: 1024})
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Run runs every scenario against the store newStore returns.
func Run(t *testing.T, newStore func(t *testing.T) es.Store) {
	t.Run("ConcurrentWriters", func(t *testing.T) { t.Parallel(); ConcurrentWriters(t, newStore(t), 20, 50) })
	t.Run("RacingCreates", func(t *testing.T) { t.Parallel(); RacingCreates(t, newStore(t), 100) })
	t.Run("EmailLifecycle", func(t *testing.T) { t.Parallel(); EmailLifecycle(t, newStore(t)) })
	t.Run("BusyUser", func(t *testing.T) { BusyUser(t, newStore(t), 10, 20) })
}

// BusyUser: writers × commands renames of one user, without If-Match, by
// the service as the commands function builds it (default retry budget and
// backoff). Most succeed within the budget, and none is lost: the final
// version is 1 + the successes. It reports the commands per second the one
// user took. It runs alone (not in parallel with the other scenarios), but
// under make test other packages share the store's emulator: how many
// commands fit in the 5 s budget depends on that load (99% on a quiet
// machine, 85% seen with the machine's two cores at load 40, 65% once in
// a CI run). The floor below (half) still catches a retry loop that
// livelocks or gives up early (with no retry, one writer in ten wins a
// round); the rate itself is make bench's business.
const busyUserFloor = 50 // percent
func BusyUser(t *testing.T, store es.Store, writers, commands int) {
	ctx := context.Background()
	svc := user.NewService(store, es.Options{SnapshotEvery: 100})
	id := newID()
	if _, err := svc.Execute(ctx, id, user.Create{Name: "Busy", Email: id + "@example.com"}, es.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	var ok, failed, attempts atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := range commands {
				res, err := svc.Execute(ctx, id, user.Rename{Name: fmt.Sprintf("writer %d command %d", w, i)},
					es.ExecOptions{Metadata: es.Metadata{Actor: fmt.Sprint("writer-", w)}})
				attempts.Add(int64(res.Attempts))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, es.ErrConflict), errors.Is(err, es.ErrBusy):
					failed.Add(1)
				default:
					t.Errorf("rename: %v", err)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	total := int64(writers * commands)
	t.Logf("%d writers × %d renames of one user: %d succeeded, %d gave up; %.1f attempts per command; %.0f commands/s over %s",
		writers, commands, ok.Load(), failed.Load(), float64(attempts.Load())/float64(total), float64(ok.Load())/took.Seconds(), took.Round(time.Millisecond))
	if ok.Load()*100 < total*busyUserFloor {
		t.Errorf("%d of %d renames succeeded, want at least %d%%", ok.Load(), total, busyUserFloor)
	}
	agg, err := svc.Load(ctx, id)
	if err != nil || agg.Version != 1+ok.Load() {
		t.Fatalf("load: version %d, %v; want 1 create + %d successes: an update was lost or doubled", agg.Version, err, ok.Load())
	}
}

// ConcurrentWriters: writers × commands renames of one user, the writers
// spread over two services with state caches of their own (two
// containers, each one's cache made stale by the other's writes). The
// final version is 1 + the successes reported, versions run 1..N with no
// gap, and no event is stored twice. A command that gives up (a conflict
// or a busy store at the end of its retry budget) wrote nothing.
func ConcurrentWriters(t *testing.T, store es.Store, writers, commands int) {
	ctx := context.Background()
	svcs := []*es.Service[user.State, user.Command]{Service(store), Service(store)}
	svc := svcs[0]
	id := newID()
	if _, err := svc.Execute(ctx, id, user.Create{Name: "Racer", Email: id + "@example.com"}, es.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range commands {
				_, err := svcs[w%2].Execute(ctx, id, user.Rename{Name: fmt.Sprintf("writer %d command %d", w, i)},
					es.ExecOptions{Metadata: es.Metadata{Actor: fmt.Sprint("writer-", w)}})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, es.ErrConflict), errors.Is(err, es.ErrBusy):
					// Gave up within the retry budget, nothing written:
					// a loaded machine ends more commands this way (581 of
					// 1,000 seen in one CI run); the invariants below are
					// what this scenario checks, the rate is BusyUser's.
					conflicts.Add(1)
				default:
					t.Errorf("rename: %v", err)
				}
			}
		})
	}
	wg.Wait()
	recs, err := store.Load(ctx, id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 + ok.Load()
	if int64(len(recs)) != want {
		t.Fatalf("%d events stored, want 1 create + %d successes", len(recs), ok.Load())
	}
	seen := map[string]bool{}
	for i, r := range recs {
		if r.Version != int64(i+1) || seen[r.ID] {
			t.Fatalf("record %d: version %d, duplicate id %v", i, r.Version, seen[r.ID])
		}
		seen[r.ID] = true
	}
	agg, err := svc.Load(ctx, id)
	if err != nil || agg.Version != want {
		t.Fatalf("load: version %d, %v; want %d", agg.Version, err, want)
	}
	t.Logf("%d writers × %d commands: %d succeeded, %d gave up after retries", writers, commands, ok.Load(), conflicts.Load())
}

// RacingCreates: two users created at once with the same email, many rounds:
// exactly one succeeds each round, the other is told the email is taken.
func RacingCreates(t *testing.T, store es.Store, rounds int) {
	ctx := context.Background()
	svc := Service(store)
	for round := range rounds {
		email := fmt.Sprintf("race-%d-%s@example.com", round, newID())
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = svc.Execute(ctx, newID(), user.Create{Name: "Twin", Email: email}, es.ExecOptions{Absent: true})
			})
		}
		wg.Wait()
		var dup *es.DuplicateError
		okCount := 0
		for _, err := range errs {
			switch {
			case err == nil:
				okCount++
			case errors.As(err, &dup) && dup.Field() == "email":
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if okCount != 1 {
			t.Fatalf("round %d: %d creates succeeded, want 1 (%v)", round, okCount, errs)
		}
	}
}

// EmailLifecycle: an email is freed by a change or a delete, and one identity
// links to at most one live user.
func EmailLifecycle(t *testing.T, store es.Store) {
	ctx := context.Background()
	svc := Service(store)
	mail := func(s string) string { return s + "-" + newID() + "@example.com" }
	first, second := mail("first"), mail("second")
	a, b := newID(), newID()
	exec := func(id string, c user.Command) error {
		_, err := svc.Execute(ctx, id, c, es.ExecOptions{})
		return err
	}
	if err := exec(a, user.Create{Name: "A", Email: first, Sub: "sub-" + a}); err != nil {
		t.Fatal(err)
	}
	if err := exec(b, user.Create{Name: "B", Email: first}); !errors.Is(err, es.ErrDuplicate) {
		t.Fatalf("taken email: %v", err)
	}
	if err := exec(a, user.ChangeEmail{Email: second}); err != nil {
		t.Fatal(err)
	}
	if err := exec(b, user.Create{Name: "B", Email: first}); err != nil {
		t.Fatalf("email freed by a change: %v", err)
	}
	var dup *es.DuplicateError
	if err := exec(newID(), user.Create{Name: "C", Email: mail("c"), Sub: "sub-" + a}); !errors.As(err, &dup) || dup.Field() != "sub" {
		t.Fatalf("second user for one sub: %v", err)
	}
	if err := exec(a, user.Delete{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := exec(newID(), user.Create{Name: "D", Email: second, Sub: "sub-" + a}); err != nil {
		t.Fatalf("email and sub freed by a delete: %v", err)
	}
}
