package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// ---------------------------------------------------------------- relay redrive

// redriveBatchJSON is one OnFailure record as relay redrive reports it.
type redriveBatchJSON struct {
	MessageID    string    `json:"messageId"`
	ShardID      string    `json:"shardId,omitempty"`
	FirstArrival time.Time `json:"firstArrival,omitzero"`
	LastArrival  time.Time `json:"lastArrival,omitzero"`
	BatchSize    int       `json:"batchSize,omitempty"`
	// StreamEvents: the batch's events read back from the stream by its
	// sequence numbers; StreamError says why they could not be (past the
	// stream's 24 hours: the arrival window alone is redriven).
	StreamEvents int    `json:"streamEvents"`
	StreamError  string `json:"streamError,omitempty"`
	Group        int    `json:"group,omitempty"` // the records of one group have overlapping windows, redriven as one
	Events       int    `json:"events"`          // events of the feed in the group's window
	Messages     int    `json:"messages"`        // messages sent to subscriber queues for the group
	Outcome      string `json:"outcome"`         // redriven, dry-run, too-recent, unreadable
}

func relayCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	dlqURL := fs.String("dlq-url", "", "the relay's OnFailure queue (default: <stack>-relay-dlq)")
	routes := fs.String("routes", "", "the relay's ROUTES (default: as template.yaml: user.created.v1 to <stack>-notifications.fifo, every type to <stack>-projections.fifo)")
	dry := fs.Bool("dry-run", false, "find the events of each failed batch, send nothing, delete nothing")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 || args[0] != "redrive" {
			return usagef("want: relay redrive")
		}
		if _, _, err := a.eventStore(ctx); err != nil {
			return err
		}
		events, _ := a.events()
		reader := dynamo.New(a.ddb, dynamo.Tables{Events: events})
		client, err := a.queues(ctx)
		if err != nil {
			return err
		}
		if *dlqURL == "" || *routes == "" {
			if a.stack == "" {
				return usagef("give --stack, or --dlq-url and --routes")
			}
		}
		if *dlqURL == "" {
			if *dlqURL, err = queueURL(ctx, client, a.stack+"-relay-dlq"); err != nil {
				return err
			}
		}
		if *routes == "" {
			notif, err := queueURL(ctx, client, a.stack+"-notifications.fifo")
			if err != nil {
				return err
			}
			proj, err := queueURL(ctx, client, a.stack+"-projections.fifo")
			if err != nil {
				return err
			}
			*routes = "user.created.v1=" + notif + ";*=" + proj
		}
		rt, err := relay.ParseRoutes(*routes)
		if err != nil {
			return usagef("--routes: %v", err)
		}
		var sender feed.Sender = relay.New(client, rt, a.log(), time.Now)
		if *dry {
			sender = countOnly{}
		}
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return err
		}
		streams := dynamodbstreams.NewFromConfig(cfg)
		msgs, err := receiveAll(ctx, client, *dlqURL)
		if err != nil {
			return err
		}
		// The records of one outage have overlapping windows (a batch every
		// fraction of a second, each window the append window wide): their
		// union is read from the feed and sent once, each group of
		// overlapping records deleted together once it is sent.
		report := make([]redriveBatchJSON, len(msgs))
		var (
			failed error
			spans  []redriveSpan
		)
		// The batches' own events, from the stream while it holds them:
		// they place each batch exactly, whenever its writes landed. Read
		// a few at once: an outage leaves hundreds of records.
		infos := make([]relay.BatchInfo, len(msgs))
		batches := make([][]es.Record, len(msgs))
		streamErrs := make([]error, len(msgs))
		parseErrs := make([]error, len(msgs))
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i, m := range msgs {
			if infos[i], parseErrs[i] = relay.ParseFailureRecord(m.raw); parseErrs[i] != nil {
				continue
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				batches[i], streamErrs[i] = relay.ReadBatch(ctx, streams, infos[i])
			})
		}
		wg.Wait()
		now := time.Now()
		for i, m := range msgs {
			report[i] = redriveBatchJSON{MessageID: m.MessageID}
			b, err := infos[i], parseErrs[i]
			if err != nil {
				report[i].Outcome = "unreadable"
				failed = errors.Join(failed, fmt.Errorf("message %s: %w", m.MessageID, err))
				continue
			}
			report[i].ShardID, report[i].FirstArrival, report[i].LastArrival, report[i].BatchSize = b.ShardID, b.FirstArrival, b.LastArrival, b.BatchSize
			batch := batches[i]
			if streamErrs[i] != nil {
				report[i].StreamError = streamErrs[i].Error()
			}
			report[i].StreamEvents = len(batch)
			from, to := feed.Window(b)
			from, to = feed.Cover(from, to, batch)
			if !to.Before(now.Add(-dynamo.FeedWindow)) {
				// Not merged: it would hold back the older records it overlaps.
				report[i].Outcome = "too-recent" // visible again after the peek: run again later
				continue
			}
			spans = append(spans, redriveSpan{from: from, to: to, batch: batch, records: []int{i}})
		}
		for g, sp := range mergeSpans(spans) {
			events, sent, err := feed.RedriveWindow(ctx, reader, sender, sp.from, sp.to, sp.batch, now, dynamo.FeedWindow)
			outcome := "redriven"
			switch {
			case errors.Is(err, feed.ErrTooRecent):
				outcome = "too-recent" // visible again after the peek: run again later
			case err != nil:
				outcome = "failed"
				failed = errors.Join(failed, fmt.Errorf("events of %s..%s: %w", sp.from.Format(time.RFC3339), sp.to.Format(time.RFC3339), err))
			case *dry:
				outcome = "dry-run"
			}
			for _, i := range sp.records {
				r := &report[i]
				r.Group, r.Events, r.Messages, r.Outcome = g+1, events, sent, outcome
				if outcome != "redriven" {
					continue
				}
				if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(*dlqURL), ReceiptHandle: aws.String(msgs[i].receipt)}); err != nil {
					failed = errors.Join(failed, fmt.Errorf("delete message %s: %w", msgs[i].MessageID, err))
				}
			}
		}
		var keep []dlqMessage
		for i, m := range msgs {
			if report[i].Outcome != "redriven" {
				keep = append(keep, m)
			}
		}
		if err := release(ctx, client, *dlqURL, keep); err != nil {
			failed = errors.Join(failed, err)
		}
		if a.asJSON {
			if err := a.printJSON(map[string]any{"batches": report}); err != nil {
				return err
			}
		} else {
			for _, r := range report {
				fmt.Fprintf(a.stdout, "%s  %s  %s..%s  %d events, %d messages  %s\n", r.MessageID, orDash(r.ShardID),
					r.FirstArrival.Format(time.RFC3339), r.LastArrival.Format(time.RFC3339), r.Events, r.Messages, r.Outcome)
			}
			fmt.Fprintf(a.stdout, "%d OnFailure records\n", len(report))
		}
		return failed
	}
}

// countOnly is the sender of a dry run: it sends nothing.
type countOnly struct{}

func (countOnly) Send(context.Context, []es.Record) (int, error) { return 0, nil }

// redriveSpan is an occurred-at window of the feed and the OnFailure
// records (their indexes) whose events lie in it, with the events read back
// from the stream (the window covers them).
type redriveSpan struct {
	from, to time.Time
	batch    []es.Record
	records  []int
}

// mergeSpans merges overlapping windows, in time order.
func mergeSpans(spans []redriveSpan) []redriveSpan {
	slices.SortFunc(spans, func(a, b redriveSpan) int { return a.from.Compare(b.from) })
	var out []redriveSpan
	for _, sp := range spans {
		if n := len(out); n > 0 && !sp.from.After(out[n-1].to) {
			last := &out[n-1]
			if sp.to.After(last.to) {
				last.to = sp.to
			}
			last.records = append(last.records, sp.records...)
			last.batch = append(last.batch, sp.batch...)
			continue
		}
		out = append(out, sp)
	}
	return out
}
