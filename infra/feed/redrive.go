package feed

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
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
// have held: every event whose occurred-at lies in the batch's window, and
// the events of batch, the batch read back from its stream (ReadBatch) or
// nil when the stream no longer holds it. The batch's record names no keys,
// and it came from one stream shard among several, so this is a superset of
// the batch: the subscribers' idempotence makes the extra deliveries
// harmless. It returns the events found and the messages sent.
func Redrive(ctx context.Context, r Reader, s Sender, b relay.BatchInfo, batch []es.Record, now time.Time, feedWindow time.Duration) (events, sent int, err error) {
	from, to := b.Window(dynamo.AppendWindow, Skew)
	return RedriveWindow(ctx, r, s, from, to, batch, now, feedWindow)
}

// Window is the occurred-at range of the events a failed batch may hold
// (relay.BatchInfo.Window with the append window and Skew).
func Window(b relay.BatchInfo) (from, to time.Time) {
	return b.Window(dynamo.AppendWindow, Skew)
}

// Cover widens from..to to the occurred-at of every event of batch.
//
// The arrival window alone misses an event whose write DynamoDB applied
// after its writer had given up on it (cut at the end of the append window):
// it arrives on the stream, and in the failed batch, seconds after its
// occurred-at + the append window, so before the window's start. DynamoDB
// Local, under load, was seen to apply such writes 8 to 10 s after their
// occurred-at (docs/feed.md, "The outage test"). The events read back from
// the stream say where the batch really lies.
func Cover(from, to time.Time, batch []es.Record) (time.Time, time.Time) {
	for _, e := range batch {
		if e.OccurredAt.Before(from) {
			from = e.OccurredAt
		}
		if e.OccurredAt.After(to) {
			to = e.OccurredAt
		}
	}
	return from, to
}

// RedriveWindow sends again every event of the feed whose occurred-at lies
// in from..to, widened to cover batch (the failed batches' events read back
// from the stream, if any), once that range is behind the feed's horizon
// (else ErrTooRecent). An event of batch the feed does not hold (one written
// before the feed existed and not backfilled) is sent after the range.
// Many failed batches of an outage have overlapping windows: redriving their
// union once sends each event once, where a redrive per batch would send it
// once per batch.
func RedriveWindow(ctx context.Context, r Reader, s Sender, from, to time.Time, batch []es.Record, now time.Time, feedWindow time.Duration) (events, sent int, err error) {
	from, to = Cover(from, to, batch)
	if horizon := now.Add(-feedWindow); !to.Before(horizon) {
		return 0, 0, fmt.Errorf("events of %s..%s: %w (retry after %s)", from.Format(time.RFC3339), to.Format(time.RFC3339),
			ErrTooRecent, to.Sub(horizon).Round(time.Second))
	}
	unseen := make(map[string]bool, len(batch))
	for _, e := range batch {
		unseen[e.ID] = true
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
			delete(unseen, e.Record.ID)
		}
		n, err := s.Send(ctx, recs)
		events += len(recs)
		sent += n
		if err != nil {
			return events, sent, fmt.Errorf("redrive: %w", err)
		}
		if done {
			break
		}
		cur = page.Next
	}
	var rest []es.Record
	for _, e := range batch {
		if unseen[e.ID] {
			rest = append(rest, e)
			delete(unseen, e.ID) // a batch read twice holds an event twice
		}
	}
	if len(rest) == 0 {
		return events, sent, nil
	}
	slices.SortFunc(rest, func(a, b es.Record) int {
		return cmp.Or(strings.Compare(a.AggregateID, b.AggregateID), cmp.Compare(a.Version, b.Version))
	})
	n, err := s.Send(ctx, rest)
	events += len(rest)
	sent += n
	if err != nil {
		return events, sent, fmt.Errorf("redrive: %w", err)
	}
	return events, sent, nil
}
