package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	Events       int       `json:"events"`   // events of the feed in the batch's window
	Messages     int       `json:"messages"` // messages sent to subscriber queues
	Outcome      string    `json:"outcome"`  // redriven, dry-run, too-recent, unreadable
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
		msgs, err := receiveAll(ctx, client, *dlqURL)
		if err != nil {
			return err
		}
		var report []redriveBatchJSON
		var failed error
		for _, m := range msgs {
			r := redriveBatchJSON{MessageID: m.MessageID}
			b, err := relay.ParseFailureRecord(m.raw)
			if err != nil {
				r.Outcome = "unreadable"
				report = append(report, r)
				failed = errors.Join(failed, fmt.Errorf("message %s: %w", m.MessageID, err))
				continue
			}
			r.ShardID, r.FirstArrival, r.LastArrival, r.BatchSize = b.ShardID, b.FirstArrival, b.LastArrival, b.BatchSize
			r.Events, r.Messages, err = feed.Redrive(ctx, reader, sender, b, time.Now(), dynamo.FeedWindow)
			switch {
			case errors.Is(err, feed.ErrTooRecent):
				r.Outcome = "too-recent" // visible again after the peek: run again later
			case err != nil:
				r.Outcome = "failed"
				failed = errors.Join(failed, fmt.Errorf("message %s: %w", m.MessageID, err))
			case *dry:
				r.Outcome = "dry-run"
			default:
				r.Outcome = "redriven"
				if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(*dlqURL), ReceiptHandle: aws.String(m.receipt)}); err != nil {
					failed = errors.Join(failed, fmt.Errorf("delete message %s: %w", m.MessageID, err))
				}
			}
			report = append(report, r)
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
