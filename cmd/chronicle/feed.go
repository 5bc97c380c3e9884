package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// ---------------------------------------------------------------- feed

// feedEventJSON is an event as feed prints it with --json, one per line:
// GET /events' event shape, plus the cursor just after it.
type feedEventJSON struct {
	eventJSON
	AggregateID   string `json:"aggregateId"`
	AggregateType string `json:"aggregateType"`
	Cursor        string `json:"cursor"`
}

func feedCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	after := fs.String("after", "", "start after this cursor (a nextCursor of GET /events, or a cursor feed printed)")
	from := fs.String("from", "", "start at the first event that occurred at or after this time (RFC 3339)")
	follow := fs.Bool("follow", false, "keep polling for new events until interrupted")
	poll := fs.Duration("poll", time.Second, "with --follow, the wait between polls once caught up")
	limit := fs.Int("limit", 0, "stop after this many events (0: no limit)")
	window := fs.Duration("window", dynamo.FeedWindow, "how far behind now the feed is read: shorter shows newer events sooner, but below the default an event may show up behind a cursor already printed")
	segments := fs.Int("segments", 4, "with backfill: parallel scan segments (1..64)")
	return func(ctx context.Context, args []string) error {
		if len(args) == 1 && args[0] == "backfill" {
			return a.feedBackfill(ctx, *segments)
		}
		if len(args) != 0 {
			return usagef("feed takes no arguments but backfill")
		}
		if *after != "" && *from != "" {
			return usagef("give --after or --from, not both")
		}
		if *poll <= 0 || *limit < 0 || *window < 0 {
			return usagef("--poll must be positive, --limit and --window at least 0")
		}
		cursor, err := dynamo.ParseFeedCursor(*after)
		if err != nil {
			return usagef("--after %q: %v", *after, err)
		}
		if *from != "" {
			t, err := time.Parse(time.RFC3339Nano, *from)
			if err != nil {
				return usagef("--from %q: not an RFC 3339 time", *from)
			}
			cursor = dynamo.FeedFrom(t)
		}
		if _, _, err := a.eventStore(ctx); err != nil {
			return err
		}
		events, _ := a.events()
		store := dynamo.New(a.ddb, dynamo.Tables{Events: events}, dynamo.WithFeedWindow(*window))
		n := 0
		for {
			page, err := store.ReadFeed(ctx, cursor, 1000)
			if errors.Is(err, context.Canceled) && *follow {
				break // interrupted: say where to resume
			}
			if err != nil {
				return err
			}
			for _, e := range page.Events {
				if *limit > 0 && n == *limit {
					break
				}
				if err := a.printFeedEvent(e); err != nil {
					return err
				}
				cursor = e.Position
				n++
			}
			if *limit > 0 && n == *limit {
				break
			}
			if len(page.Events) > 0 {
				continue
			}
			if !*follow {
				break
			}
			if backoff.Sleep(ctx, *poll) == nil {
				continue
			}
			break
		}
		// The cursor goes to stderr, so that --json's output stays JSON lines.
		fmt.Fprintf(a.stderr, "%d events; resume with --after %s\n", n, cursor)
		return nil
	}
}

func (a *app) printFeedEvent(e dynamo.FeedEvent) error {
	r := e.Record
	if a.asJSON {
		b, err := json.Marshal(feedEventJSON{eventJSON: toEventJSON(r), AggregateID: r.AggregateID,
			AggregateType: r.AggregateType, Cursor: e.Position.String()})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "%s  %s %s v%d  %s  %s  %s\n", r.OccurredAt.UTC().Format(timeLayout), r.AggregateType,
		r.AggregateID, r.Version, r.Type, orDash(r.Metadata.Actor), compact(r.Data))
	return err
}
