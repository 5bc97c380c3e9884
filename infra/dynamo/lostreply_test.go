package dynamo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
)

// TestAppendLostReply: every write reaches DynamoDB and applies, and its
// reply is lost until the SDK's last attempt (faults.LostReplies), so the
// SDK sends each append again after it applied. An append must still answer
// what a single successful call answers, and write its events once.
func TestAppendLostReply(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := faults.New(1)
	_, tables := newTables(t)
	store := dynamo.New(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1)), tables)

	t.Run("single event (PutItem)", func(t *testing.T) {
		id := newID()
		for v := range int64(3) {
			if err := store.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: v, Records: records(id, v, 1, 10)}); err != nil {
				t.Fatalf("append v%d after a lost reply: %v", v+1, err)
			}
		}
		checkStream(t, store, id, 3)
		// A real conflict is still one: the event is someone else's.
		err := store.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 2, Records: records(id, 2, 1, 10)})
		if !errors.Is(err, es.ErrConflict) {
			t.Errorf("append over another event v3: %v, want ErrConflict", err)
		}
	})
	t.Run("transaction (TransactWriteItems)", func(t *testing.T) {
		id := newID()
		now := time.Now()
		err := store.Append(ctx, es.AppendRequest{
			AggregateID: id, Records: records(id, 0, 2, 10),
			Claims: []es.Guard{{Key: "email#" + id + "@example.com", Owner: id}},
			Idempotency: &es.IdempotencyRecord{Key: "k-" + id, RequestHash: "h", AggregateID: id, Version: 2,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		})
		if err != nil {
			t.Fatalf("append after a lost reply: %v", err)
		}
		checkStream(t, store, id, 2)
	})
	counts := in.Counts()
	t.Logf("faults: %s", in)
	for _, op := range []string{"PutItem", "TransactWriteItems"} {
		if counts["lostreply.DynamoDB."+op] == 0 {
			t.Errorf("no reply to %s was lost", op)
		}
	}
}

// checkStream fails unless aggregate id holds exactly versions 1..n.
func checkStream(t *testing.T, store *dynamo.Store, id string, n int64) {
	t.Helper()
	recs, err := store.Load(t.Context(), id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(recs)) != n {
		t.Fatalf("%s holds %d events, want %d", id, len(recs), n)
	}
	for i, r := range recs {
		if r.Version != int64(i)+1 {
			t.Fatalf("%s: event %d is v%d", id, i, r.Version)
		}
	}
}
