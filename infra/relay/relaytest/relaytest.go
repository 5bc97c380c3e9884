// Package relaytest drives the relay's and the queue handlers' tests through
// the emulators as Lambda would: it reads the events table's real stream
// into events.DynamoDBEvent batches, creates FIFO queues (with a dead-letter
// queue when asked), receives their messages as events.SQSEvent batches and
// deletes what a handler acknowledged.
package relaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Queue is a FIFO queue made for one test.
type Queue struct {
	URL, ARN string
	DLQ      *Queue // its dead-letter queue, if any
}

// QueueOptions shape a test queue.
type QueueOptions struct {
	// VisibilityTimeout in seconds (default 30).
	VisibilityTimeout int
	// MaxReceiveCount > 0 gives the queue a dead-letter queue (also FIFO)
	// that receives a message after that many receives.
	MaxReceiveCount int
}

// FIFOQueue creates a FIFO queue with a new name, deleted (with its DLQ)
// when the test ends.
func FIFOQueue(tb testing.TB, client *sqs.Client, opts QueueOptions) *Queue {
	tb.Helper()
	attrs := map[string]string{
		string(sqstypes.QueueAttributeNameFifoQueue): "true",
	}
	if opts.VisibilityTimeout > 0 {
		attrs[string(sqstypes.QueueAttributeNameVisibilityTimeout)] = strconv.Itoa(opts.VisibilityTimeout)
	}
	var dlq *Queue
	if opts.MaxReceiveCount > 0 {
		dlq = FIFOQueue(tb, client, QueueOptions{})
		policy, _ := json.Marshal(map[string]string{
			"deadLetterTargetArn": dlq.ARN,
			"maxReceiveCount":     strconv.Itoa(opts.MaxReceiveCount),
		})
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	out, err := client.CreateQueue(tb.Context(), &sqs.CreateQueueInput{
		QueueName:  aws.String(awstest.TableName("q") + ".fifo"),
		Attributes: attrs,
	})
	if err != nil {
		tb.Fatalf("create queue: %v", err)
	}
	q := &Queue{URL: aws.ToString(out.QueueUrl), DLQ: dlq}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.URL)}); err != nil {
			tb.Errorf("cleanup: delete queue: %v", err)
		}
	})
	got, err := client.GetQueueAttributes(tb.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		tb.Fatalf("queue attributes: %v", err)
	}
	q.ARN = got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	return q
}

// Receive receives up to max messages from q (no long polling) with the
// given visibility timeout in seconds, as the event of a Lambda invocation.
func Receive(ctx context.Context, client *sqs.Client, q *Queue, max, visibility int) (events.SQSEvent, error) {
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.URL),
		MaxNumberOfMessages:         int32(max),
		VisibilityTimeout:           int32(visibility),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return events.SQSEvent{}, fmt.Errorf("receive from %s: %w", q.URL, err)
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:      aws.ToString(m.MessageId),
			ReceiptHandle:  aws.ToString(m.ReceiptHandle),
			Body:           aws.ToString(m.Body),
			Md5OfBody:      aws.ToString(m.MD5OfBody),
			Attributes:     m.Attributes,
			EventSource:    "aws:sqs",
			EventSourceARN: q.ARN,
			AWSRegion:      "us-east-1",
		})
	}
	return ev, nil
}

// Bodies receives every message visible on q, hiding each for visibility
// seconds, and returns their bodies, sorted: what a dead-letter queue
// holds after a run.
func Bodies(ctx context.Context, client *sqs.Client, q *Queue, visibility int) ([]string, error) {
	var bodies []string
	for {
		ev, err := Receive(ctx, client, q, 10, visibility)
		if err != nil {
			return nil, err
		}
		if len(ev.Records) == 0 {
			slices.Sort(bodies)
			return bodies, nil
		}
		for _, m := range ev.Records {
			bodies = append(bodies, m.Body)
		}
	}
}

// Redelivered receives from q, acknowledging what it receives as a
// consumer would, until every message of ids has come back or within has
// passed, polling every 100 ms; it returns the ids of ids received again,
// sorted. A failed message's backoff is checked with it: without one, the
// message waits out the queue's visibility timeout.
func Redelivered(ctx context.Context, client *sqs.Client, q *Queue, ids []string, within time.Duration) ([]string, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var got []string
	for deadline := time.Now().Add(within); len(got) < len(want) && time.Now().Before(deadline); {
		ev, err := Receive(ctx, client, q, 10, 30)
		if err != nil {
			return nil, err
		}
		for _, m := range ev.Records {
			if want[m.MessageId] && !slices.Contains(got, m.MessageId) {
				got = append(got, m.MessageId)
			}
		}
		if _, err := Acknowledge(ctx, client, q, ev, events.SQSEventResponse{}); err != nil {
			return nil, err
		}
		if len(got) < len(want) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	slices.Sort(got)
	return got, nil
}

// Acknowledge deletes the messages of ev that resp does not report failed,
// as Lambda's event source mapping does, and returns how many it deleted.
func Acknowledge(ctx context.Context, client *sqs.Client, q *Queue, ev events.SQSEvent, resp events.SQSEventResponse) (int, error) {
	n := 0
	for _, m := range ev.Records {
		if slices.ContainsFunc(resp.BatchItemFailures, func(f events.SQSBatchItemFailure) bool { return f.ItemIdentifier == m.MessageId }) {
			continue
		}
		if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
			QueueUrl: aws.String(q.URL), ReceiptHandle: aws.String(m.ReceiptHandle),
		}); err != nil {
			return n, fmt.Errorf("delete message %s: %w", m.MessageId, err)
		}
		n++
	}
	return n, nil
}

// QueueAttributesGetter is the SQS call Depth makes: *sqs.Client, or a
// wrapper of it.
type QueueAttributesGetter interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Depth returns the visible and in-flight message counts of q.
func Depth(ctx context.Context, client QueueAttributesGetter, q *Queue) (visible, inFlight int, err error) {
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("depth of %s: %w", q.URL, err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight, nil
}

// StreamEvent reads every record of table's stream from the start (all
// shards, in shard order) as one Lambda stream event.
func StreamEvent(ctx context.Context, ddb *dynamodb.Client, streams *dynamodbstreams.Client, table string) (events.DynamoDBEvent, error) {
	desc, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return events.DynamoDBEvent{}, fmt.Errorf("describe table %s: %w", table, err)
	}
	arn := aws.ToString(desc.Table.LatestStreamArn)
	if arn == "" {
		return events.DynamoDBEvent{}, fmt.Errorf("table %s has no stream", table)
	}
	var ev events.DynamoDBEvent
	var start *string
	for {
		sd, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: start})
		if err != nil {
			return ev, fmt.Errorf("describe stream %s: %w", arn, err)
		}
		for _, shard := range sd.StreamDescription.Shards {
			recs, err := shardRecords(ctx, streams, arn, aws.ToString(shard.ShardId))
			if err != nil {
				return ev, err
			}
			for _, r := range recs {
				ev.Records = append(ev.Records, EventRecord(r, arn))
			}
		}
		if start = sd.StreamDescription.LastEvaluatedShardId; start == nil {
			return ev, nil
		}
	}
}

func shardRecords(ctx context.Context, streams *dynamodbstreams.Client, arn, shard string) ([]streamtypes.Record, error) {
	it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(arn), ShardId: aws.String(shard), ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		return nil, fmt.Errorf("shard iterator of %s: %w", shard, err)
	}
	var recs []streamtypes.Record
	iter := it.ShardIterator
	for iter != nil {
		out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, fmt.Errorf("records of %s: %w", shard, err)
		}
		if len(out.Records) == 0 {
			return recs, nil // an open shard always hands out a next iterator
		}
		recs = append(recs, out.Records...)
		iter = out.NextShardIterator
	}
	return recs, nil
}

// EventRecord converts a record read from DynamoDB Streams to the shape
// Lambda hands the relay: relay.EventRecord, which the local runner uses too.
func EventRecord(r streamtypes.Record, streamARN string) events.DynamoDBEventRecord {
	return relay.EventRecord(r, streamARN)
}

// Streams returns a DynamoDB Streams client for the emulator.
func Streams(tb testing.TB) *dynamodbstreams.Client {
	tb.Helper()
	return dynamodbstreams.NewFromConfig(awstest.Config(tb))
}
