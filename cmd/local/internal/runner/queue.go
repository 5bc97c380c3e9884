package runner

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/template"
)

const (
	// defaultQueueConcurrency is how many batches of one queue may be in
	// flight at once when the mapping sets no ScalingConfig: Lambda starts
	// an SQS mapping with five concurrent batches.
	defaultQueueConcurrency = 5
	// maxReceive is ReceiveMessage's limit per call.
	maxReceive = 10
	// idleWait is the long poll of an idle queue, in seconds.
	idleWait = 2
	// While batches are in flight, an empty receive is retried after a
	// pause that doubles from busyMin to busyMax (busyPause).
	busyMin = 10 * time.Millisecond
	busyMax = 100 * time.Millisecond
)

// busyPause is the pause after an empty receive while batches are in
// flight.
var busyPause = backoff.Policy{Base: busyMin, Cap: busyMax, Mode: backoff.Exponential}

// pollQueue runs an SQS event source mapping until ctx ends. Messages a
// batch reports failed, and every message of a batch that fails as a whole,
// are left to the queue: they come back after its visibility timeout, and
// the queue's redrive policy moves them to its DLQ after maxReceiveCount
// receives. The others are deleted.
//
// As Lambda does, it runs concurrency(m) pollers, each receiving a batch
// and invoking the function with it, so that receiving overlaps the
// batches in flight. While no batch is in flight and no failed message may
// be waiting out its visibility timeout, one poller long-polls for all and
// the others wait; otherwise they short-poll: moto answers a long poll by
// spinning for its whole wait while the only visible messages belong to
// FIFO groups in flight, which starves the emulator.
func (r *Runner) pollQueue(ctx context.Context, m queueMapping) {
	p := &queuePoller{r: r, m: m, q: r.res.queues[m.event.Queue], fn: r.functions[m.function],
		visibility: time.Duration(r.plan.queue(m.event.Queue).VisibilityTimeout) * time.Second}
	var pollers sync.WaitGroup
	for range r.concurrency(m) {
		pollers.Go(func() { p.poll(ctx) })
	}
	pollers.Wait()
}

// queuePoller is the state the pollers of one queue mapping share.
type queuePoller struct {
	r          *Runner
	m          queueMapping
	q          queueInfo
	fn         *function
	visibility time.Duration

	active      atomic.Int32 // batches in flight
	longPolling atomic.Bool  // a poller is in a long poll
	// receiving makes the pollers' ReceiveMessage calls one at a time:
	// moto's holds no lock, so two receives of a FIFO queue at the same
	// moment both see a message group as idle and hand its messages to
	// two batches at once, a later event of an aggregate overtaking an
	// earlier one. SQS hands a group to one batch at a time; so does this.
	// The batches themselves still run side by side.
	receiving   sync.Mutex
	mu          sync.Mutex
	lastFailure time.Time
}

func (p *queuePoller) poll(ctx context.Context) {
	empty := 0 // receives in a row that found nothing, outside a long poll
	for ctx.Err() == nil {
		p.mu.Lock()
		quiet := p.active.Load() == 0 && time.Since(p.lastFailure) > p.visibility
		p.mu.Unlock()
		wait := 0
		if quiet {
			if !p.longPolling.CompareAndSwap(false, true) {
				_ = backoff.Sleep(ctx, busyMax) // another poller waits on the queue for all
				continue
			}
			if p.active.Load() > 0 { // a batch started meanwhile: no long poll
				p.longPolling.Store(false)
				continue
			}
			wait = idleWait
		}
		msgs := p.r.receive(ctx, &p.receiving, p.q, p.m.event, wait)
		if len(msgs) > 0 {
			// Counted before the long poll ends, so that no other
			// poller long-polls while this batch holds its groups.
			p.active.Add(1)
			p.r.inflight.Add(1)
		}
		if wait > 0 {
			p.longPolling.Store(false)
		}
		if len(msgs) == 0 {
			if wait == 0 {
				empty++
				_ = backoff.Sleep(ctx, busyPause.Delay(empty, 0))
			}
			continue
		}
		empty = 0
		// A received batch is finished even when the runner stops:
		// otherwise it would wait out the visibility timeout.
		failed := p.r.handleMessages(context.WithoutCancel(ctx), p.m, p.q, p.fn, msgs)
		p.active.Add(-1)
		p.r.inflight.Done()
		if failed {
			p.mu.Lock()
			p.lastFailure = time.Now()
			p.mu.Unlock()
		}
	}
}

// concurrency is how many batches of m may be in flight at once, as Lambda
// bounds them: the mapping's ScalingConfig.MaximumConcurrency (five without
// one), and never more than the function's reserved concurrency. A FIFO
// queue still hands each message group to one batch at a time (the queue
// does, not the runner: a group's messages stay invisible while a batch
// holds some), so a FIFO mapping runs at most one batch per active group.
func (r *Runner) concurrency(m queueMapping) int {
	n := defaultQueueConcurrency
	if m.event.MaximumConcurrency > 0 {
		n = m.event.MaximumConcurrency
	}
	if fn, ok := r.functions[m.function]; ok && fn.reserved > 0 {
		n = min(n, fn.reserved)
	}
	return n
}

// receive gathers up to the mapping's batch size: what the queue has (or
// receives within wait seconds), and, with a batching window, more until
// the batch is full or the window has passed. Each ReceiveMessage call
// holds receiving.
func (r *Runner) receive(ctx context.Context, receiving *sync.Mutex, q queueInfo, ev template.QueueEvent, wait int) []sqstypes.Message {
	window := time.Duration(ev.MaximumBatchingWindowInSeconds) * time.Second
	start := time.Now()
	var msgs []sqstypes.Message
	for len(msgs) < ev.BatchSize {
		receiving.Lock()
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.url),
			MaxNumberOfMessages:         int32(min(ev.BatchSize-len(msgs), maxReceive)),
			WaitTimeSeconds:             int32(wait),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		receiving.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("receive", "queue", q.name, "error", err)
				_ = backoff.Sleep(ctx, time.Second)
			}
			return msgs
		}
		msgs = append(msgs, out.Messages...)
		left := window - time.Since(start)
		switch {
		case len(msgs) == 0 || left <= 0:
			return msgs
		case len(out.Messages) == 0:
			_ = backoff.Sleep(ctx, min(left, busyMax))
		}
		wait = 0
	}
	return msgs
}

// handleMessages invokes the function on one batch and deletes the
// messages it did not report failed. It reports whether any failed.
func (r *Runner) handleMessages(ctx context.Context, m queueMapping, q queueInfo, fn *function, msgs []sqstypes.Message) (failed bool) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, msg := range msgs {
		ev.Records[i] = sqsMessage(msg, q.arn, r.region)
	}
	var resp events.SQSEventResponse
	start := time.Now()
	awsRequestID, err := r.invoke(ctx, fn, ev, &resp)
	inv := Invocation{Function: fn.id, Trigger: triggerSQS, Source: m.event.Queue, Records: len(msgs),
		Outcome: outcomeOf(err), Duration: time.Since(start)}

	var keep []string // message ids left to the queue
	switch {
	case err != nil:
		inv.Failures = len(msgs)
	case m.event.ReportsBatchItemFailures() && len(resp.BatchItemFailures) > 0:
		inv.Outcome = OutcomePartial
		for _, f := range resp.BatchItemFailures {
			if !slices.ContainsFunc(msgs, func(msg sqstypes.Message) bool { return aws.ToString(msg.MessageId) == f.ItemIdentifier }) {
				// Lambda treats an unknown identifier as a failure of the whole batch.
				inv.Outcome, inv.Failures = OutcomeInvalid, len(msgs)
				keep = nil
				for _, msg := range msgs {
					keep = append(keep, aws.ToString(msg.MessageId))
				}
				break
			}
			keep = append(keep, f.ItemIdentifier)
		}
		inv.Failures = len(keep)
	}
	r.report(ctx, inv, awsRequestID, err)
	if err != nil {
		return true
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, msg := range msgs {
		if slices.Contains(keep, aws.ToString(msg.MessageId)) {
			continue
		}
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle})
	}
	for chunk := range slices.Chunk(entries, maxReceive) {
		out, err := r.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: chunk})
		if err != nil {
			r.log.Error("delete messages", "queue", q.name, "error", err)
			continue
		}
		for _, f := range out.Failed {
			r.log.Error("delete message", "queue", q.name, "id", aws.ToString(f.Id), "code", aws.ToString(f.Code), "error", aws.ToString(f.Message))
		}
	}
	return len(keep) > 0
}

// sqsMessage is a received message as Lambda hands it to a function.
func sqsMessage(m sqstypes.Message, queueARN, region string) events.SQSMessage {
	out := events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Md5OfBody:              aws.ToString(m.MD5OfBody),
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             m.Attributes,
		EventSource:            "aws:sqs",
		EventSourceARN:         queueARN,
		AWSRegion:              region,
	}
	if len(m.MessageAttributes) > 0 {
		out.MessageAttributes = map[string]events.SQSMessageAttribute{}
		for k, a := range m.MessageAttributes {
			out.MessageAttributes[k] = events.SQSMessageAttribute{
				StringValue: a.StringValue, BinaryValue: a.BinaryValue,
				StringListValues: a.StringListValues, BinaryListValues: a.BinaryListValues,
				DataType: aws.ToString(a.DataType),
			}
		}
	}
	return out
}
