package projector_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// env is one test's stores: a DynamoDB event store with the user command
// service over it, a read-model table, and a projector between them.
type env struct {
	events *dynamo.Store
	tables dynamo.Tables
	views  *userviews.Store
	svc    *es.Service[user.State, user.Command]
	proj   *projector.Projector
}

func newEnv(t *testing.T) env {
	t.Helper()
	store, tables := readmodeltest.EventStore(t)
	views := userviews.New(readmodeltest.Store(t))
	return env{
		events: store, tables: tables, views: views,
		svc:  usertest.Service(store),
		proj: projector.New(store, user.NewRegistry(), views, userviews.Projections(), testLogger(t), time.Now),
	}
}

// testLogger writes the handler's log lines to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// history runs a user's life through the command service: created,
// renamed, email changed, suspended, reactivated, renamed again, and
// deleted when del is set. Every command is caused by actor.
func history(t *testing.T, svc *es.Service[user.State, user.Command], id, actor string, del bool) {
	t.Helper()
	cmds := []user.Command{
		user.Create{Name: "Ada", Email: id + "@example.com", Sub: "sub-" + id},
		user.Rename{Name: "Ada L."},
		user.ChangeEmail{Email: "new-" + id + "@example.com"},
		user.Suspend{Reason: "chargeback"},
		user.Reactivate{Reason: "resolved"},
		user.Rename{Name: "Ada Lovelace"},
	}
	if del {
		cmds = append(cmds, user.Delete{Reason: "asked to"})
	}
	for _, c := range cmds {
		if _, err := svc.Execute(t.Context(), id, c, es.ExecOptions{Metadata: es.Metadata{Actor: actor, Reason: "test"}}); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
}

// replay is the view the event store says user id should have: the
// user.ApplyView fold of its whole stream.
func replay(t *testing.T, e env, id string) (user.View, []es.Record) {
	t.Helper()
	recs, err := e.events.Load(t.Context(), id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := user.NewRegistry().DecodeAll(recs); err != nil {
		t.Fatal(err)
	}
	var v user.View
	for _, r := range recs {
		v = user.ApplyView(v, r)
	}
	return v, recs
}

// checkReadModel compares the read model of user id with the replay of its
// stream: the view, the email lookup, the applied versions and the actor's
// activity.
func checkReadModel(t *testing.T, e env, id, actor string) {
	t.Helper()
	ctx := t.Context()
	want, recs := replay(t, e, id)
	got, ok, err := e.views.UserView(ctx, id)
	if err != nil || !ok {
		t.Fatalf("view of %s: %v, %v", id, ok, err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("view of %s:\ngot  %+v\nwant %+v", id, got, want)
	}
	holder, held, err := e.views.UserIDByEmail(ctx, want.Email)
	if err != nil {
		t.Fatal(err)
	}
	if live := want.Status != user.StatusDeleted; held != live || (live && holder != id) {
		t.Errorf("lookup of %s: %q, %v; want held %v by %s", want.Email, holder, held, live, id)
	}
	if _, held, _ := e.views.UserIDByEmail(ctx, id+"@example.com"); held {
		t.Errorf("first address of %s still held", id)
	}
	applied, err := e.views.AppliedVersions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wantApplied := map[string]int64{userviews.ProjectionUserView: want.Version, userviews.ProjectionActorActivity: want.Version}
	if !reflect.DeepEqual(wantApplied, applied) {
		t.Errorf("applied versions of %s: %v, want %v", id, applied, wantApplied)
	}
	if actor == "" {
		return
	}
	acts, _, err := e.views.ActorActivity(ctx, actor, userviews.MaxLimit, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range acts {
		if a.AggregateID == id {
			n++
		}
	}
	if n != len(recs) {
		t.Errorf("activity of %s on %s: %d events, want %d", actor, id, n, len(recs))
	}
}

// message is the queue message the relay would send for rec.
func message(t *testing.T, rec es.Record) events.SQSMessage {
	t.Helper()
	body, err := relay.EncodeMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{
		MessageId: uuid.NewString(), Body: body, EventSource: "aws:sqs",
		Attributes: map[string]string{"MessageGroupId": rec.AggregateID, "MessageDeduplicationId": rec.ID},
	}
}

func handle(t *testing.T, p *projector.Projector, msgs ...events.SQSMessage) events.SQSEventResponse {
	t.Helper()
	resp, err := p.Handle(t.Context(), events.SQSEvent{Records: msgs})
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	return resp
}

func failedIDs(resp events.SQSEventResponse) []string {
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestFixture(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw, err := os.ReadFile("../../testdata/projector/sqs-user-created.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	resp, err := e.proj.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	const id = "0195a3c2-7a10-7c3e-9d2b-5f1e8a4b6c01"
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	want := user.View{ID: id, Version: 1, Name: "Ada Lovelace", Email: "ada@example.com", Sub: "auth0|ada",
		Status: user.StatusActive, CreatedAt: at, UpdatedAt: at}
	got, ok, err := e.views.UserView(t.Context(), id)
	if err != nil || !ok || !reflect.DeepEqual(want, got) {
		t.Errorf("view: %+v, %v, %v\nwant %+v", got, ok, err, want)
	}
	if holder, _, _ := e.views.UserIDByEmail(t.Context(), "ada@example.com"); holder != id {
		t.Errorf("lookup: %q", holder)
	}
	acts, _, err := e.views.ActorActivity(t.Context(), "auth0|ada", 10, "")
	if err != nil || len(acts) != 1 || acts[0].ID != "0195a3c2-7a11-7f00-8a6e-2c4d9b1e3f02" || acts[0].Metadata.CorrelationID != "req-7f3a" {
		t.Errorf("activity: %+v, %v", acts, err)
	}
	cps, err := e.views.Checkpoints(t.Context())
	if err != nil || len(cps) != 2 || cps[0].Processed != 1 || cps[0].LastEventID != "0195a3c2-7a11-7f00-8a6e-2c4d9b1e3f02" || !cps[0].LastEventAt.Equal(at) {
		t.Errorf("checkpoints: %+v, %v", cps, err)
	}
	// The same delivery again changes nothing.
	if resp := handle(t, e.proj, ev.Records...); len(resp.BatchItemFailures) != 0 {
		t.Errorf("redelivery failed: %v", failedIDs(resp))
	}
	if got2, _, _ := e.views.UserView(t.Context(), id); !reflect.DeepEqual(got, got2) {
		t.Errorf("redelivery changed the view: %+v", got2)
	}
}

// (b) One user's events, each delivered twice, shuffled and split across
// batches: gaps are healed from the event store, duplicates skipped, and the
// read model ends as the replay of the stream.
func TestShuffledDuplicatedDeliveries(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			id, actor := uuid.NewString(), "sub-"+uuid.NewString()
			history(t, e.svc, id, actor, seed == 1)
			_, recs := replay(t, e, id)

			var msgs []events.SQSMessage
			for _, r := range recs {
				msgs = append(msgs, message(t, r), message(t, r))
			}
			rng := rand.New(rand.NewPCG(seed, 42))
			rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
			for len(msgs) > 0 {
				n := min(1+rng.IntN(4), len(msgs))
				if resp := handle(t, e.proj, msgs[:n]...); len(resp.BatchItemFailures) != 0 {
					t.Fatalf("failures: %v", failedIDs(resp))
				}
				msgs = msgs[n:]
			}
			checkReadModel(t, e, id, actor)

			cps, err := e.views.Checkpoints(t.Context())
			if err != nil || len(cps) != 2 {
				t.Fatalf("checkpoints: %+v, %v", cps, err)
			}
			for _, c := range cps {
				last := recs[len(recs)-1]
				if c.Processed != int64(len(recs)) || c.LastEventID != last.ID {
					t.Errorf("checkpoint %+v: want %d processed, last %s", c, len(recs), last.ID)
				}
			}
		})
	}
}

// Batches of the same users handled concurrently, as parallel invocations
// on a standard queue would be: writes race on the applied versions and on
// the email lookups. Losers read again; what still fails is redelivered
// until nothing does, and the read model is the replay.
func TestConcurrentBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	actor := "sub-" + uuid.NewString()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	var pending []events.SQSMessage
	for i, id := range ids {
		history(t, e.svc, id, actor, i == 0)
		_, recs := replay(t, e, id)
		for _, r := range recs {
			for range 3 {
				pending = append(pending, message(t, r))
			}
		}
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })

	for round := 0; len(pending) > 0; round++ {
		if round == 5 {
			t.Fatalf("%d messages still failing after %d rounds", len(pending), round)
		}
		var (
			mu    sync.Mutex
			retry []events.SQSMessage
			wg    sync.WaitGroup
		)
		for batch := range slices.Chunk(pending, 3) {
			wg.Go(func() {
				resp, err := e.proj.Handle(t.Context(), events.SQSEvent{Records: batch})
				if err != nil {
					t.Errorf("Handle: %v", err)
				}
				failed := map[string]bool{}
				for _, f := range resp.BatchItemFailures {
					failed[f.ItemIdentifier] = true
				}
				mu.Lock()
				defer mu.Unlock()
				for _, m := range batch {
					if failed[m.MessageId] {
						retry = append(retry, m)
					}
				}
			})
		}
		wg.Wait()
		pending = retry
	}
	for _, id := range ids {
		checkReadModel(t, e, id, actor)
	}
}

// A message that fails is reported with every later message of its
// aggregate in the batch; the other aggregates' messages are applied.
func TestFailureBlocksLaterMessagesOfItsGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := uuid.NewString(), uuid.NewString()
	history(t, e.svc, a, "", false)
	history(t, e.svc, b, "", false)
	_, recsA := replay(t, e, a)
	_, recsB := replay(t, e, b)

	poison := recsA[1]
	poison.Type, poison.Data = "user.exploded.v1", json.RawMessage(`{}`)
	bad := message(t, poison)
	laterA := message(t, recsA[2])
	garbage := events.SQSMessage{MessageId: uuid.NewString(), Body: "{not json", Attributes: map[string]string{"MessageGroupId": "g-" + b}}
	msgs := []events.SQSMessage{message(t, recsA[0]), message(t, recsB[0]), bad, message(t, recsB[1]), laterA, garbage, message(t, recsB[2])}

	resp := handle(t, e.proj, msgs...)
	want := []string{bad.MessageId, laterA.MessageId, garbage.MessageId}
	if got := failedIDs(resp); !reflect.DeepEqual(want, got) {
		t.Errorf("failures %v, want %v", got, want)
	}
	applied, err := e.views.AppliedVersions(t.Context(), a)
	if err != nil || applied[userviews.ProjectionUserView] != 1 {
		t.Errorf("user A applied %v, %v; want 1", applied, err)
	}
	applied, err = e.views.AppliedVersions(t.Context(), b)
	if err != nil || applied[userviews.ProjectionUserView] != 3 {
		t.Errorf("user B applied %v, %v; want 3", applied, err)
	}
}
