package feed_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// onFailure is an OnFailure record of a DynamoDB stream mapping, as Lambda
// sends it (the shape its documentation shows).
const onFailure = `{
  "requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:relay",
    "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
  "version": "1.0", "timestamp": "%s",
  "DDBStreamBatchInfo": {"shardId": "shardId-00000001573689847184-864758bb", "startSequenceNumber": "800000000003126276362",
    "endSequenceNumber": "800000000003126276362", "approximateArrivalOfFirstRecord": "%s",
    "approximateArrivalOfLastRecord": "%s", "batchSize": 3, "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2019-11-14T00:04:06.388"}}`

func TestParseFailureRecord(t *testing.T) {
	first := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	b, err := relay.ParseFailureRecord(fmt.Sprintf(onFailure, first.Add(time.Minute).Format(time.RFC3339Nano),
		first.Format(time.RFC3339Nano), first.Add(2*time.Second).Format(time.RFC3339Nano)))
	if err != nil || !b.FirstArrival.Equal(first) || b.BatchSize != 3 || b.ShardID == "" {
		t.Fatalf("%+v, %v", b, err)
	}
	from, to := b.Window(5*time.Second, time.Second)
	if !from.Equal(first.Add(-6*time.Second)) || !to.Equal(first.Add(4*time.Second)) {
		t.Errorf("window %s..%s", from, to)
	}
	for _, bad := range []string{"", "{}", `{"DDBStreamBatchInfo":{}}`} {
		if _, err := relay.ParseFailureRecord(bad); err == nil {
			t.Errorf("ParseFailureRecord(%q): no error", bad)
		}
	}
}

// TestRedrive: the events of a failed batch, found in the feed by the
// batch's arrival times, reach the subscriber's queue again; events well
// outside its window do not; a batch too recent for the feed's horizon is
// refused.
func TestRedrive(t *testing.T) {
	ctx := t.Context()
	client := awstest.DynamoDB(t)
	tables := dynamo.Tables{Events: awstest.TableName("events"), Guards: awstest.TableName("guards"), Snapshots: awstest.TableName("snapshots")}
	if err := dynamo.CreateTables(ctx, client, tables); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dynamo.DeleteTables(t.Context(), client, tables) })
	sqsc := awstest.SQS(t)
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.TableName("redrive") + ".fifo"),
		Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	store := dynamo.New(client, tables)
	t0 := time.Now()
	// Seconds before t0 of each event; the batch arrived 20 s to 15 s before t0.
	ago := []int{40, 25, 20, 18, 15, 5}
	want := map[string]bool{}
	for _, s := range ago {
		id := uuid.NewString()
		rec := es.Record{ID: uuid.Must(uuid.NewV7()).String(), AggregateID: id, AggregateType: "user", Version: 1,
			Type: "user.renamed.v1", SchemaVersion: 1, OccurredAt: t0.Add(-time.Duration(s) * time.Second), Data: json.RawMessage(`{}`)}
		if err := store.Append(ctx, es.AppendRequest{AggregateID: id, Records: []es.Record{rec}}); err != nil {
			t.Fatal(err)
		}
		if s >= 15 && s <= 25 {
			want[rec.ID] = true
		}
	}
	b := relay.BatchInfo{FirstArrival: t0.Add(-20*time.Second + 100*time.Millisecond), LastArrival: t0.Add(-15*time.Second + 100*time.Millisecond)}
	rl := relay.New(sqsc, relay.Routes{"*": {aws.ToString(q.QueueUrl)}}, slog.New(slog.DiscardHandler), time.Now)
	reader := dynamo.New(client, tables, dynamo.WithFeedWindow(time.Second))
	if _, _, err := feed.Redrive(ctx, reader, rl, b, nil, t0.Add(-10*time.Second), dynamo.FeedWindow); !errors.Is(err, feed.ErrTooRecent) {
		t.Fatalf("a batch newer than the horizon: %v, want ErrTooRecent", err)
	}
	events, sent, err := feed.Redrive(ctx, reader, rl, b, nil, t0, time.Second)
	if err != nil || events != len(want) || sent != len(want) {
		t.Fatalf("redrive: %d events, %d sent, %v; want %d", events, sent, err, len(want))
	}
	var got []string
	for len(got) < len(want) {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			rec, err := relay.DecodeMessage(aws.ToString(m.Body))
			if err != nil || m.Attributes["MessageDeduplicationId"] != rec.ID {
				t.Fatalf("message %s: %v", aws.ToString(m.Body), err)
			}
			got = append(got, rec.ID)
		}
	}
	slices.Sort(got)
	if len(got) != len(want) || !func() bool {
		for _, id := range got {
			if !want[id] {
				return false
			}
		}
		return true
	}() {
		t.Fatalf("queue holds %v, want the %d events of the window", got, len(want))
	}
}
