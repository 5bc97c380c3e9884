// Package feed runs catch-up subscriptions over the durable feed of every
// event (dynamo.Store.ReadFeed): a projection or reactor starts from the
// feed's beginning, or from a time, with a checkpoint of its own, catches up,
// and keeps following new events, resumable after a stop at its checkpoint.
//
// Delivery is at least once: a page is handled, then the checkpoint moves
// past it, so a crash between the two hands the page over again. Handlers
// are idempotent per event (a projection's applied version, a mail's sent
// record), as the queue-fed ones already are; that is also what makes the
// handover to live delivery (the stream relay's queues) free of gaps and of
// double effects: the feed and the queue may both deliver an event, and the
// second delivery is skipped.
package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// Reader reads the feed: *dynamo.Store is one.
type Reader interface {
	ReadFeed(ctx context.Context, after dynamo.FeedCursor, limit int) (dynamo.FeedPage, error)
}

// Client is the part of the DynamoDB client checkpoints use.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Checkpoints keeps each subscription's cursor in the read-model table (pk
// "feedsub#<name>", sk "checkpoint"). A checkpoint only moves forward.
type Checkpoints struct {
	client Client
	table  string
}

// NewCheckpoints returns the checkpoints kept in table.
func NewCheckpoints(client Client, table string) *Checkpoints {
	return &Checkpoints{client: client, table: table}
}

const (
	attrPK     = "pk"
	attrSK     = "sk"
	attrCursor = "cursor"
	attrPos    = "position" // the cursor's Key: sorts as the feed does
	skCP       = "checkpoint"
)

func (c *Checkpoints) key(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: "feedsub#" + name},
		attrSK: &types.AttributeValueMemberS{Value: skCP},
	}
}

// Load returns the checkpoint of subscription name; ok is false when it has
// none.
func (c *Checkpoints) Load(ctx context.Context, name string) (cur dynamo.FeedCursor, ok bool, err error) {
	out, err := c.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(c.table), Key: c.key(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return dynamo.FeedCursor{}, false, fmt.Errorf("load checkpoint of %s: %w", name, err)
	}
	if out.Item == nil {
		return dynamo.FeedCursor{}, false, nil
	}
	s, err := attr.String(out.Item, attrCursor)
	if err != nil {
		return dynamo.FeedCursor{}, false, fmt.Errorf("load checkpoint of %s: %w", name, err)
	}
	cur, err = dynamo.ParseFeedCursor(s)
	if err != nil {
		return dynamo.FeedCursor{}, false, fmt.Errorf("load checkpoint of %s: %w", name, err)
	}
	return cur, true, nil
}

// Save moves the checkpoint of name to cur, on condition that it is not
// already past it. A checkpoint at cur or later is success, which also makes
// an SDK retry after a lost reply (the first attempt applied) succeed.
func (c *Checkpoints) Save(ctx context.Context, name string, cur dynamo.FeedCursor) error {
	item := c.key(name)
	item[attrCursor] = &types.AttributeValueMemberS{Value: cur.String()}
	item[attrPos] = &types.AttributeValueMemberS{Value: "p" + cur.Key()} // never empty
	_, err := c.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(c.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #pos < :pos"),
		ExpressionAttributeNames:  map[string]string{"#pos": attrPos},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pos": item[attrPos]},
	})
	var ahead *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ahead) {
		return fmt.Errorf("save checkpoint of %s: %w", name, err)
	}
	return nil
}

// Handler handles a page of events, in feed order. It must be idempotent per
// event: after a crash, events after the checkpoint come again.
type Handler func(ctx context.Context, events []es.Record) error

// Subscription is a named consumer of the feed.
type Subscription struct {
	Name        string
	Feed        Reader
	Checkpoints *Checkpoints
	Handle      Handler
	// From is where a subscription without a checkpoint starts: the zero
	// cursor is the feed's beginning; dynamo.FeedFrom(t) a time.
	From dynamo.FeedCursor
	// PageSize is the events per page (default 1000); Poll the wait once
	// caught up (default 1 s).
	PageSize int
	Poll     time.Duration
}

// Progress is what a run did.
type Progress struct {
	Events int
	At     dynamo.FeedCursor
}

// CatchUp handles every event from the checkpoint to the feed's horizon,
// saving the checkpoint after each page, and returns once a page is empty.
func (s *Subscription) CatchUp(ctx context.Context) (Progress, error) {
	return s.run(ctx, false)
}

// Follow catches up, then keeps polling until ctx ends (which is not an
// error).
func (s *Subscription) Follow(ctx context.Context) (Progress, error) {
	return s.run(ctx, true)
}

func (s *Subscription) run(ctx context.Context, follow bool) (Progress, error) {
	size, poll := s.PageSize, s.Poll
	if size <= 0 {
		size = 1000
	}
	if poll <= 0 {
		poll = time.Second
	}
	cur, ok, err := s.Checkpoints.Load(ctx, s.Name)
	if err != nil {
		return Progress{}, err
	}
	if !ok {
		cur = s.From
	}
	p := Progress{At: cur}
	for {
		page, err := s.Feed.ReadFeed(ctx, p.At, size)
		if follow && ctx.Err() != nil {
			return p, nil
		}
		if err != nil {
			return p, fmt.Errorf("subscription %s: %w", s.Name, err)
		}
		if len(page.Events) > 0 {
			recs := make([]es.Record, len(page.Events))
			for i, e := range page.Events {
				recs[i] = e.Record
			}
			// Following ends when ctx does, wherever it finds the page: a
			// page handled but not checkpointed is handled again at the next
			// start, which the subscriber's idempotence absorbs.
			if err := s.Handle(ctx, recs); err != nil {
				if follow && ctx.Err() != nil {
					return p, nil
				}
				return p, fmt.Errorf("subscription %s: handle %d events after %s: %w", s.Name, len(recs), p.At, err)
			}
			if err := s.Checkpoints.Save(ctx, s.Name, page.Next); err != nil {
				if follow && ctx.Err() != nil {
					return p, nil
				}
				return p, fmt.Errorf("subscription %s: %w", s.Name, err)
			}
			p.Events += len(recs)
			p.At = page.Next
			continue
		}
		if !follow {
			return p, nil
		}
		if backoff.Sleep(ctx, poll) != nil {
			return p, nil
		}
	}
}
