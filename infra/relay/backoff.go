package relay

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
)

// VisibilityChanger is the SQS call Backoff makes: *sqs.Client.
type VisibilityChanger interface {
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ VisibilityChanger = (*sqs.Client)(nil)

// Backoff delays: the first retry of a failed message after BackoffBase,
// each later one twice the previous, at most BackoffMax.
const (
	BackoffBase = time.Second
	// BackoffMax stays below the consumer queues' visibility timeout
	// (template.yaml, 20 s): backoff only ever brings a message back sooner.
	BackoffMax = 16 * time.Second
)

// BackoffDelay is how long a message that failed on its receives-th
// receive stays invisible: 1 s, 2 s, 4 s ... BackoffMax.
func BackoffDelay(receives int) time.Duration {
	return backoff.Policy{Base: BackoffBase, Cap: BackoffMax, Mode: backoff.Exponential}.Delay(receives, 0)
}

// Backoff makes the messages a consumer reports failed (its
// BatchItemFailures) come back after a short, growing delay instead of the
// queue's whole visibility timeout: Lambda leaves a failed message
// invisible for the rest of it, and in a FIFO queue every later message of
// its group waits behind it, so one transient failure (a throttled call, a
// batch out of time) would stall a user's read model for that long. This is
// AWS's advice for backoff with an SQS event source: the function itself
// calls ChangeMessageVisibility on the messages it fails.
//
// A nil *Backoff does nothing: failed messages wait the visibility timeout.
type Backoff struct {
	Client   VisibilityChanger
	QueueURL string
	Log      *slog.Logger
}

// Apply sets the visibility of the failed messages of ev. All failed
// messages of one message group get the delay of the group's first: SQS
// hands out none of a FIFO group while any of its messages is in flight, so
// the group resumes, in order, when the first is due. Failing to change a
// visibility fails nothing: the message then comes back after the queue's
// visibility timeout, as without backoff; it is logged.
func (b *Backoff) Apply(ctx context.Context, ev events.SQSEvent, resp events.SQSEventResponse) {
	if b == nil || b.Client == nil || b.QueueURL == "" || len(resp.BatchItemFailures) == 0 {
		return
	}
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	delays := map[string]time.Duration{} // message group: its delay
	var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	for i, msg := range ev.Records {
		if !failed[msg.MessageId] {
			continue
		}
		group := msg.Attributes["MessageGroupId"]
		if group == "" { // a standard queue: no order to keep
			group = "message:" + msg.MessageId
		}
		d, ok := delays[group]
		if !ok {
			receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
			d = BackoffDelay(receives)
			delays[group] = d
		}
		entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(msg.ReceiptHandle),
			VisibilityTimeout: int32(d / time.Second),
		})
	}
	for start := 0; start < len(entries); start += maxBatchEntries {
		chunk := entries[start:min(start+maxBatchEntries, len(entries))]
		out, err := b.Client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(b.QueueURL), Entries: chunk,
		})
		if err != nil {
			b.Log.LogAttrs(ctx, slog.LevelWarn, "back off failed messages: they wait the queue's visibility timeout",
				slog.Int("messages", len(chunk)), slog.Any("error", err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			b.Log.LogAttrs(ctx, slog.LevelWarn, "back off failed message: it waits the queue's visibility timeout",
				slog.String("message_id", ev.Records[i].MessageId), slog.String("code", aws.ToString(f.Code)),
				slog.String("error", aws.ToString(f.Message)))
		}
	}
}
