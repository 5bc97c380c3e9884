package projector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// The coalesced writes: the messages of one aggregate in a batch are folded
// and written once per projection.

// calls counts the DynamoDB operations of a client, by name, through an
// SDK middleware: what reaches the wire (after the SDK's retries, which
// each count).
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[op]++
}

// take returns the counts so far and starts again from zero.
func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countedEnv is newEnv with the read model behind a client whose calls are
// counted, its config changed by cfg (nil: none). It creates its one
// read-model table itself (newEnv's would go unused).
func countedEnv(t *testing.T, cfg func(aws.Config) aws.Config) (env, *calls) {
	t.Helper()
	store, tables := readmodeltest.EventStore(t)
	e := env{events: store, tables: tables, svc: usertest.Service(store)}
	c := &calls{n: map[string]int{}}
	conf := awstest.Config(t)
	if cfg != nil {
		conf = cfg(conf)
	}
	conf.APIOptions = append(conf.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.add(awsmiddleware.GetOperationName(ctx))
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
	table := awstest.TableName("readmodel")
	plain := awstest.DynamoDB(t)
	if err := userviews.CreateTable(t.Context(), plain, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := readmodel.DeleteTable(ctx, plain, table); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	e.views = userviews.New(readmodel.New(dynamodb.NewFromConfig(conf), table))
	e.proj = projector.New(e.events, user.NewRegistry(), e.views, userviews.Projections(), testLogger(t), time.Now)
	return e, c
}

// life runs n commands on user id, all caused by actor: created, then
// renamed, with an email change every fourth command (checkReadModel wants
// one: n >= 5). It returns the decoded records.
func life(t *testing.T, e env, id, actor string, n int) []es.Record {
	t.Helper()
	for i := range n {
		var c user.Command = user.Rename{Name: fmt.Sprintf("Ada %d", i)}
		switch {
		case i == 0:
			c = user.Create{Name: "Ada", Email: id + "@example.com", Sub: "sub-" + id}
		case i%4 == 0:
			c = user.ChangeEmail{Email: fmt.Sprintf("%d-%s@example.com", i, id)}
		}
		if _, err := e.svc.Execute(t.Context(), id, c, es.ExecOptions{Metadata: es.Metadata{Actor: actor, Reason: "test"}}); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	_, recs := replay(t, e, id)
	return recs
}

func messages(t *testing.T, recs ...es.Record) []events.SQSMessage {
	t.Helper()
	var msgs []events.SQSMessage
	for _, r := range recs {
		msgs = append(msgs, message(t, r))
	}
	return msgs
}

// checkActivity checks that actor's activity holds each of recs' events
// exactly once, and nothing else of their aggregate.
func checkActivity(t *testing.T, e env, actor string, recs []es.Record) {
	t.Helper()
	acts, _, err := e.views.ActorActivity(t.Context(), actor, userviews.MaxLimit, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, a := range acts {
		seen[a.ID]++
	}
	for _, r := range recs {
		if seen[r.ID] != 1 {
			t.Errorf("activity of %s: v%d %d times, want once", actor, r.Version, seen[r.ID])
		}
		delete(seen, r.ID)
	}
	if len(seen) > 0 {
		t.Errorf("activity of %s: %d rows of events not applied", actor, len(seen))
	}
}

func wantCalls(t *testing.T, got map[string]int, want map[string]int) {
	t.Helper()
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s: %d calls, want %d (all: %v)", op, got[op], n, got)
		}
	}
}

// A batch of ten events of one user makes one view write (a transaction),
// one batch write of its activity rows and one activity version: not ten
// of each.
func TestCoalescedBatchWritesOnce(t *testing.T) {
	t.Parallel()
	e, c := countedEnv(t, nil)
	id, actor := newID(), "sub-"+uuid.NewString()
	recs := life(t, e, id, actor, 10)
	c.take()
	if resp := handle(t, e.proj, messages(t, recs...)...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	got := c.take()
	t.Logf("calls: %v", got)
	wantCalls(t, got, map[string]int{"TransactWriteItems": 1, "BatchWriteItem": 1, "Query": 1})
	checkReadModel(t, e, id, actor)
	checkActivity(t, e, actor, recs)
}

// Two aggregates interleaved in one batch: one write per aggregate and
// projection, each aggregate in its own order.
func TestCoalescedMixedAggregates(t *testing.T) {
	t.Parallel()
	e, c := countedEnv(t, nil)
	a, b, actor := newID(), newID(), "sub-"+uuid.NewString()
	recsA, recsB := life(t, e, a, actor, 5), life(t, e, b, actor, 5)
	var msgs []events.SQSMessage
	for i := range 5 {
		msgs = append(msgs, message(t, recsA[i]), message(t, recsB[i]))
	}
	c.take()
	if resp := handle(t, e.proj, msgs...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	wantCalls(t, c.take(), map[string]int{"TransactWriteItems": 2, "BatchWriteItem": 2, "Query": 2})
	checkReadModel(t, e, a, actor)
	checkReadModel(t, e, b, actor)
	checkActivity(t, e, actor, append(recsA, recsB...))
}

// A gap before the run (events the projector never received) is read from
// the event store and applied in the same write; so is a gap inside it.
func TestCoalescedGapsHealed(t *testing.T) {
	t.Parallel()
	e, c := countedEnv(t, nil)
	id, actor := newID(), "sub-"+uuid.NewString()
	recs := life(t, e, id, actor, 10)
	if resp := handle(t, e.proj, messages(t, recs[:2]...)...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	// v3, v4 before the run and v7 inside it are missing.
	c.take()
	if resp := handle(t, e.proj, messages(t, recs[4], recs[5], recs[7], recs[8], recs[9])...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	wantCalls(t, c.take(), map[string]int{"TransactWriteItems": 1, "BatchWriteItem": 1})
	checkReadModel(t, e, id, actor)
	checkActivity(t, e, actor, recs)
}

// A poison message in the middle of a run: the events before it are
// applied, it and the later messages of its group are reported, and other
// groups are applied.
func TestCoalescedPoisonInTheMiddle(t *testing.T) {
	t.Parallel()
	e, _ := countedEnv(t, nil)
	a, b, actor := newID(), newID(), "sub-"+uuid.NewString()
	recsA, recsB := life(t, e, a, actor, 6), life(t, e, b, actor, 5)
	poison := recsA[3]
	poison.Type, poison.Data = "user.exploded.v1", json.RawMessage(`{}`)
	msgs := messages(t, recsA[0], recsA[1], recsA[2])
	bad := message(t, poison)
	msgs = append(msgs, message(t, recsB[0]), bad, message(t, recsB[1]), message(t, recsA[4]), message(t, recsA[5]), message(t, recsB[2]))
	msgs = append(msgs, messages(t, recsB[3:]...)...)
	resp := handle(t, e.proj, msgs...)
	want := []string{bad.MessageId, msgs[6].MessageId, msgs[7].MessageId}
	if got := failedIDs(resp); !reflect.DeepEqual(got, want) {
		t.Errorf("failures %v, want %v (the poison and A's later messages)", got, want)
	}
	applied, err := e.views.AppliedVersions(t.Context(), a)
	if want := map[string]int64{userviews.ProjectionUserView: 3, userviews.ProjectionActorActivity: 3}; err != nil || !reflect.DeepEqual(applied, want) {
		t.Errorf("A applied %v, %v; want %v", applied, err, want)
	}
	checkReadModel(t, e, b, actor)
	checkActivity(t, e, actor, append(recsA[:3:3], recsB...))
}

// A coalesced batch delivered again, whole or in part and with its own
// duplicates, writes nothing more and is acknowledged.
func TestCoalescedDuplicateRedelivery(t *testing.T) {
	t.Parallel()
	e, c := countedEnv(t, nil)
	id, actor := newID(), "sub-"+uuid.NewString()
	recs := life(t, e, id, actor, 10)
	msgs := messages(t, recs...)
	if resp := handle(t, e.proj, msgs...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	c.take()
	if resp := handle(t, e.proj, msgs...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("redelivery: failures %v", failedIDs(resp))
	}
	if resp := handle(t, e.proj, msgs[7], msgs[3], msgs[7], msgs[9]); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("partial redelivery: failures %v", failedIDs(resp))
	}
	wantCalls(t, c.take(), map[string]int{"TransactWriteItems": 0, "BatchWriteItem": 0, "PutItem": 0})
	checkReadModel(t, e, id, actor)
	checkActivity(t, e, actor, recs)
}

// Every write of the coalesced batch applies and its reply is lost until
// the SDK's last attempt: each retry finds its own write, and the batch is
// acknowledged with the read model as one clean delivery leaves it.
func TestCoalescedLostReplies(t *testing.T) {
	t.Parallel()
	in := faults.New(3)
	e, c := countedEnv(t, func(cfg aws.Config) aws.Config { return faults.WithLostReplies(cfg, in, 1) })
	a, b, actor := newID(), newID(), "sub-"+uuid.NewString()
	recsA, recsB := life(t, e, a, actor, 10), life(t, e, b, actor, 5)
	msgs := append(messages(t, recsA...), messages(t, recsB...)...)
	c.take()
	if resp := handle(t, e.proj, msgs...); len(resp.BatchItemFailures) > 0 {
		t.Fatalf("failures %v", failedIDs(resp))
	}
	// The middleware counts calls, not the SDK's attempts: one view write
	// and one activity version per aggregate, each sent again after its
	// lost reply.
	wantCalls(t, c.take(), map[string]int{"TransactWriteItems": 2, "BatchWriteItem": 2})
	lost := in.Counts()
	for _, op := range []string{"TransactWriteItems", "BatchWriteItem", "PutItem"} {
		if lost["lostreply.DynamoDB."+op] < 2 {
			t.Errorf("%s: %d replies lost, want at least 2 (all: %v)", op, lost["lostreply.DynamoDB."+op], lost)
		}
	}
	checkReadModel(t, e, a, actor)
	checkReadModel(t, e, b, actor)
	checkActivity(t, e, actor, append(recsA, recsB...))
}

// failingWrites makes the run writes of the projections it wraps fail for
// the aggregates in fail (by projection), once each.
type failingWrites struct {
	mu   sync.Mutex
	fail map[string]string // aggregate id: projection
}

var errInjected = errors.New("injected write failure")

func (f *failingWrites) strike(id, projection string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[id] != projection {
		return false
	}
	delete(f.fail, id)
	return true
}

// projections are the User service's projections, their writes failing
// as f says.
func (f *failingWrites) projections() []projection.Projection {
	var out []projection.Projection
	for _, p := range userviews.Projections() {
		out = append(out, failingWrite{p, f})
	}
	return out
}

type failingWrite struct {
	projection.Projection
	f *failingWrites
}

func (w failingWrite) Write(ctx context.Context, rm *readmodel.Store, before projection.State, applied int64, recs []es.Record) error {
	if w.f.strike(recs[0].AggregateID, w.Name()) {
		return errInjected
	}
	return w.Projection.Write(ctx, rm, before, applied, recs)
}

// When a coalesced write fails, its group is reported from the first
// message not yet applied: never one applied before (a duplicate at the
// head of the run), always every later one. A failure of the second
// projection reports the same messages although the first applied them.
// The redelivery completes them.
func TestCoalescedWriteFailure(t *testing.T) {
	t.Parallel()
	for _, projection := range []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity} {
		t.Run(projection, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			a, b, actor := newID(), newID(), "sub-"+uuid.NewString()
			recsA, recsB := life(t, e, a, actor, 6), life(t, e, b, actor, 5)
			if resp := handle(t, e.proj, messages(t, recsA[:3]...)...); len(resp.BatchItemFailures) > 0 {
				t.Fatalf("failures %v", failedIDs(resp))
			}
			rm := &failingWrites{fail: map[string]string{a: projection}}
			p := projector.New(e.events, user.NewRegistry(), e.views, rm.projections(), testLogger(t), time.Now)
			// A's v2 and v3 are applied already; v4..v6 are not.
			msgs := messages(t, recsA[1], recsB[0], recsA[2], recsA[3], recsB[1], recsA[4], recsA[5], recsB[2], recsB[3], recsB[4])
			resp := handle(t, p, msgs...)
			want := []string{msgs[3].MessageId, msgs[5].MessageId, msgs[6].MessageId}
			if got := failedIDs(resp); !reflect.DeepEqual(got, want) {
				t.Errorf("failures %v, want %v (A's v4, v5, v6)", got, want)
			}
			checkReadModel(t, e, b, actor)
			if resp := handle(t, p, msgs[3], msgs[5], msgs[6]); len(resp.BatchItemFailures) > 0 {
				t.Fatalf("redelivery: failures %v", failedIDs(resp))
			}
			checkReadModel(t, e, a, actor)
			checkActivity(t, e, actor, append(recsA, recsB...))
		})
	}
}
