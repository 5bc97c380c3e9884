package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Sender sends events to their subscribers' queues: *relay.Relay is one.
type Sender interface {
	Send(ctx context.Context, recs []es.Record) (int, error)
}

// Skew is the clock skew a redrive allows between the writers and DynamoDB.
const Skew = time.Second

// ErrTooRecent: the failed batch's window is not yet all behind the feed's
// horizon; redrive it later.
var ErrTooRecent = fmt.Errorf("the failed batch is more recent than the feed's horizon")

// Redrive sends again every event of the feed that a failed relay batch may
// have held: every event whose occurred-at lies in the batch's window. The
// batch's record names no keys, and it came from one stream shard among
// several, so this is a superset of the batch: the subscribers' idempotence
// makes the extra deliveries harmless. It returns the events found and the
// messages sent.
func Redrive(ctx context.Context, r Reader, s Sender, b relay.BatchInfo, now time.Time, feedWindow time.Duration) (events, sent int, err error) {
	from, to := b.Window(dynamo.AppendWindow, Skew)
	return RedriveWindow(ctx, r, s, from, to, now, feedWindow)
}

// Window is the occurred-at range of the events a failed batch may hold
// (relay.BatchInfo.Window with the append window and Skew).
func Window(b relay.BatchInfo) (from, to time.Time) {
	return b.Window(dynamo.AppendWindow, Skew)
}

// RedriveWindow sends again every event of the feed whose occurred-at lies
// in from..to, once that range is behind the feed's horizon (else
// ErrTooRecent). Many failed batches of an outage have overlapping
// windows: redriving their union once sends each event once, where a
// redrive per batch would send it once per batch.
func RedriveWindow(ctx context.Context, r Reader, s Sender, from, to, now time.Time, feedWindow time.Duration) (events, sent int, err error) {
	if horizon := now.Add(-feedWindow); !to.Before(horizon) {
		return 0, 0, fmt.Errorf("events of %s..%s: %w (retry after %s)", from.Format(time.RFC3339), to.Format(time.RFC3339),
			ErrTooRecent, to.Sub(horizon).Round(time.Second))
	}
	cur := dynamo.FeedFrom(from)
	for {
		page, err := r.ReadFeed(ctx, cur, 1000)
		if err != nil {
			return events, sent, fmt.Errorf("redrive: %w", err)
		}
		var recs []es.Record
		done := len(page.Events) == 0
		for _, e := range page.Events {
			if e.Record.OccurredAt.After(to) {
				done = true
				break
			}
			recs = append(recs, e.Record)
		}
		n, err := s.Send(ctx, recs)
		events += len(recs)
		sent += n
		if err != nil {
			return events, sent, fmt.Errorf("redrive: %w", err)
		}
		if done {
			return events, sent, nil
		}
		cur = page.Next
	}
}
