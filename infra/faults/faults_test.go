package faults_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/chronicle-go/chronicle/infra/faults"
)

// countingDynamoDB answers every call and counts them.
type countingDynamoDB struct {
	faults.DynamoDBClient // nil: only the methods below are called
	calls                 int
}

func (c *countingDynamoDB) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.calls++
	return &dynamodb.GetItemOutput{}, nil
}

func (c *countingDynamoDB) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.calls++
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func TestDynamoDBFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("none", func(t *testing.T) {
		inner := &countingDynamoDB{}
		d := faults.NewDynamoDB(inner, faults.New(1), faults.DynamoDBFaults{})
		for range 100 {
			if _, err := d.GetItem(ctx, &dynamodb.GetItemInput{}); err != nil {
				t.Fatal(err)
			}
		}
		if inner.calls != 100 {
			t.Errorf("%d calls passed, want 100", inner.calls)
		}
	})
	t.Run("error before the call", func(t *testing.T) {
		inner := &countingDynamoDB{}
		d := faults.NewDynamoDB(inner, faults.New(1), faults.DynamoDBFaults{Error: 1})
		_, err := d.GetItem(ctx, &dynamodb.GetItemInput{})
		var ise *types.InternalServerError
		var op *smithy.OperationError
		if !errors.As(err, &ise) || !errors.As(err, &op) || op.OperationName != "GetItem" || inner.calls != 0 {
			t.Errorf("err %v (%T), %d calls passed", err, err, inner.calls)
		}
	})
	t.Run("throttling, every shape", func(t *testing.T) {
		inner := &countingDynamoDB{}
		in := faults.New(2)
		d := faults.NewDynamoDB(inner, in, faults.DynamoDBFaults{Throttle: 1})
		seen := map[string]bool{}
		items := []types.TransactWriteItem{{}, {}, {}}
		for range 200 {
			_, err := d.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
			var (
				pte *types.ProvisionedThroughputExceededException
				rle *types.RequestLimitExceeded
				tce *types.TransactionCanceledException
				api smithy.APIError
			)
			switch {
			case errors.As(err, &pte):
				seen["ProvisionedThroughputExceeded"] = true
			case errors.As(err, &rle):
				seen["RequestLimitExceeded"] = true
			case errors.As(err, &tce):
				codes := []string{}
				for _, r := range tce.CancellationReasons {
					codes = append(codes, aws.ToString(r.Code))
				}
				if len(codes) != len(items) || !slices.Contains(codes, "ThrottlingError") {
					t.Fatalf("cancellation reasons %v", codes)
				}
				seen["TransactionCanceled/ThrottlingError"] = true
			case errors.As(err, &api) && api.ErrorCode() == "ThrottlingException":
				seen["ThrottlingException"] = true
			default:
				t.Fatalf("not a throttling error: %v", err)
			}
		}
		if len(seen) != 4 || inner.calls != 0 {
			t.Errorf("shapes %v, %d calls passed", seen, inner.calls)
		}
		if in.Counts()["dynamodb.throttle"] != 200 {
			t.Errorf("counts %v", in.Counts())
		}
	})
	t.Run("answer lost after the call", func(t *testing.T) {
		inner := &countingDynamoDB{}
		d := faults.NewDynamoDB(inner, faults.New(3), faults.DynamoDBFaults{Lost: 1})
		if _, err := d.GetItem(ctx, &dynamodb.GetItemInput{}); err == nil || inner.calls != 1 {
			t.Errorf("err %v, %d calls passed; want an error after the call", err, inner.calls)
		}
	})
	t.Run("rate", func(t *testing.T) {
		inner := &countingDynamoDB{}
		d := faults.NewDynamoDB(inner, faults.New(4), faults.DynamoDBFaults{Error: 0.1})
		failed := 0
		for range 10000 {
			if _, err := d.GetItem(ctx, &dynamodb.GetItemInput{}); err != nil {
				failed++
			}
		}
		if failed < 800 || failed > 1200 {
			t.Errorf("%d of 10000 failed at a rate of 0.1", failed)
		}
	})
}

// recordingSender records the entries it was asked to send.
type recordingSender struct{ sent []string }

func (r *recordingSender) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		r.sent = append(r.sent, aws.ToString(e.MessageBody))
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func batch(n int) *sqs.SendMessageBatchInput {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String("q")}
	for i := range n {
		in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(fmt.Sprint("m", i))})
	}
	return in
}

func TestSQSFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("whole call fails before sending", func(t *testing.T) {
		inner := &recordingSender{}
		_, err := faults.NewSQS(inner, faults.New(1), faults.SQSFaults{Error: 1}).SendMessageBatch(ctx, batch(10))
		if err == nil || len(inner.sent) != 0 {
			t.Errorf("err %v, sent %v", err, inner.sent)
		}
	})
	t.Run("answer lost after sending", func(t *testing.T) {
		inner := &recordingSender{}
		_, err := faults.NewSQS(inner, faults.New(1), faults.SQSFaults{Lost: 1}).SendMessageBatch(ctx, batch(10))
		if err == nil || len(inner.sent) != 10 {
			t.Errorf("err %v, sent %d; want all sent and an error", err, len(inner.sent))
		}
	})
	t.Run("entries refused one by one", func(t *testing.T) {
		inner := &recordingSender{}
		out, err := faults.NewSQS(inner, faults.New(5), faults.SQSFaults{Entry: 0.3}).SendMessageBatch(ctx, batch(10))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failed) == 0 || len(out.Failed)+len(inner.sent) != 10 || len(out.Successful) != len(inner.sent) {
			t.Errorf("failed %d, sent %d, successful %d", len(out.Failed), len(inner.sent), len(out.Successful))
		}
		for _, f := range out.Failed {
			if slices.Contains(inner.sent, "m"+aws.ToString(f.Id)) {
				t.Errorf("entry %s reported failed but sent", aws.ToString(f.Id))
			}
		}
	})
	t.Run("every entry refused", func(t *testing.T) {
		inner := &recordingSender{}
		out, err := faults.NewSQS(inner, faults.New(1), faults.SQSFaults{Entry: 1}).SendMessageBatch(ctx, batch(3))
		if err != nil || len(out.Failed) != 3 || len(inner.sent) != 0 {
			t.Errorf("err %v, failed %d, sent %d", err, len(out.Failed), len(inner.sent))
		}
	})
}

func streamRecords(n int) []events.DynamoDBEventRecord {
	recs := make([]events.DynamoDBEventRecord, n)
	for i := range recs {
		recs[i].Change.SequenceNumber = fmt.Sprintf("%05d", i)
	}
	return recs
}

// TestDriveStream: a handler that fails records now and then, and a stream
// that redelivers and crashes, still sees every record, in order of first
// delivery, at least once.
func TestDriveStream(t *testing.T) {
	recs := streamRecords(500)
	in := faults.New(9)
	seen := map[string]int{}
	next := 0 // the lowest record not yet handled successfully
	handle := func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var resp events.DynamoDBEventResponse
		for i, r := range ev.Records {
			if in.Strike("test.fail", 0.02) {
				for _, rest := range ev.Records[i:] {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rest.Change.SequenceNumber})
				}
				return resp, nil
			}
			n, _ := strconv.Atoi(r.Change.SequenceNumber)
			if n > next {
				t.Fatalf("record %d handled before %d", n, next)
			}
			if n == next {
				next++
			}
			seen[r.Change.SequenceNumber]++
		}
		return resp, nil
	}
	st, err := faults.DriveStream(context.Background(), in, recs, handle, faults.StreamOptions{BatchSize: 20, Redeliver: 0.1, Crash: 0.1, MaxRetries: 50})
	if err != nil {
		t.Fatal(err)
	}
	if next != len(recs) || len(seen) != len(recs) {
		t.Fatalf("handled up to %d, %d distinct, of %d", next, len(seen), len(recs))
	}
	if st.Crashes == 0 || st.Redeliveries == 0 || st.Retries == 0 {
		t.Errorf("stats %+v: every fault should have struck", st)
	}
	t.Logf("%+v; faults %s", st, in)
}

// TestDriveStreamGivesUp: a record that always fails ends the drive after
// MaxRetries, as Lambda would give it up.
func TestDriveStreamGivesUp(t *testing.T) {
	handle := func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: ev.Records[0].Change.SequenceNumber}}}, nil
	}
	_, err := faults.DriveStream(context.Background(), faults.New(1), streamRecords(3), handle, faults.StreamOptions{MaxRetries: 3})
	if err == nil {
		t.Fatal("no error")
	}
}
