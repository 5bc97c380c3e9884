package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/template"
)

// records are stream records with sequence numbers 1..n.
func records(n int) []streamtypes.Record {
	out := make([]streamtypes.Record, n)
	for i := range out {
		out[i] = streamtypes.Record{EventName: streamtypes.OperationTypeInsert,
			Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String(strconv.Itoa(i + 1))}}
	}
	return out
}

// streamLog records the batches a stream function was invoked with.
type streamLog struct {
	mu      sync.Mutex
	batches [][]string
}

func (l *streamLog) add(ev events.DynamoDBEvent) []string {
	var seqs []string
	for _, r := range ev.Records {
		seqs = append(seqs, r.Change.SequenceNumber)
	}
	l.mu.Lock()
	l.batches = append(l.batches, seqs)
	l.mu.Unlock()
	return seqs
}

func streamPollerWith(r *Runner, ev template.StreamEvent, handler any) *streamPoller {
	fn := &function{id: "Fn", timeout: 5 * time.Second, handler: handler}
	r.functions = map[string]*function{"Fn": fn}
	return &streamPoller{r: r, m: streamMapping{function: "Fn", event: ev}, fn: fn, arn: "arn:stream"}
}

// TestStreamRetriesFromTheFirstFailedRecord: with ReportBatchItemFailures,
// a batch is retried from the first record reported failed.
func TestStreamRetriesFromTheFirstFailedRecord(t *testing.T) {
	var log streamLog
	failedOnce := false
	p := streamPollerWith(testRunner(), template.StreamEvent{BatchSize: 100, MaximumRetryAttempts: 10,
		FunctionResponseTypes: []string{template.ReportBatchItemFailures}},
		func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			seqs := log.add(ev)
			if !failedOnce && slices.Contains(seqs, "5") {
				failedOnce = true
				return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: "7"}, {ItemIdentifier: "5"}}}, nil
			}
			return events.DynamoDBEventResponse{}, nil
		})
	p.process(t.Context(), "shard", records(8))
	want := [][]string{{"1", "2", "3", "4", "5", "6", "7", "8"}, {"5", "6", "7", "8"}}
	if !slices.EqualFunc(log.batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v", log.batches, want)
	}
}

// TestStreamBisectsAndGivesUp: a record that always fails the function is
// isolated by bisection, retried MaximumRetryAttempts times, described to
// the on-failure queue and skipped; every other record is delivered once.
func TestStreamBisectsAndGivesUp(t *testing.T) {
	r := testRunner()
	r.sqs = awstest.SQS(t) // skips without the emulators
	out, err := r.sqs.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(awstest.TableName("onfailure"))})
	if err != nil {
		t.Fatal(err)
	}
	dest := aws.ToString(out.QueueUrl)
	t.Cleanup(func() { _, _ = r.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	r.res = &resources{queues: map[string]queueInfo{"DLQ": {url: dest}}}
	var log streamLog
	delivered := map[string]int{}
	p := streamPollerWith(r, template.StreamEvent{BatchSize: 100, MaximumRetryAttempts: 2, BisectBatchOnFunctionError: true, OnFailure: "DLQ"},
		func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			seqs := log.add(ev)
			if slices.Contains(seqs, "3") {
				return events.DynamoDBEventResponse{}, errors.New("poison")
			}
			for _, s := range seqs {
				delivered[s]++
			}
			return events.DynamoDBEventResponse{}, nil
		})
	p.process(t.Context(), "shard-1", records(8))

	for _, s := range []string{"1", "2", "4", "5", "6", "7", "8"} {
		if delivered[s] != 1 {
			t.Errorf("record %s delivered %d times; batches %v", s, delivered[s], log.batches)
		}
	}
	alone := 0
	for _, b := range log.batches {
		if slices.Equal(b, []string{"3"}) {
			alone++
		}
	}
	if alone != 3 { // the first attempt and two retries
		t.Errorf("record 3 alone %d times, want 3; batches %v", alone, log.batches)
	}

	got, err := r.sqs.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(dest), WaitTimeSeconds: 1})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("on-failure queue: %v, %v", got, err)
	}
	var msg struct {
		RequestContext struct {
			Condition string `json:"condition"`
		} `json:"requestContext"`
		Info struct {
			ShardID   string `json:"shardId"`
			Start     string `json:"startSequenceNumber"`
			End       string `json:"endSequenceNumber"`
			BatchSize int    `json:"batchSize"`
		} `json:"DDBStreamBatchInfo"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(got.Messages[0].Body)), &msg); err != nil {
		t.Fatal(err)
	}
	if msg.RequestContext.Condition != "RetryAttemptsExhausted" || msg.Info.ShardID != "shard-1" ||
		msg.Info.Start != "3" || msg.Info.End != "3" || msg.Info.BatchSize != 1 {
		t.Errorf("on-failure message %+v", msg)
	}
}

// TestArrivals: DynamoDB Local's arrival times, rounded down to the minute,
// become the time the record was read, to the second; DynamoDB's (to the
// second) and a backlog's stay.
func TestArrivals(t *testing.T) {
	minute := time.Date(2026, 12, 1, 21, 6, 0, 0, time.UTC)
	now := minute.Add(56*time.Second + 400*time.Millisecond)
	second := minute.Add(55 * time.Second)
	old := minute.Add(-2 * time.Minute)
	recs := []streamtypes.Record{
		{Dynamodb: &streamtypes.StreamRecord{ApproximateCreationDateTime: &minute}},
		{Dynamodb: &streamtypes.StreamRecord{ApproximateCreationDateTime: &second}},
		{Dynamodb: &streamtypes.StreamRecord{ApproximateCreationDateTime: &old}},
		{Dynamodb: &streamtypes.StreamRecord{}},
	}
	arrivals(recs, now)
	want := []time.Time{minute.Add(56 * time.Second), second, old}
	for i, w := range want {
		if got := *recs[i].Dynamodb.ApproximateCreationDateTime; !got.Equal(w) {
			t.Errorf("record %d: %s, want %s", i, got, w)
		}
	}
}
