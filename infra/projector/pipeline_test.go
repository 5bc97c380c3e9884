package projector_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

// waitFor bounds every wait on the queues.
const waitFor = 30 * time.Second

// relayStream reads the whole events stream of e from DynamoDB Local and
// hands it to a relay along routes, in batches of batch records.
func relayStream(t *testing.T, e env, routes relay.Routes, batch int) {
	t.Helper()
	ctx := t.Context()
	ev, err := relaytest.StreamEvent(ctx, awstest.DynamoDB(t), relaytest.Streams(t), e.tables.Events)
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New(awstest.SQS(t), routes, testLogger(t), time.Now)
	for recs := range slices.Chunk(ev.Records, batch) {
		resp, err := r.Handle(ctx, events.DynamoDBEvent{Records: recs})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("relay: %+v, %v", resp, err)
		}
	}
}

// drain runs the queue consumer as Lambda's event source mapping does:
// receive a batch, hand it to handle, delete what was not reported failed,
// until the queue is empty. It returns how often each message was received.
func drain(t *testing.T, client *sqs.Client, q *relaytest.Queue, visibility int,
	handle func(context.Context, events.SQSEvent) (events.SQSEventResponse, error),
	done func() bool) (receives map[string]int, batches [][]string) {
	t.Helper()
	ctx := t.Context()
	receives = map[string]int{}
	deadline := time.Now().Add(waitFor)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained in %v; receives so far %v", waitFor, receives)
		}
		ev, err := relaytest.Receive(ctx, client, q, 10, visibility)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Records) == 0 {
			visible, inFlight, err := relaytest.Depth(ctx, client, q)
			if err != nil {
				t.Fatal(err)
			}
			if visible == 0 && inFlight == 0 && done() {
				return receives, batches
			}
			time.Sleep(100 * time.Millisecond) // poll: messages in flight become visible again
			continue
		}
		var ids []string
		for _, m := range ev.Records {
			receives[m.MessageId]++
			ids = append(ids, m.MessageId)
		}
		batches = append(batches, ids)
		resp, err := handle(ctx, ev)
		if err != nil {
			t.Fatalf("handler error: %v", err)
		}
		if _, err := relaytest.Acknowledge(ctx, client, q, ev, resp); err != nil {
			t.Fatal(err)
		}
	}
}

// (a) Commands write events with the real DynamoDB event store; the relay
// reads them off the real stream and routes them to FIFO queues in moto; the
// projector consumes its queue; the read model equals the fold of the event
// store.
func TestPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := awstest.SQS(t)
	projections := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	notifications := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	routes, err := relay.ParseRoutes("user.created.v1=" + notifications.URL + "; *=" + projections.URL)
	if err != nil {
		t.Fatal(err)
	}
	actor := "sub-" + uuid.NewString()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for i, id := range ids {
		history(t, e.svc, id, actor, i == 1)
	}

	relayStream(t, e, routes, 7)
	receives, _ := drain(t, client, projections, 30, e.proj.Handle, func() bool { return true })
	for id, n := range receives {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
	for _, id := range ids {
		checkReadModel(t, e, id, actor)
	}

	// The notifications queue got the creations only, one per user.
	var created []string
	drain(t, client, notifications, 30, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		for _, m := range ev.Records {
			rec, err := relay.DecodeMessage(m.Body)
			if err != nil || rec.Type != "user.created.v1" || m.Attributes["MessageGroupId"] != rec.AggregateID ||
				m.Attributes["MessageDeduplicationId"] != rec.ID {
				t.Errorf("notification %+v: %+v, %v", m, rec, err)
			}
			created = append(created, rec.AggregateID)
		}
		return events.SQSEventResponse{}, nil
	}, func() bool { return true })
	slices.Sort(created)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(created, want) {
		t.Errorf("notified %v, want %v", created, want)
	}
}

// (c) A message that always fails is received maxReceiveCount times, then
// lands in the dead-letter queue; the other messages of its batch are
// applied and deleted the first time.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := awstest.SQS(t)
	const visibility, maxReceives = 1, 2
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{VisibilityTimeout: visibility, MaxReceiveCount: maxReceives})

	// The poison first, so that it leads the batch.
	poison := es.Record{
		ID: uuid.NewString(), AggregateID: uuid.NewString(), AggregateType: "user", Version: 1,
		Type: "user.exploded.v1", SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: []byte(`{}`),
	}
	body, err := relay.EncodeMessage(poison)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{
		QueueUrl: aws.String(q.URL), MessageBody: aws.String(body),
		MessageGroupId: aws.String(poison.AggregateID), MessageDeduplicationId: aws.String(poison.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	poisonID := aws.ToString(sent.MessageId)

	actor := "sub-" + uuid.NewString()
	ids := []string{uuid.NewString(), uuid.NewString()}
	for _, id := range ids {
		history(t, e.svc, id, actor, false)
	}
	relayStream(t, e, relay.Routes{relay.Wildcard: {q.URL}}, 100)

	dlqHolds := func() bool {
		visible, _, err := relaytest.Depth(t.Context(), client, q.DLQ)
		return err == nil && visible == 1
	}
	receives, batches := drain(t, client, q, visibility, e.proj.Handle, dlqHolds)

	if receives[poisonID] != maxReceives {
		t.Errorf("poison received %d times, want %d", receives[poisonID], maxReceives)
	}
	others := 0
	for id, n := range receives {
		if id == poisonID {
			continue
		}
		others++
		if n != 1 {
			t.Errorf("message %s received %d times, want once", id, n)
		}
	}
	if len(batches) == 0 || !slices.Contains(batches[0], poisonID) || len(batches[0]) < 2 {
		t.Errorf("first batch %v should hold the poison and others", batches)
	}
	for _, id := range ids {
		checkReadModel(t, e, id, actor)
	}

	dead, err := relaytest.Receive(t.Context(), client, q.DLQ, 10, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead.Records) != 1 || dead.Records[0].Body != body {
		t.Errorf("dead letters: %+v, want the poison", dead.Records)
	}
	t.Logf("poison received %d times; %d other messages handled once; batches %v", receives[poisonID], others, batches)
}
