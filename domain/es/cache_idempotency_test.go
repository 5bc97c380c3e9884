package es_test

import (
	"context"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/team"
)

// TestKeyedNoOpOnAStaleCacheIsConfirmed: a command with an idempotency
// key that decides nothing on a cached state must be decided again on the
// current state before its key is recorded. Otherwise a container whose
// cache is behind the stream records "nothing to do" under the key for
// good, and every repeat replays it (the membership process manager's
// removal of a user who joined after the cache was filled).
func TestKeyedNoOpOnAStaleCacheIsConfirmed(t *testing.T) {
	const alice, bob = "0190a6c1-0000-7000-8000-000000000001", "0190a6c1-0000-7000-8000-000000000002"
	store := unversionedKeys{memory.New()}
	warm := team.NewService(store, es.Options{CacheSize: 16})
	other := team.NewService(store, es.Options{})
	ctx := t.Context()
	if _, err := warm.Execute(ctx, "t1", team.Create{Name: "T", Owner: alice, OwnerActive: true}, es.ExecOptions{}); err != nil {
		t.Fatal(err) // warm caches v1: bob is not a member
	}
	if _, err := other.Execute(ctx, "t1", team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true}, es.ExecOptions{}); err != nil {
		t.Fatal(err) // v2: bob joins, behind warm's cache
	}
	key := &es.IdempotencyKey{Key: "remove-bob", RequestHash: "h"}
	for i := range 2 {
		res, err := warm.Execute(ctx, "t1", team.RemoveDeletedMember{UserID: bob}, es.ExecOptions{Idempotency: key})
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != 3 || (i == 0 && len(res.Records) != 1) || (i == 1 && !res.Replayed) {
			t.Fatalf("attempt %d: v%d, %d events, replayed %v; want bob removed at v3, then that answer replayed",
				i, res.Version, len(res.Records), res.Replayed)
		}
	}
}

// unversionedKeys is a store whose appends without events (an idempotency
// record alone) are not conditional on the stream's version, as the
// DynamoDB store's are not: its condition is on the events' items.
type unversionedKeys struct{ *memory.Store }

func (s unversionedKeys) Append(ctx context.Context, req es.AppendRequest) error {
	if len(req.Records) == 0 {
		recs, err := s.Load(ctx, req.AggregateID, 1, 0)
		if err != nil {
			return err
		}
		req.ExpectedVersion = int64(len(recs))
	}
	return s.Store.Append(ctx, req)
}
