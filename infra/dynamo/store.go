// Package dynamo is the DynamoDB adapter of the event-sourcing kernel: an
// es.Store over three tables (events, guards, snapshots), the item codec the
// stream relay shares to decode NEW_IMAGEs, and the table definitions tests
// and the local runner create.
//
// An append is one TransactWriteItems: a conditional Put per event, the guard
// claims and releases, and the idempotency record. Its cancellation reasons,
// which DynamoDB lists in item order, become the kernel's errors. An append of
// a single event and nothing else is one conditional PutItem instead.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
)

// Client is the part of *dynamodb.Client the store uses, so that a wrapper
// (instrumentation, a DAX client) can stand in for it.
type Client interface {
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Tables names the store's tables.
type Tables struct {
	Events    string // pk (S) aggregate id, sk (N) version; stream NEW_IMAGE
	Guards    string // pk (S): unique-value claims and idempotency records (idem#<key>); TTL on expiresAt
	Snapshots string // pk (S) aggregate id
}

// Store is the DynamoDB es.Store. It is safe for concurrent use.
type Store struct {
	client Client
	tables Tables
	limits es.Limits
	now    func() time.Time
	// conflictRetries bounds how often an append cancelled only by
	// TransactionConflict is sent again before it is reported as es.ErrBusy.
	conflictRetries int
	// appendWindow, when positive, bounds how long after its events'
	// occurred-at an append may be sent (the feed's invariant, feed.go).
	appendWindow time.Duration
	// feedWindow is how far behind the clock ReadFeed stops.
	feedWindow time.Duration
	// cipher, when set, seals personal data on append and opens it on load.
	cipher Cipher
}

var (
	_ es.Store           = (*Store)(nil)
	_ es.StreamSnapshots = (*Store)(nil)
)

// Option tunes a Store.
type Option func(*Store)

// WithLimits makes the store enforce l instead of es.DefaultLimits. Limits
// above DynamoDB's only move the failure into DynamoDB.
func WithLimits(l es.Limits) Option { return func(s *Store) { s.limits = l } }

// WithClock sets the clock that decides whether an idempotency record has
// expired (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithAppendWindow makes Append refuse, with es.ErrBusy, to send an append
// later than d after its events' occurred-at, and cut one in flight at that
// time: the writers' half of the feed's invariant (feed.go). The service
// then decides again, with a fresh occurred-at.
func WithAppendWindow(d time.Duration) Option { return func(s *Store) { s.appendWindow = d } }

// WithFeedWindow sets how far behind the store's clock ReadFeed stops
// (default FeedWindow): the readers' half of the feed's invariant.
func WithFeedWindow(d time.Duration) Option { return func(s *Store) { s.feedWindow = d } }

// New returns a store over tables t, enforcing es.DefaultLimits.
func New(client Client, t Tables, opts ...Option) *Store {
	s := &Store{client: client, tables: t, limits: es.DefaultLimits, now: time.Now, conflictRetries: 4, feedWindow: FeedWindow}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Key conditions of Load: fixed strings, no expression building per call.
const (
	condQueryID    = "pk = :id"
	condQueryTo    = "pk = :id AND sk <= :to"
	condQueryFrom  = "pk = :id AND sk >= :from"
	condQueryRange = "pk = :id AND sk BETWEEN :from AND :to"
)

// streamQuery is the consistent Query of stream aggregateID from version
// from (>= 1) to version to (<= 0: to its end), which Load and LoadPages page
// through.
func (s *Store) streamQuery(aggregateID string, from, to int64) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Events),
		KeyConditionExpression: aws.String(condQueryFrom),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id":   &types.AttributeValueMemberS{Value: aggregateID},
			":from": &types.AttributeValueMemberN{Value: strconv.FormatInt(from, 10)},
		},
		ConsistentRead: aws.Bool(true),
	}
	if to > 0 {
		in.KeyConditionExpression = aws.String(condQueryRange)
		in.ExpressionAttributeValues[":to"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(to, 10)}
	}
	return in
}

// Load implements es.EventStore: a consistent, paged Query of the stream.
func (s *Store) Load(ctx context.Context, aggregateID string, from, to int64) ([]es.Record, error) {
	from = max(from, 1)
	if to > 0 && to < from {
		return nil, nil
	}
	in := s.streamQuery(aggregateID, from, to)
	var recs []es.Record
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("load %s from v%d: %w", aggregateID, from, err)
		}
		more := len(out.LastEvaluatedKey) > 0
		if recs == nil {
			recs = make([]es.Record, 0, capacity(len(out.Items), more, from, to))
		}
		for _, item := range out.Items {
			r, err := RecordFromItem(item)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", aggregateID, err)
			}
			recs = append(recs, r)
		}
		if !more {
			if err := s.open(ctx, recs); err != nil {
				return nil, fmt.Errorf("load %s: %w", aggregateID, err)
			}
			return recs, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// LoadLatest implements es.StreamSnapshots: a consistent Query of the
// stream from its end, whose first page holds pageHint+1 events: when
// snapshots are written every pageHint events, that is the latest snapshot
// (on the event it follows) and every event after it, in one request.
// Without a usable snapshot it reads on, page by page, to the start.
func (s *Store) LoadLatest(ctx context.Context, aggregateID string, to int64, usable func(es.Snapshot) bool, pageHint int) (es.Snapshot, bool, []es.Record, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Events),
		KeyConditionExpression: aws.String(condQueryID),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id": &types.AttributeValueMemberS{Value: aggregateID},
		},
		ConsistentRead:   aws.Bool(true),
		ScanIndexForward: aws.Bool(false),
	}
	if to > 0 {
		in.KeyConditionExpression = aws.String(condQueryTo)
		in.ExpressionAttributeValues[":to"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(to, 10)}
	}
	if pageHint > 0 {
		in.Limit = aws.Int32(int32(min(pageHint+1, 10_000)))
	}
	var newest []es.Record // newest first
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return es.Snapshot{}, false, nil, fmt.Errorf("load %s from its end: %w", aggregateID, err)
		}
		for _, item := range out.Items {
			r, err := RecordFromItem(item)
			if err != nil {
				return es.Snapshot{}, false, nil, fmt.Errorf("load %s: %w", aggregateID, err)
			}
			snap, ok, err := streamSnapshot(item, r)
			if err == nil && ok {
				err = s.openSnapshot(ctx, &snap)
			}
			if err == nil && ok && usable(snap) {
				slices.Reverse(newest)
				if err := s.open(ctx, newest); err != nil {
					return es.Snapshot{}, false, nil, fmt.Errorf("load %s: %w", aggregateID, err)
				}
				return snap, true, newest, nil
			}
			// A snapshot that cannot be read is passed over: the events are
			// the truth.
			newest = append(newest, r)
		}
		if len(out.LastEvaluatedKey) == 0 {
			slices.Reverse(newest)
			if err := s.open(ctx, newest); err != nil {
				return es.Snapshot{}, false, nil, fmt.Errorf("load %s: %w", aggregateID, err)
			}
			return es.Snapshot{}, false, newest, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		in.Limit = nil // no usable snapshot where expected: read on in full pages
	}
}

// capacity guesses a load's length from its first page: exact when that is
// the only page, else a few pages' worth, but no more than the range asked for.
func capacity(page int, more bool, from, to int64) int {
	if !more {
		return page
	}
	n := int64(page) * 4
	if to > 0 {
		n = min(n, to-from+1)
	}
	return int(n)
}

// Idempotency implements es.EventStore. A record past its expiry counts as
// absent even while DynamoDB's TTL has not yet deleted it.
func (s *Store) Idempotency(ctx context.Context, key string) (es.IdempotencyRecord, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Guards),
		Key:            map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: idemPrefix + key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return es.IdempotencyRecord{}, false, fmt.Errorf("get idempotency record %q: %w", key, err)
	}
	if out.Item == nil {
		return es.IdempotencyRecord{}, false, nil
	}
	rec, err := idempotencyFromItem(key, out.Item)
	if err != nil {
		return es.IdempotencyRecord{}, false, err
	}
	if !rec.ExpiresAt.After(s.now()) {
		return es.IdempotencyRecord{}, false, nil
	}
	return rec, true, nil
}

// Snapshot implements es.SnapshotStore.
func (s *Store) Snapshot(ctx context.Context, aggregateID string) (es.Snapshot, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Snapshots),
		Key:            map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: aggregateID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return es.Snapshot{}, false, fmt.Errorf("get snapshot of %s: %w", aggregateID, err)
	}
	if out.Item == nil {
		return es.Snapshot{}, false, nil
	}
	snap, err := snapshotFromItem(out.Item)
	if err != nil {
		return es.Snapshot{}, false, fmt.Errorf("get snapshot of %s: %w", aggregateID, err)
	}
	if err := s.openSnapshot(ctx, &snap); err != nil {
		return es.Snapshot{}, false, fmt.Errorf("get snapshot of %s: %w", aggregateID, err)
	}
	return snap, true, nil
}

const condNewerSnapshot = "attribute_not_exists(pk) OR #v < :v"

// PutSnapshot implements es.SnapshotStore. A snapshot at the same or a later
// version already stored wins; that is not an error.
func (s *Store) PutSnapshot(ctx context.Context, snap es.Snapshot) error {
	if s.cipher != nil {
		var err error
		if snap, err = s.cipher.SealSnapshot(ctx, snap); err != nil {
			return fmt.Errorf("put snapshot of %s v%d: %w", snap.AggregateID, snap.Version, err)
		}
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.tables.Snapshots),
		Item:                     snapshotItem(snap),
		ConditionExpression:      aws.String(condNewerSnapshot),
		ExpressionAttributeNames: map[string]string{"#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(snap.Version, 10)},
		},
	})
	var stale *types.ConditionalCheckFailedException
	if errors.As(err, &stale) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("put snapshot of %s v%d: %w", snap.AggregateID, snap.Version, err)
	}
	return nil
}
