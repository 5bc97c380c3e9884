package rebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/metrics"
)

// Request asks the replay function to rebuild a projection: the body of a
// message on the replay queue. The function runs one slice per message,
// bounded by its time budget, and sends itself a continuation (Generation
// set) until the rebuild is done.
type Request struct {
	Projection string `json:"projection"`
	Segments   int    `json:"segments,omitempty"` // of a new build; default 4
	Restart    bool   `json:"restart,omitempty"`  // abandon the build in progress and start anew
	// Generation is set on continuations: only that build goes on.
	Generation int64 `json:"generation,omitempty"`
}

// Sender sends the continuation messages: *sqs.Client is one.
type Sender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ Sender = (*sqs.Client)(nil)

// Replay is the handler of the replay queue.
type Replay struct {
	rb       *Rebuilder
	sqs      Sender
	queueURL string // the replay queue: where continuations go
	log      *slog.Logger
	metrics  *metrics.Recorder
	// margin is kept free before the invocation's deadline: a page in
	// flight, the checkpoint and the continuation must fit in it.
	margin time.Duration
	opts   Options // page size, writers, settle (tests shorten them)
}

// DefaultMargin is what Replay leaves of an invocation's time by default.
const DefaultMargin = 20 * time.Second

// NewReplay returns the replay queue's handler, sending continuations to
// queueURL. m may be nil.
func NewReplay(rb *Rebuilder, client Sender, queueURL string, logger *slog.Logger, m *metrics.Recorder) *Replay {
	return &Replay{rb: rb, sqs: client, queueURL: queueURL, log: logger, metrics: m, margin: DefaultMargin}
}

// MessageGroup is the FIFO group of a projection's replay messages: one
// slice of a projection's rebuild runs at a time.
func MessageGroup(projection string) string { return "rebuild#" + projection }

// Handle runs one slice of a rebuild per message. A slice that fails is
// reported, and SQS delivers the message again after the visibility
// timeout: the rebuild resumes from its checkpoints.
func (h *Replay) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, msg := range ev.Records {
		if err := h.slice(ctx, msg); err != nil {
			h.log.ErrorContext(ctx, "replay slice failed", "message_id", msg.MessageId, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

func (h *Replay) slice(ctx context.Context, msg events.SQSMessage) error {
	var req Request
	if err := json.Unmarshal([]byte(msg.Body), &req); err != nil {
		return fmt.Errorf("message %s: %w", msg.MessageId, err)
	}
	if _, err := h.rb.known(req.Projection); err != nil {
		h.log.ErrorContext(ctx, "replay request dropped", "message_id", msg.MessageId, "err", err)
		return nil // a bad request never gets better: acknowledge it
	}
	until := time.Now().Add(10 * time.Minute)
	if dl, ok := ctx.Deadline(); ok {
		until = dl.Add(-h.margin)
	}
	start := time.Now()
	opts := h.opts
	opts.Segments, opts.Restart, opts.Resume, opts.Until = req.Segments, req.Restart && req.Generation == 0, req.Generation, until
	res, err := h.rb.Run(ctx, req.Projection, opts)
	h.metrics.Rebuild(ctx, req.Projection, res.RunEvents, time.Since(start))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	h.log.InfoContext(ctx, "replay slice", "projection", req.Projection, "generation", res.Generation,
		"phase", res.Phase, "events", res.Events, "run_events", res.RunEvents, "total_estimate", res.Total,
		"done", res.Done, "duration_ms", time.Since(start).Milliseconds())
	if res.Done || res.Phase == PhaseAbandoned {
		return nil
	}
	next, _ := json.Marshal(Request{Projection: req.Projection, Generation: res.Generation})
	// Sent with the caller's context detached from the deadline that just
	// stopped the slice: the continuation must go out.
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, serr := h.sqs.SendMessage(sendCtx, &sqs.SendMessageInput{
		QueueUrl:               aws.String(h.queueURL),
		MessageBody:            aws.String(string(next)),
		MessageGroupId:         aws.String(MessageGroup(req.Projection)),
		MessageDeduplicationId: aws.String(uuid.NewString()),
	})
	if serr != nil {
		return fmt.Errorf("send the continuation of %s: %w", req.Projection, serr)
	}
	return nil
}
