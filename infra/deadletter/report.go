package deadletter

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/infra/relay"
)

// Recorder keeps why a consumer failed a message (Store.RecordFailure),
// for the operator CLI's dlq command.
type Recorder interface {
	RecordFailure(ctx context.Context, f Failure) error
}

// Report is how a consumer of relayed messages (projector,
// notifier) reports a message it failed.
type Report struct {
	Consumer   string // who failed: "projector", "notifier"
	MaxReceive int    // the queue's maxReceiveCount; 0: unknown
	Log        *slog.Logger
	Failures   Recorder // nil: nothing recorded
	Now        func() time.Time
}

// Report logs, and records when Failures is set, why msg failed. It
// reports whether this was the message's last allowed receive: SQS moves it
// to the dead-letter queue instead of delivering it again.
func (r Report) Report(ctx context.Context, msg events.SQSMessage, err error) bool {
	receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	last := r.MaxReceive > 0 && receives >= r.MaxReceive
	f := Failure{MessageID: msg.MessageId, Consumer: r.Consumer, Error: err.Error(), ReceiveCount: receives, At: r.Now().UTC()}
	if rec, derr := relay.DecodeMessage(msg.Body); derr == nil {
		f.AggregateID, f.EventID, f.EventType, f.Version = rec.AggregateID, rec.ID, rec.Type, rec.Version
	}
	level := slog.LevelWarn
	if last {
		level = slog.LevelError
	}
	r.Log.LogAttrs(ctx, level, r.Consumer+" message failed",
		slog.String("message_id", msg.MessageId), slog.String("aggregate_id", f.AggregateID),
		slog.Int64("version", f.Version), slog.String("event_type", f.EventType), slog.String("event_id", f.EventID),
		slog.Int("receive_count", receives), slog.Bool("dead_letter_next", last), slog.String("error", f.Error))
	if r.Failures != nil {
		if rerr := r.Failures.RecordFailure(ctx, f); rerr != nil {
			r.Log.LogAttrs(ctx, slog.LevelWarn, "record message failure", slog.String("message_id", msg.MessageId), slog.Any("error", rerr))
		}
	}
	return last
}
