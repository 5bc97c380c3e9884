package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// TestRelayRedriveLateWrite: a write that DynamoDB applied long after its
// writer had given up on it (the append window cut it, and the consistent
// read after the cut did not find it yet) arrives on the stream, and in its
// failed batch, well after its events' occurred-at + the append window. The
// batch's arrival window then lies after the event: the outage test lost
// welcome mails this way (DynamoDB Local applied cut creates 8 to 10 s after
// their occurred-at). chronicle relay redrive reads the batch back from the
// stream by the OnFailure record's sequence numbers and redrives its events
// wherever they lie in the feed.
func TestRelayRedriveLateWrite(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	client := awstest.SQS(t)
	notif := createQueue(t, client, s.name+"-notifications.fifo", nil)
	createQueue(t, client, s.name+"-projections.fifo", nil)
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(s.name + "-relay-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlq := aws.ToString(out.QueueUrl)

	// The failed batch arrived 30 s ago; it holds a user created just
	// before (in its window) and one whose create occurred 60 s ago and was
	// applied late.
	t0 := time.Now().UTC()
	arrival := t0.Add(-30 * time.Second).Truncate(time.Second)
	late, onTime := newID(), newID()
	want := map[string]bool{}
	for _, u := range []struct {
		id  string
		ago time.Duration
	}{{late, 60 * time.Second}, {onTime, 31 * time.Second}} {
		rec := es.Record{ID: newID(), AggregateID: u.id, AggregateType: "user", Version: 1, Type: "user.created.v1", SchemaVersion: 1,
			OccurredAt: t0.Add(-u.ago), Data: json.RawMessage(`{"name":"N","email":"` + u.id + `@example.com"}`)}
		if err := s.events.Append(ctx, es.AppendRequest{AggregateID: u.id, Records: []es.Record{rec}}); err != nil {
			t.Fatal(err)
		}
		want[rec.ID] = true
	}

	// The OnFailure record of the batch, as the mapping writes it: the
	// stream's shard and sequence numbers of its first and last records.
	desc, err := s.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.name + "-events")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(desc.Table.LatestStreamArn)
	streams := dynamodbstreams.NewFromConfig(awstest.Config(t))
	shard, seqs := streamRecords(t, streams, arn, 2)
	body := fmt.Sprintf(`{"requestContext":{"condition":"RetryAttemptsExhausted"},"version":"1.0","DDBStreamBatchInfo":{`+
		`"shardId":%q,"startSequenceNumber":%q,"endSequenceNumber":%q,"approximateArrivalOfFirstRecord":%q,`+
		`"approximateArrivalOfLastRecord":%q,"batchSize":2,"streamArn":%q}}`,
		shard, seqs[0], seqs[1], arrival.Format(time.RFC3339Nano), arrival.Format(time.RFC3339Nano), arn)
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}

	stdout, _, code := s.chronicle(t, "--json", "relay", "redrive")
	rep := decode[struct {
		Batches []redriveBatchJSON `json:"batches"`
	}](t, stdout)
	if code != 0 || len(rep.Batches) != 1 || rep.Batches[0].Outcome != "redriven" {
		t.Fatalf("relay redrive: exit %d, %+v", code, rep)
	}
	got := map[string]bool{}
	for {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(notif), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			rec, err := relay.DecodeMessage(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			got[rec.ID] = true
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("welcome-mail message of event %s not redriven (got %d of %d); the late write's user is never mailed", id, len(got), len(want))
		}
	}
}

// streamRecords reads the stream at arn from its start until it holds n
// records, and returns their shard and sequence numbers.
func streamRecords(t *testing.T, streams *dynamodbstreams.Client, arn string, n int) (string, []string) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range d.StreamDescription.Shards {
			it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn),
				ShardId: sh.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			var seqs []string
			for iter, pages := it.ShardIterator, 0; iter != nil && pages < 5; pages++ {
				out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range out.Records {
					seqs = append(seqs, aws.ToString(r.Dynamodb.SequenceNumber))
				}
				iter = out.NextShardIterator
			}
			if len(seqs) >= n {
				return aws.ToString(sh.ShardId), seqs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream %s does not hold %d records after 30 s", arn, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
