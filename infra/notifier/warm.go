package notifier

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// WithWarmer makes the notifier hand warm (pii.Cipher.Warm) the
// user.created events of each batch before it handles the batch's messages
// one by one: their users' keys are then read together, not one after
// another as each message is opened. Each message is opened and decoded
// as without it. Default: none.
func WithWarmer(warm func(ctx context.Context, recs []es.Record) error) Option {
	return func(n *Notifier) { n.warm = warm }
}

// warmKeys warms the keys of the batch's users (WithWarmer). A message that
// does not decode is left to handleMessage, which fails it alone; a key
// that cannot be read is read again when its message is opened, which
// fails that message alone, as without warming: warmKeys only logs.
func (n *Notifier) warmKeys(ctx context.Context, msgs []events.SQSMessage) {
	if n.warm == nil {
		return
	}
	created := (user.Created{}).EventType()
	var recs []es.Record
	for _, msg := range msgs {
		if rec, err := relay.DecodeMessage(msg.Body); err == nil && rec.Type == created {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return
	}
	if err := n.warm(ctx, recs); err != nil {
		n.log.LogAttrs(ctx, slog.LevelWarn, "notifier: keys not warmed (their messages read them again)", slog.String("error", err.Error()))
	}
}
