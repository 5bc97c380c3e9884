package userviews

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// attrRecord holds an activity item's es.Record as JSON (its json tags).
const attrRecord = "record"

// Paging of ActorActivity.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ActivityApplied returns the version of aggregateID the actor-activity
// projection applied (0: none), read consistently.
func (s *Store) ActivityApplied(ctx context.Context, aggregateID string) (int64, error) {
	return s.appliedVersion(ctx, aggregateID, ProjectionActorActivity)
}

// SaveActivity adds rec to the activity of its actor, with the
// actor-activity applied version (rec.Version, on condition that it is still
// rec.Version-1), in one transaction. The activity item is keyed by the
// event, so writing it twice changes nothing. An event without an actor only
// moves the applied version.
func (s *Store) SaveActivity(ctx context.Context, rec es.Record) error {
	g, err := s.GenerationOf(ctx, ProjectionActorActivity)
	if err != nil {
		return err
	}
	applied := s.appliedPutItem(g, rec.AggregateID, ProjectionActorActivity, rec, rec.Version-1)
	if rec.Metadata.Actor == "" {
		_, err = s.Client().PutItem(ctx, &dynamodb.PutItemInput{
			TableName: applied.TableName, Item: applied.Item, ConditionExpression: applied.ConditionExpression,
			ExpressionAttributeNames: applied.ExpressionAttributeNames, ExpressionAttributeValues: applied.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
	} else {
		body, merr := json.Marshal(rec)
		if merr != nil {
			return fmt.Errorf("save activity of %s v%d: %w", rec.AggregateID, rec.Version, merr)
		}
		_, err = s.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: applied},
			{Put: &types.Put{
				TableName: aws.String(s.Table()),
				Item:      activityItem(g, rec, body),
			}},
		}})
	}
	return readmodel.AppliedWrite(err, rec, "save activity of")
}

// activityItem is the item, in generation g, of rec in its actor's
// activity; body is rec's JSON.
func activityItem(g int64, rec es.Record, body []byte) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: readmodel.S(readmodel.GenerationPK(g, actorPK(rec.Metadata.Actor))), attrSK: readmodel.S(activitySK(rec)),
		attrRecord: readmodel.S(string(body)),
	}
}

// activitySK orders an actor's events by time, the event id breaking ties.
func activitySK(rec es.Record) string { return readmodel.Stamp(rec.OccurredAt) + "#" + rec.ID }

// ActorActivity returns the events actor sub caused, newest first, at most
// limit of them (DefaultLimit when limit <= 0, at most MaxLimit), starting
// after cursor ("" for the newest). next is the cursor of the following
// page, "" when there is none. A cursor not made by this query for sub is
// readmodel.ErrBadCursor.
func (s *Store) ActorActivity(ctx context.Context, sub string, limit int, cursor string) (recs []es.Record, next string, err error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	g, err := s.GenerationOf(ctx, ProjectionActorActivity)
	if err != nil {
		return nil, "", err
	}
	// The cursor names the partition without its generation, so that it
	// stays valid across a rebuild's switch (the sort keys are the same).
	pk := actorPK(sub)
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.Table()),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": readmodel.S(readmodel.GenerationPK(g, pk))},
		ScanIndexForward:          aws.Bool(false),
	}
	if cursor != "" {
		sk, err := decodeCursor(cursor, pk)
		if err != nil {
			return nil, "", err
		}
		in.ExclusiveStartKey = readmodel.Key(readmodel.GenerationPK(g, pk), sk)
	}
	// One more than asked for tells whether there is a next page, so that
	// the last page never hands out a cursor to an empty one.
	var items []map[string]types.AttributeValue
	for len(items) <= limit {
		in.Limit = aws.Int32(int32(limit + 1 - len(items)))
		out, err := s.Client().Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("query activity of %q: %w", sub, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if len(items) > limit {
		items = items[:limit]
		last, err := attr.String(items[limit-1], attrSK)
		if err != nil {
			return nil, "", fmt.Errorf("activity of %q: %w", sub, err)
		}
		next = encodeCursor(pk, last)
	}
	recs = make([]es.Record, 0, len(items))
	for _, item := range items {
		body, err := attr.String(item, attrRecord)
		if err != nil {
			return nil, "", fmt.Errorf("activity of %q: %w", sub, err)
		}
		var r es.Record
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, "", fmt.Errorf("activity of %q: decode record: %w", sub, err)
		}
		recs = append(recs, r)
	}
	return recs, next, nil
}

// cursor is the last key of a page.
type cursorKey struct {
	PK string `json:"pk"`
	SK string `json:"sk"`
}

func encodeCursor(pk, sk string) string {
	b, _ := json.Marshal(cursorKey{PK: pk, SK: sk}) // two strings always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(cursor, pk string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", fmt.Errorf("cursor: %w", readmodel.ErrBadCursor)
	}
	var k cursorKey
	if err := json.Unmarshal(b, &k); err != nil || k.PK != pk || k.SK == "" {
		return "", fmt.Errorf("cursor: %w", readmodel.ErrBadCursor)
	}
	return k.SK, nil
}
