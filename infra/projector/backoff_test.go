package projector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestFailedMessagesComeBackInSeconds: a message the projector fails, and
// the later message of its group it holds back, are visible again about a
// second later (relay.Backoff), not after the queue's visibility timeout.
//
// Their order is SQS's to keep (a FIFO group is held while any of its
// messages is in flight); moto hands out a group's messages that become
// visible together last first, so the test acknowledges what it receives,
// as a consumer would, and checks only that both come back.
func TestFailedMessagesComeBackInSeconds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	client := awstest.SQS(t)
	const visibility = 30 // seconds: what the failed messages would wait without backoff
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{VisibilityTimeout: visibility})
	p := projector.New(e.events, user.NewRegistry(), e.views, userviews.Projections(), testLogger(t), time.Now,
		projector.WithBackoff(&relay.Backoff{Client: client, QueueURL: q.URL, Log: testLogger(t)}))

	id := newID()
	res, err := e.svc.Execute(ctx, id, user.Create{Name: "Ada", Email: id + "@example.com"}, es.ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poison := res.Records[0]
	poison.Type, poison.Data = "user.exploded.v1", json.RawMessage(`{}`)
	later := res.Records[0]
	later.ID, later.Version = uuid.NewString(), 2
	for _, rec := range []es.Record{poison, later} {
		body, err := relay.EncodeMessage(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body),
			MessageGroupId: aws.String(id), MessageDeduplicationId: aws.String(rec.ID)}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := relaytest.Receive(ctx, client, q, 10, visibility)
	if err != nil || len(ev.Records) != 2 {
		t.Fatalf("received %d messages, %v; want 2", len(ev.Records), err)
	}
	failedAt := time.Now()
	resp, err := p.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("failures %v, %v; want both messages", failedIDs(resp), err)
	}

	want := slices.Sorted(slices.Values([]string{ev.Records[0].MessageId, ev.Records[1].MessageId}))
	got, err := relaytest.Redelivered(ctx, client, q, want, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after %s, received again %v of %v: the failed messages wait the queue's %d s visibility timeout",
			time.Since(failedAt).Round(time.Millisecond), got, want, visibility)
	}
	t.Logf("failed messages received again %s after the batch", time.Since(failedAt).Round(time.Millisecond))
}

// slowView delays every write of the projection it wraps by delay (or
// until ctx ends): a loaded read-model table.
type slowView struct {
	projection.Projection
	delay time.Duration
}

func (s slowView) Write(ctx context.Context, rm *readmodel.Store, before projection.State, applied int64, recs []es.Record) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return fmt.Errorf("save view of %s: %w", recs[0].AggregateID, ctx.Err())
	}
	return s.Projection.Write(ctx, rm, before, applied, recs)
}

// TestStopsBeforeTheDeadline: with a batch longer than its invocation, the
// projector stops starting messages StartBudget before the deadline and
// fails the rest untouched, and answers before the deadline, rather than
// running into it (Lambda would then fail the whole batch).
func TestStopsBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const delay = 400 * time.Millisecond
	// One group at a time, so that the batch outlasts the invocation: at
	// the default concurrency its eight users run at once and finish well
	// within it. The budget is checked as each group starts either way.
	p := projector.New(e.events, user.NewRegistry(), e.views,
		[]projection.Projection{slowView{userviews.View, delay}, userviews.Activity}, testLogger(t), time.Now,
		projector.WithGroupConcurrency(1))

	var msgs []events.SQSMessage
	ids := map[string]string{} // message id: user id
	for range 8 {
		id := newID()
		res, err := e.svc.Execute(ctx, id, user.Create{Name: "Ada", Email: id + "@example.com"}, es.ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := message(t, res.Records[0])
		msgs = append(msgs, m)
		ids[m.MessageId] = id
	}
	// Two seconds past the start budget: about five groups start on a
	// quiet machine (8 × 400 ms would need 3.2 s), and the first has 2.5 s
	// before Reserve cuts it, which a loaded machine's writes need.
	deadline := time.Now().Add(projector.StartBudget + 2*time.Second)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	resp, err := p.Handle(dctx, events.SQSEvent{Records: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(deadline); left <= 0 {
		t.Errorf("Handle returned %s after the deadline", (-left).Round(time.Millisecond))
	}
	failed := failedIDs(resp)
	if len(failed) == 0 || len(failed) == len(msgs) {
		t.Fatalf("failures %d of %d: want the batch cut short after some progress", len(failed), len(msgs))
	}
	// The failed messages are the tail of the batch.
	if !slices.Equal(failed, func() []string {
		var tail []string
		for _, m := range msgs[len(msgs)-len(failed):] {
			tail = append(tail, m.MessageId)
		}
		return tail
	}()) {
		t.Errorf("failed %v, want the tail of the batch", failed)
	}
	// The applied messages are complete; the last one was never started (a
	// message running at Reserve before the deadline may be cut off halfway:
	// its retry completes it).
	for i, m := range msgs {
		applied, err := e.views.AppliedVersions(ctx, ids[m.MessageId])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity} {
			switch {
			case !slices.Contains(failed, m.MessageId) && applied[name] != 1:
				t.Errorf("%s of applied message %s: v%d, want v1", name, m.MessageId, applied[name])
			case i == len(msgs)-1 && applied[name] != 0:
				t.Errorf("%s of the last message, never started: v%d, want v0", name, applied[name])
			}
		}
	}
}
