package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
)

// SQSHandler is an SQS handler: (*projector.Projector).Handle.
type SQSHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// QueueClient is the SQS API DriveQueue uses; *sqs.Client is one.
type QueueClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ QueueClient = (*sqs.Client)(nil)

// QueueOptions shape DriveQueue.
type QueueOptions struct {
	URL, ARN string
	// BatchSize is the messages per receive (default 10, as template.yaml).
	BatchSize int
	// Visibility is the visibility timeout of each receive, in seconds
	// (default 1): how soon an unacknowledged message comes back.
	Visibility int
	// Pollers is how many batches are handled at once (default 1), as
	// Lambda runs one invocation per message group set.
	Pollers int

	// Shuffle, per batch, hands the batch in another order.
	Shuffle float64
	// Duplicate, per message, hands a copy too: in the same batch or in a
	// later one. The copy is not on the queue; the original still is.
	Duplicate float64
	// Delay, per message, takes the message off the queue and hands it in
	// a later batch, after messages that were behind it: reordering
	// across batches. The driver keeps it until the handler accepts it.
	Delay float64
	// LoseAck, per message the handler accepted, does not delete it: the
	// queue delivers it again after the visibility timeout.
	LoseAck float64
	// Crash, per batch, makes the handler process part of the batch and
	// then die (a panic, or an error return): nothing is acknowledged.
	Crash float64
	// MayTamper says which messages Duplicate and Delay may touch (nil:
	// all). Messages meant for the dead-letter queue must stay on the
	// queue, which alone counts receives.
	MayTamper func(events.SQSMessage) bool

	// Done, besides an empty queue and no message held back, must hold
	// before DriveQueue returns (nil: nothing more).
	Done func(context.Context) (bool, error)
}

// QueueStats count what DriveQueue did.
type QueueStats struct {
	Batches      int // handler invocations
	Received     int // messages received from the queue
	Failed       int // messages the handler reported failed
	Crashes      int
	Copies       int // duplicates handed
	Delayed      int // messages taken off the queue and handed later
	LostAcks     int
	DeleteErrors int            // deletes SQS refused (a stale receipt handle): the message comes again
	Receives     map[string]int // per SQS message id
	EmptyPolls   int            // receives that returned nothing
	// FirstReceived is when each SQS message was first received, since
	// DriveQueue started.
	FirstReceived map[string]time.Duration

	// Where the time went, summed over the pollers.
	HandlerTime, ReceiveTime, DeleteTime, IdleTime time.Duration
}

// DriveQueue runs the queue's event source mapping as Lambda does, with
// the faults of opts: receive a batch, hand it to handle, delete what the
// response does not list as failed; until the queue is empty, nothing is
// held back and opts.Done holds. It fails when ctx ends first.
func DriveQueue(ctx context.Context, in *Injector, client QueueClient, handle SQSHandler, opts QueueOptions) (QueueStats, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10
	}
	if opts.Visibility <= 0 {
		opts.Visibility = 1
	}
	if opts.Pollers <= 0 {
		opts.Pollers = 1
	}
	d := &queueDriver{in: in, client: client, handle: handle, opts: opts, start: time.Now(),
		stats: QueueStats{Receives: map[string]int{}, FirstReceived: map[string]time.Duration{}}}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, opts.Pollers)
	var wg sync.WaitGroup
	for i := range opts.Pollers {
		wg.Go(func() {
			errs[i] = d.poll(ctx)
			if errs[i] != nil || d.isFinished() {
				stop()
			}
		})
	}
	wg.Wait()
	st := d.snapshot()
	if d.isFinished() {
		return st, nil
	}
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	return st, fmt.Errorf("queue not drained: %w", context.Cause(ctx))
}

type queueDriver struct {
	in     *Injector
	client QueueClient
	handle SQSHandler
	opts   QueueOptions

	start    time.Time
	mu       sync.Mutex
	stats    QueueStats
	held     []heldMessage // taken off the queue, or copies, for a later batch
	inHand   int           // held messages a poller is handing right now
	seq      int           // numbers synthetic message ids
	finished bool
}

// heldMessage waits for a later batch.
type heldMessage struct {
	msg   events.SQSMessage
	copy  bool // a duplicate: dropped if the handler fails it (the original is on the queue)
	after int  // polls to wait
}

// synthetic is a message handed that is not on the queue: a copy, or one
// taken off it.
type synthetic struct {
	copy bool
}

func (d *queueDriver) poll(ctx context.Context) error {
	for ctx.Err() == nil {
		received, err := d.receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		batch, synth, err := d.tamper(ctx, received)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			done, err := d.drained(ctx)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			stop := d.timed(&d.stats.IdleTime)
			_ = backoff.Sleep(ctx, 50*time.Millisecond)
			stop()
			continue
		}
		if d.in.Strike("queue.shuffle", d.opts.Shuffle) {
			d.in.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		}
		if err := d.deliver(ctx, batch, synth); err != nil {
			return err
		}
	}
	return nil
}

// receive gets up to a batch of messages from the queue.
func (d *queueDriver) receive(ctx context.Context) ([]events.SQSMessage, error) {
	defer d.timed(&d.stats.ReceiveTime)()
	out, err := d.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(d.opts.URL),
		MaxNumberOfMessages:         int32(d.opts.BatchSize),
		VisibilityTimeout:           int32(d.opts.Visibility),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	msgs := make([]events.SQSMessage, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, events.SQSMessage{
			MessageId:      aws.ToString(m.MessageId),
			ReceiptHandle:  aws.ToString(m.ReceiptHandle),
			Body:           aws.ToString(m.Body),
			Md5OfBody:      aws.ToString(m.MD5OfBody),
			Attributes:     m.Attributes,
			EventSource:    "aws:sqs",
			EventSourceARN: d.opts.ARN,
			AWSRegion:      "us-east-1",
		})
	}
	d.mu.Lock()
	d.stats.Received += len(msgs)
	if len(msgs) == 0 {
		d.stats.EmptyPolls++
	}
	for _, m := range msgs {
		d.stats.Receives[m.MessageId]++
		if _, ok := d.stats.FirstReceived[m.MessageId]; !ok {
			d.stats.FirstReceived[m.MessageId] = time.Since(d.start)
		}
	}
	d.mu.Unlock()
	return msgs, nil
}

// tamper applies Delay and Duplicate to the messages received and adds the
// held messages that are due: the batch to hand, and which of its
// messages are not on the queue.
func (d *queueDriver) tamper(ctx context.Context, received []events.SQSMessage) ([]events.SQSMessage, map[string]synthetic, error) {
	synth := map[string]synthetic{}
	var batch, taken []events.SQSMessage
	for _, m := range received {
		may := d.opts.MayTamper == nil || d.opts.MayTamper(m)
		if may && d.in.Strike("queue.delay", d.opts.Delay) {
			taken = append(taken, m)
			d.hold(m, false)
			continue
		}
		batch = append(batch, m)
		if may && d.in.Strike("queue.duplicate", d.opts.Duplicate) {
			c := d.clone(m, "copy")
			d.mu.Lock()
			d.stats.Copies++
			d.mu.Unlock()
			if d.in.IntN(2) == 0 {
				batch = append(batch, c)
				synth[c.MessageId] = synthetic{copy: true}
			} else {
				d.hold(c, true)
			}
		}
	}
	if len(taken) > 0 {
		if err := d.delete(ctx, taken); err != nil {
			return nil, nil, err
		}
	}
	for _, h := range d.due() {
		batch = append(batch, h.msg)
		synth[h.msg.MessageId] = synthetic{copy: h.copy}
	}
	return batch, synth, nil
}

// clone is a message like m, under a new id, not on the queue.
func (d *queueDriver) clone(m events.SQSMessage, kind string) events.SQSMessage {
	d.mu.Lock()
	d.seq++
	n := d.seq
	d.mu.Unlock()
	c := m
	c.MessageId = kind + "-" + strconv.Itoa(n) + "-" + m.MessageId
	c.ReceiptHandle = ""
	c.Attributes = maps.Clone(m.Attributes)
	return c
}

// hold keeps m for a batch one to five polls later.
func (d *queueDriver) hold(m events.SQSMessage, isCopy bool) {
	if !isCopy {
		m = d.clone(m, "held")
	}
	after := 1 + d.in.IntN(5)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !isCopy {
		d.stats.Delayed++
	}
	d.held = append(d.held, heldMessage{msg: m, copy: isCopy, after: after})
}

// due takes the held messages whose wait is over, at most half a batch.
func (d *queueDriver) due() []heldMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out, keep []heldMessage
	for _, h := range d.held {
		h.after--
		if h.after <= 0 && len(out) < max(1, d.opts.BatchSize/2) {
			out = append(out, h)
			continue
		}
		keep = append(keep, h)
	}
	d.held = keep
	d.inHand += len(out)
	return out
}

// deliver hands batch to the handler and acknowledges what it accepted.
func (d *queueDriver) deliver(ctx context.Context, batch []events.SQSMessage, synth map[string]synthetic) error {
	d.mu.Lock()
	d.stats.Batches++
	d.mu.Unlock()
	stop := d.timed(&d.stats.HandlerTime)
	resp, err := d.invoke(ctx, batch)
	stop()
	crashed := errors.Is(err, errCrash)
	if err != nil && !crashed {
		return fmt.Errorf("queue handler: %w", err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var acks []events.SQSMessage
	d.mu.Lock()
	if crashed {
		d.stats.Crashes++
	}
	d.stats.Failed += len(resp.BatchItemFailures)
	for _, m := range batch {
		s, isSynth := synth[m.MessageId]
		switch {
		case isSynth:
			d.inHand--
			if (crashed || failed[m.MessageId]) && !s.copy {
				d.held = append(d.held, heldMessage{msg: m, after: 1}) // not on the queue: only we can give it again
			}
		case crashed || failed[m.MessageId]:
		default:
			acks = append(acks, m)
		}
	}
	d.mu.Unlock()
	var deletes []events.SQSMessage
	for _, m := range acks {
		if d.in.Strike("queue.lost_ack", d.opts.LoseAck) {
			d.mu.Lock()
			d.stats.LostAcks++
			d.mu.Unlock()
			continue
		}
		deletes = append(deletes, m)
	}
	return d.delete(ctx, deletes)
}

// invoke is one handler invocation, which may crash after handing the
// handler part of the batch.
func (d *queueDriver) invoke(ctx context.Context, batch []events.SQSMessage) (events.SQSEventResponse, error) {
	if len(batch) < 2 || !d.in.Strike("queue.crash", d.opts.Crash) {
		return d.handle(ctx, events.SQSEvent{Records: batch})
	}
	return crashAfter(d.in, len(batch), func(k int) error {
		_, err := d.handle(ctx, events.SQSEvent{Records: batch[:k]})
		return err
	}, events.SQSEventResponse{})
}

// delete deletes msgs from the queue, ten at a time. An entry SQS refuses
// is counted, not an error: the message is delivered again.
func (d *queueDriver) delete(ctx context.Context, msgs []events.SQSMessage) error {
	defer d.timed(&d.stats.DeleteTime)()
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.ReceiptHandle)}
		}
		out, err := d.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(d.opts.URL), Entries: entries})
		if err != nil {
			return fmt.Errorf("delete messages: %w", err)
		}
		if len(out.Failed) > 0 {
			d.mu.Lock()
			d.stats.DeleteErrors += len(out.Failed)
			d.mu.Unlock()
		}
	}
	return nil
}

// drained reports, and remembers, that the queue is empty, nothing is held
// back or being handed, and opts.Done holds.
func (d *queueDriver) drained(ctx context.Context) (bool, error) {
	if d.busy() {
		return false, nil
	}
	// moto counts visible and in-flight messages one after the other, so a
	// message whose visibility timeout ends in between is in neither count:
	// the queue looks empty only when it does twice, further apart than
	// that window and closer than a visibility timeout.
	for i := range 2 {
		if i > 0 {
			_ = backoff.Sleep(ctx, 300*time.Millisecond)
		}
		empty, err := d.empty(ctx)
		if err != nil || !empty {
			return false, err
		}
	}
	if d.opts.Done != nil {
		if ok, err := d.opts.Done(ctx); err != nil || !ok {
			return false, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.held) > 0 || d.inHand > 0 { // another poller failed one meanwhile
		return false, nil
	}
	d.finished = true
	return true, nil
}

func (d *queueDriver) busy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.held) > 0 || d.inHand > 0
}

// empty reports whether the queue holds no message, visible or in flight.
func (d *queueDriver) empty(ctx context.Context) (bool, error) {
	out, err := d.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(d.opts.URL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return false, fmt.Errorf("queue depth: %w", err)
	}
	for _, a := range []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	} {
		if n, _ := strconv.Atoi(out.Attributes[string(a)]); n > 0 {
			return false, nil
		}
	}
	return true, nil
}

// timed adds the time until the returned func is called to *sum.
func (d *queueDriver) timed(sum *time.Duration) func() {
	start := time.Now()
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		*sum += time.Since(start)
	}
}

func (d *queueDriver) isFinished() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.finished
}

func (d *queueDriver) snapshot() QueueStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.stats
	st.Receives = maps.Clone(d.stats.Receives)
	st.FirstReceived = maps.Clone(d.stats.FirstReceived)
	return st
}
