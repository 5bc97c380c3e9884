package rebuild

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestReplayAcrossInvocations: the replay handler runs a rebuild one
// bounded slice per message, sending itself the next slice, until the new
// generation is active; a continuation delivered again starts nothing.
func TestReplayAcrossInvocations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ddb, client := awstest.DynamoDB(t), awstest.SQS(t)
	_, tables := readmodeltest.EventStore(t)
	table := awstest.TableName("readmodel")
	if err := userviews.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := readmodel.DeleteTable(ctx, ddb, table); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	rm := readmodel.New(ddb, table)
	ids, err := rebuildtest.Seed(ctx, ddb, tables.Events, 30, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	// The handler's clients are the replay function's, under the IAM
	// check; the test's (sending, receiving, checking) are not.
	cfg := awstest.Config(t)
	check := iamcheck.ForTest(t, cfg.Region, "ReplayFunction", map[string]string{
		"EventsTable": tables.Events, "GuardsTable": tables.Guards, "SnapshotsTable": tables.Snapshots,
		"ReadModelTable": table, "ReplayQueue": awstest.QueueName(q.URL),
	})
	fnDDB := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, check) })
	fnSQS := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, check) })
	h := NewReplay(New(fnDDB, tables.Events, dynamo.New(fnDDB, tables), readmodel.New(fnDDB, table), user.NewRegistry(), userviews.Projections(), nil),
		fnSQS, q.URL, slog.New(slog.DiscardHandler), nil)
	// A budget always spent: one page per segment per slice.
	h.margin, h.opts = time.Hour, Options{PageSize: 10, Settle: -1}

	send := func(r Request) {
		body, _ := json.Marshal(r)
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(string(body)),
			MessageGroupId: aws.String(MessageGroup(r.Projection)), MessageDeduplicationId: aws.String(uuid.NewString())}); err != nil {
			t.Fatal(err)
		}
	}
	send(Request{Projection: userviews.ProjectionUserView, Segments: 2})
	slices := 0
	for deadline := time.Now().Add(time.Minute); ; {
		if time.Now().After(deadline) {
			t.Fatalf("not done after %d slices", slices)
		}
		ev, err := relaytest.Receive(ctx, client, q, 1, 30)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Records) == 0 {
			break
		}
		slices++
		invocation, cancel := context.WithTimeout(ctx, time.Minute) // Lambda's deadline
		resp, err := h.Handle(invocation, ev)
		cancel()
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("slice %d: %+v %v", slices, resp, err)
		}
		if _, err := relaytest.Acknowledge(ctx, client, q, ev, resp); err != nil {
			t.Fatal(err)
		}
	}
	g, err := rm.Generation(ctx, userviews.ProjectionUserView)
	if err != nil || g.Active != 2 || g.Building != 0 {
		t.Fatalf("generation %+v %v", g, err)
	}
	if slices < 3 {
		t.Fatalf("done in %d slices: the budget did not bound them", slices)
	}
	for _, id := range ids {
		if v, ok, err := userviews.New(rm).UserView(ctx, id); err != nil || !ok || v.Version != 3 {
			t.Fatalf("view of %s: %+v %v %v", id, v, ok, err)
		}
	}

	// A continuation of the finished build, delivered again: nothing happens.
	send(Request{Projection: userviews.ProjectionUserView, Generation: 2})
	ev, err := relaytest.Receive(ctx, client, q, 1, 30)
	if err != nil || len(ev.Records) != 1 {
		t.Fatal(len(ev.Records), err)
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatal(resp, err)
	}
	if _, err := relaytest.Acknowledge(ctx, client, q, ev, resp); err != nil {
		t.Fatal(err)
	}
	if g, _ := rm.Generation(ctx, userviews.ProjectionUserView); g.Active != 2 || g.Building != 0 || g.Latest != 2 {
		t.Fatalf("generation after a stale continuation: %+v", g)
	}
	if ev, _ := relaytest.Receive(ctx, client, q, 1, 30); len(ev.Records) != 0 {
		t.Fatal("a stale continuation sent another")
	}
}
